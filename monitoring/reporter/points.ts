import type { BaseMetricPOJO } from "moleculer";
import { MAX_TAGS, tsdbSafe } from "../metrics/names";
import type { MetricPoint } from "../sinks/contract";

interface LabelledSnapshot {
  labels?: Record<string, unknown>;
  value?: unknown;
  count?: number;
  sum?: number;
  mean?: number | null;
  max?: number | null;
  quantiles?: Record<string, number | undefined>;
}

export interface ConversionStats {
  /** Tags dropped because a point would have carried more than 8. */
  truncatedTags: number;
}

/** `0.5` → `p50`, `0.999` → `p99_9`. */
function quantileSuffix(q: string): string {
  const percent = Number(q) * 100;
  return `p${String(Number(percent.toFixed(3))).replace(".", "_")}`;
}

/**
 * Turns Moleculer metric snapshots into sink points: counters and gauges as one point per label
 * set; histograms as `.count`, `.sum`, `.mean`, `.max` and one `.pNN` per quantile. Info metrics
 * (strings) are not time series and are skipped. Tags: `host` first, then the labels, at most 8.
 */
export function toPoints(
  metrics: BaseMetricPOJO[],
  host: string,
  timestamp: number,
  stats: ConversionStats,
): MetricPoint[] {
  const out: MetricPoint[] = [];
  const hostTag = tsdbSafe(host);
  for (const metric of metrics) {
    if (metric.type === "info") continue;
    const name = tsdbSafe(metric.name);
    for (const raw of metric.values as LabelledSnapshot[]) {
      const tags: Record<string, string> = { host: hostTag };
      let count = 1;
      for (const [key, value] of Object.entries(raw.labels ?? {})) {
        if (value === null || value === undefined) continue;
        const safe = tsdbSafe(String(value));
        if (safe === "") continue;
        if (count >= MAX_TAGS) {
          stats.truncatedTags++;
          continue;
        }
        tags[tsdbSafe(key)] = safe;
        count++;
      }
      const push = (suffix: string, value: unknown): void => {
        if (typeof value === "number" && Number.isFinite(value))
          out.push({ metric: `${name}${suffix}`, timestamp, value, tags });
      };
      if (metric.type === "histogram") {
        push(".count", raw.count);
        push(".sum", raw.sum);
        push(".mean", raw.mean);
        push(".max", raw.max);
        for (const [q, value] of Object.entries(raw.quantiles ?? {})) push(`.${quantileSuffix(q)}`, value);
      } else {
        push("", typeof raw.value === "boolean" ? Number(raw.value) : raw.value);
      }
    }
  }
  return out;
}

/**
 * tcollector's de-duplication: a series whose value has not changed is not sent again until
 * `maxAgeMs` has passed; when it changes, the last unchanged point is sent first so graphs keep
 * the flat segment's true end.
 */
export class Deduplicator {
  private readonly last = new Map<string, { value: number; sentAt: number; skipped?: MetricPoint }>();

  constructor(private readonly maxAgeMs: number) {}

  filter(points: MetricPoint[]): MetricPoint[] {
    if (this.maxAgeMs <= 0) return points;
    const out: MetricPoint[] = [];
    for (const point of points) {
      const key = seriesKey(point);
      const previous = this.last.get(key);
      if (previous && previous.value === point.value && point.timestamp - previous.sentAt < this.maxAgeMs) {
        previous.skipped = point;
        continue;
      }
      if (previous?.skipped && previous.value !== point.value) out.push(previous.skipped);
      out.push(point);
      this.last.set(key, { value: point.value, sentAt: point.timestamp });
    }
    return out;
  }

  /** Forgets series not sent for a long time (bounded memory when series come and go). */
  prune(now: number): void {
    for (const [key, entry] of this.last) if (now - entry.sentAt > this.maxAgeMs * 6) this.last.delete(key);
  }

  get size(): number {
    return this.last.size;
  }
}

function seriesKey(point: MetricPoint): string {
  let key = point.metric;
  for (const k of Object.keys(point.tags).sort()) key += `|${k}=${point.tags[k]}`;
  return key;
}
