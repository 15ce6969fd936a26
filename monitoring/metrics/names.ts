/**
 * The naming convention of every hub metric:
 *
 * - names are dot-separated lower-case segments: `hub.<component>.<subject>[.<unit>]`,
 *   e.g. `hub.intake.activities.accepted`, `hub.sla.intake_to_store.ms`, `hub.queue.lag.seconds`;
 *   Moleculer's own metrics keep their `moleculer.*` / `process.*` names;
 * - the unit is the last segment when the value has one (`ms`, `seconds`, `bytes`, `percent`);
 *   counters are cumulative totals and carry no `_total` suffix;
 * - tag keys are lower snake case (`tenant`, `type`, `group`, `consumer`, `engine`, `host`);
 * - a series carries at most 8 tags, OpenTSDB's limit, `host` included.
 */
export const METRIC_NAME = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/;
export const TAG_KEY = /^[a-z][a-z0-9_]*$/;
/** OpenTSDB's limit on tags per data point. */
export const MAX_TAGS = 8;

/** Characters OpenTSDB accepts in metric names, tag keys and tag values. */
const TSDB_INVALID = /[^A-Za-z0-9\-_./]/g;

export function assertMetricName(name: string): void {
  if (!METRIC_NAME.test(name)) {
    throw new Error(
      `Metric name '${name}' breaks the naming convention: dot-separated lower-case segments, e.g. hub.intake.activities.accepted`,
    );
  }
}

export function assertTagKey(metric: string, key: string): void {
  if (!TAG_KEY.test(key)) throw new Error(`Tag '${key}' of metric '${metric}' must be lower snake case`);
}

/** Rewrites a name or tag value into OpenTSDB's alphabet; returns "" for nothing usable. */
export function tsdbSafe(value: string): string {
  return value.replace(TSDB_INVALID, "_").slice(0, 200);
}
