/** What every engine adapter and service reports about its own health. */
export interface HealthStatus {
  ok: boolean;
  /** Short machine-readable state, e.g. `up`, `down`, `degraded`. */
  status: string;
  detail?: string;
}
