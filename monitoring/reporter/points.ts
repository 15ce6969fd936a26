import type { BaseMetricPOJO } from "moleculer";
import { MAX_TAGS, tsdbSafe } from "../metrics/names";
import type { MetricPoint } from "../sinks/contract";

interface LabelledSnapshot {
  labels?: Record<string, unknown>;
  value?: unknown;
  count?: number;
  sum?: number;
  buckets?: Record<string, number>;
}

export interface ConversionStats {
  /** Tags dropped because a point would have carried more than 8. */
  truncatedTags: number;
}

/** Quantiles published for every histogram, computed over each publishing interval. */
export const PUBLISHED_QUANTILES: ReadonlyArray<[suffix: string, q: number]> = [
  ["p50", 0.5],
  ["p95", 0.95],
  ["p99", 0.99],
];

/**
 * The q-quantile of observations counted in cumulative buckets (`cumulative[i]` observations
 * were ≤ `bounds[i]`, `total` in all), interpolating linearly inside the bucket, like
 * Prometheus' `histogram_quantile`. Beyond the last bound the last bound is returned.
 */
export function bucketQuantile(
  q: number,
  bounds: readonly number[],
  cumulative: readonly number[],
  total: number,
): number {
  if (total <= 0 || bounds.length === 0) return NaN;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (cumulative[i]! >= rank) {
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      const below = i === 0 ? 0 : cumulative[i - 1]!;
      const inBucket = cumulative[i]! - below;
      return inBucket <= 0 ? bounds[i]! : lower + ((bounds[i]! - lower) * (rank - below)) / inBucket;
    }
  }
  return bounds[bounds.length - 1]!;
}

/**
 * Turns Moleculer metric snapshots into sink points: counters and gauges as one point per label
 * set; histograms as cumulative `.count` and `.sum`, plus `.mean`, `.p50`, `.p95`, `.p99` of the
 * observations made since the previous conversion (from bucket count deltas). Info metrics
 * (strings) are not time series and are skipped. Tags: `host` first, then the labels, at most 8.
 */
export class PointConverter {
  readonly stats: ConversionStats = { truncatedTags: 0 };
  private readonly previous = new Map<string, { count: number; sum: number; cumulative: number[] }>();
  private readonly host: string;

  constructor(host: string) {
    this.host = tsdbSafe(host);
  }

  convert(metrics: BaseMetricPOJO[], timestamp: number): MetricPoint[] {
    const out: MetricPoint[] = [];
    for (const metric of metrics) {
      if (metric.type === "info") continue;
      const name = tsdbSafe(metric.name);
      for (const raw of metric.values as LabelledSnapshot[]) {
        const tags = this.tagsOf(raw.labels);
        const push = (suffix: string, value: unknown): void => {
          if (typeof value === "number" && Number.isFinite(value))
            out.push({ metric: `${name}${suffix}`, timestamp, value, tags });
        };
        if (metric.type !== "histogram") {
          push("", typeof raw.value === "boolean" ? Number(raw.value) : raw.value);
          continue;
        }
        const count = raw.count ?? 0;
        const sum = raw.sum ?? 0;
        push(".count", count);
        push(".sum", sum);
        const bounds = Object.keys(raw.buckets ?? {})
          .map(Number)
          .sort((a, b) => a - b);
        const cumulative = bounds.map((b) => raw.buckets![String(b)] ?? 0);
        const key = `${name}|${JSON.stringify(tags)}`;
        const before = this.previous.get(key);
        this.previous.set(key, { count, sum, cumulative });
        // A reset (restart, re-registration) counts from zero again.
        const reset = !before || count < before.count;
        const dCount = reset ? count : count - before.count;
        if (dCount <= 0) continue;
        push(".mean", (reset ? sum : sum - before.sum) / dCount);
        if (bounds.length === 0) continue;
        const deltas = reset ? cumulative : cumulative.map((c, i) => c - (before.cumulative[i] ?? 0));
        for (const [suffix, q] of PUBLISHED_QUANTILES) push(`.${suffix}`, bucketQuantile(q, bounds, deltas, dCount));
      }
    }
    return out;
  }

  private tagsOf(labels: Record<string, unknown> | undefined): Record<string, string> {
    const tags: Record<string, string> = { host: this.host };
    let count = 1;
    for (const [key, value] of Object.entries(labels ?? {})) {
      if (value === null || value === undefined) continue;
      const safe = tsdbSafe(String(value));
      if (safe === "") continue;
      if (count >= MAX_TAGS) {
        this.stats.truncatedTags++;
        continue;
      }
      tags[tsdbSafe(key)] = safe;
      count++;
    }
    return tags;
  }
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
