import type { HistogramMetric, ServiceBroker } from "moleculer";
import { DEFAULT_BUCKETS, observeHistogram } from "../monitoring/metrics/library";
import type { OutcomeKind } from "./results";

/**
 * The SDK's only contact with a metrics library: per-consumer counters and histograms, published
 * through Moleculer's metric registry (and so through whatever reporter the hub configures). Kept
 * in one file so the hub's shared metrics library can replace it without touching consumers.
 */
export interface ConsumerMetrics {
  /** Counts activities by outcome (`ok`, `drop`, `retry`, `dead_letter`, `skipped`). */
  outcome(kind: OutcomeKind | "skipped", count?: number): void;
  /** One `handle` call: its duration and size. */
  batch(durationMs: number, size: number): void;
  /** Intake → handled latency of `count` activities (default one) that share it. */
  latency(ms: number, count?: number): void;
  /** Local totals since start, for tests and health pages. */
  snapshot(): ConsumerMetricsSnapshot;
}

export interface ConsumerMetricsSnapshot {
  outcomes: Record<string, number>;
  batches: number;
  maxLatencyMs: number;
}

export const METRIC_NAMES = {
  activities: "hub.consumer.activities.total",
  batchDuration: "hub.consumer.batch.duration",
  batchSize: "hub.consumer.batch.size",
  latency: "hub.consumer.latency",
} as const;

function ensure(
  broker: ServiceBroker,
  name: string,
  type: "counter" | "histogram",
  labelNames: string[],
  unit?: string,
): void {
  if (!broker.isMetricsEnabled() || broker.metrics.hasMetric(name)) return;
  broker.metrics.register({
    name,
    type,
    labelNames,
    ...(unit !== undefined ? { unit } : {}),
    // Bucket-only, as every histogram of the shared metrics library: raw quantile samples grow
    // with traffic (one per activity here) whether or not a reporter ever reads them.
    ...(type === "histogram" ? { quantiles: false, buckets: DEFAULT_BUCKETS } : {}),
  });
}

export function consumerMetrics(broker: ServiceBroker, consumer: string): ConsumerMetrics {
  ensure(broker, METRIC_NAMES.activities, "counter", ["consumer", "outcome"]);
  ensure(broker, METRIC_NAMES.batchDuration, "histogram", ["consumer"], "millisecond");
  ensure(broker, METRIC_NAMES.batchSize, "histogram", ["consumer"]);
  ensure(broker, METRIC_NAMES.latency, "histogram", ["consumer"], "millisecond");
  const enabled = broker.isMetricsEnabled();
  const latency = enabled ? (broker.metrics.getMetric(METRIC_NAMES.latency) as HistogramMetric) : undefined;
  const outcomes: Record<string, number> = {};
  let batches = 0;
  let maxLatencyMs = 0;
  return {
    outcome(kind, count = 1) {
      outcomes[kind] = (outcomes[kind] ?? 0) + count;
      if (enabled) broker.metrics.increment(METRIC_NAMES.activities, { consumer, outcome: kind }, count);
    },
    batch(durationMs, size) {
      batches++;
      if (!enabled) return;
      broker.metrics.observe(METRIC_NAMES.batchDuration, durationMs, { consumer });
      broker.metrics.observe(METRIC_NAMES.batchSize, size, { consumer });
    },
    latency(ms, count = 1) {
      if (ms > maxLatencyMs) maxLatencyMs = ms;
      if (latency) observeHistogram(latency, ms, { consumer }, count);
    },
    snapshot() {
      return { outcomes: { ...outcomes }, batches, maxLatencyMs };
    },
  };
}
