import type { Activity } from "../../core/activity/model";
import type { HealthStatus } from "../../core/health";

/**
 * The store family: the system of record for activities. Implementations: `embedded` (SQLite on
 * local disk) and `hbase`. Every implementation passes `contract-suite.ts`.
 */

export interface ActivityQuery {
  /** Only these activity types (any when absent or empty). */
  types?: string[];
  /** Inclusive lower bound on `occurredAt` (lead history) or `receivedAt` (tenant list), epoch ms. */
  since?: number;
  /** Exclusive upper bound, as `since`. */
  until?: number;
  /** Page size, 1-1000. */
  limit: number;
  /** Opaque token from a previous page. */
  pageToken?: string;
}

export interface ActivityPage {
  items: Activity[];
  /** Present when more items may follow. */
  nextPageToken?: string;
}

export interface ClientIdClaim {
  clientId: string;
  /** The id to assign if this client id was never seen for the tenant. */
  proposedId: string;
}

export interface ActivityStore {
  readonly type: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Atomically binds client ids (or idempotency keys) to activity ids, first writer wins.
   * Returns, for each claim in order, the id now bound to it: the proposed one, or the one a
   * previous request bound.
   */
  claimClientIds(tenantId: string, claims: ClientIdClaim[]): Promise<string[]>;
  /**
   * Writes activities, idempotently by (tenantId, id); resolves once durable. `json`, when given,
   * holds each activity's `activityJson` text, made once by a caller that also queued it: a store
   * writes it as it is rather than serialising the activity again.
   */
  put(activities: Activity[], json?: readonly string[]): Promise<void>;
  get(tenantId: string, id: string): Promise<Activity | undefined>;
  /** A lead's (or anonymous visitor's, `anon:<id>`) activities, newest `occurredAt` first. */
  leadHistory(tenantId: string, leadKey: string, query: ActivityQuery): Promise<ActivityPage>;
  /**
   * A tenant's activities by arrival, newest `receivedAt` first; `since`/`until` bound
   * `receivedAt` here. Arrival order suits incremental exports: a late activity with an old
   * `occurredAt` is still found by the next window.
   */
  list(tenantId: string, query: ActivityQuery): Promise<ActivityPage>;
  /** Which of these ids are stored for the tenant (for the reconciler). */
  existing(tenantId: string, ids: string[]): Promise<Set<string>>;
  health(): Promise<HealthStatus>;
}
