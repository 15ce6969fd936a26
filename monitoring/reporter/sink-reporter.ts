import { MetricReporters, type GaugeMetric, type CounterMetric, type MetricRegistry } from "moleculer";
import { DEFAULT_BUCKETS } from "../metrics/library";
import { SinkWriteError, type MetricPoint, type MetricsSink } from "../sinks/contract";
import { Deduplicator, PointConverter } from "./points";

export interface SinkReporterOptions {
  sink: MetricsSink;
  /** Value of the `host` tag (the node id). */
  host: string;
  /** How often the registry is snapshotted and published (default 10 s). */
  intervalMs?: number;
  /** Points per write (OpenTSDB recommends batches of at most a few hundred; default 500). */
  batchSize?: number;
  /** Points kept while the sink is away; past it the oldest are dropped and counted (default 100 000). */
  maxBuffer?: number;
  /** tcollector-style de-duplication horizon; 0 disables it (default 60 s). */
  dedupMaxAgeMs?: number;
  /** First retry delay; doubles per failure up to `maxBackoffMs` (defaults 1 s and 60 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Metric name patterns (Moleculer `match`) to publish / to leave out. */
  includes?: string[];
  excludes?: string[];
}

/** Counters of the publisher itself; published like any other metric. */
export const PUBLISHER_METRICS = {
  sent: "hub.monitoring.publisher.sent",
  dropped: "hub.monitoring.publisher.dropped",
  rejected: "hub.monitoring.publisher.rejected",
  errors: "hub.monitoring.publisher.errors",
  buffered: "hub.monitoring.publisher.buffered",
  truncatedTags: "hub.monitoring.publisher.truncated_tags",
} as const;

const MAX_BATCHES_PER_FLUSH = 200;

/**
 * Re-registers histograms that keep raw samples for quantiles (Moleculer's own request and event
 * timers, `quantiles: true`) as bucket-only histograms: raw samples grow with traffic and are
 * sorted at every snapshot (≈100 ms per 200k samples on the event loop). Buckets cost constant
 * memory, and the publisher derives the quantiles from them.
 */
export function bucketOnlyHistograms(registry: MetricRegistry): void {
  for (const metric of registry.store.values()) {
    const sampled = metric as unknown as { quantiles?: unknown; buckets?: unknown };
    if (metric.type !== "histogram" || !sampled.quantiles) continue;
    registry.register({
      type: "histogram",
      name: metric.name,
      labelNames: metric.labelNames,
      ...(metric.description !== undefined ? { description: metric.description } : {}),
      ...(metric.unit !== undefined ? { unit: metric.unit } : {}),
      buckets: Array.isArray(sampled.buckets) && sampled.buckets.length > 0 ? sampled.buckets : DEFAULT_BUCKETS,
      quantiles: false,
    });
  }
}

/**
 * A Moleculer metrics reporter that publishes the whole registry to a metrics sink (OpenTSDB's
 * `/api/put`, or the embedded store): snapshot every interval, de-duplicate, buffer (bounded),
 * write in batches, retry with exponential backoff while the sink is away, count drops.
 */
export class SinkReporter extends MetricReporters.Base {
  private readonly sink: MetricsSink;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly maxBuffer: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly dedup: Deduplicator;
  private buffer: MetricPoint[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private failures = 0;
  private nextAttemptAt = 0;
  private readonly converter: PointConverter;
  private lastErrorLogAt = 0;
  private metricRegistry: MetricRegistry | undefined;
  private counters: {
    sent?: CounterMetric;
    dropped?: CounterMetric;
    rejected?: CounterMetric;
    errors?: CounterMetric;
    truncated?: CounterMetric;
    buffered?: GaugeMetric;
  } = {};
  /** Totals, for tests and the console. */
  readonly totals = { sent: 0, dropped: 0, rejected: 0, errors: 0 };

  constructor(options: SinkReporterOptions) {
    super({ includes: options.includes, excludes: options.excludes });
    this.sink = options.sink;
    this.intervalMs = options.intervalMs ?? 10_000;
    this.batchSize = options.batchSize ?? 500;
    this.maxBuffer = options.maxBuffer ?? 100_000;
    this.backoffMs = options.backoffMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 60_000;
    this.dedup = new Deduplicator(options.dedupMaxAgeMs ?? 60_000);
    this.converter = new PointConverter(options.host);
  }

  override init(registry: MetricRegistry): void {
    super.init(registry);
    this.metricRegistry = registry;
    const counter = (name: string, description: string): CounterMetric | undefined =>
      (registry.getMetric(name) ?? registry.register({ type: "counter", name, description })) as
        CounterMetric | undefined;
    this.counters = {
      sent: counter(PUBLISHER_METRICS.sent, "Points written to the metrics sink"),
      dropped: counter(PUBLISHER_METRICS.dropped, "Points dropped because the buffer was full while the sink was away"),
      rejected: counter(PUBLISHER_METRICS.rejected, "Points the sink refused (bad names or values); not retried"),
      errors: counter(PUBLISHER_METRICS.errors, "Failed writes to the metrics sink"),
      truncated: counter(PUBLISHER_METRICS.truncatedTags, "Tags left off points that would have carried more than 8"),
      buffered: (registry.getMetric(PUBLISHER_METRICS.buffered) ??
        registry.register({
          type: "gauge",
          name: PUBLISHER_METRICS.buffered,
          description: "Points waiting for the sink",
        })) as GaugeMetric | undefined,
    };
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** Snapshots the registry into the buffer, then writes what the sink accepts now. */
  async tick(now = Date.now()): Promise<void> {
    this.collect(now);
    await this.flush(now);
  }

  collect(now = Date.now()): void {
    if (!this.metricRegistry) return;
    bucketOnlyHistograms(this.metricRegistry);
    const metrics = this.metricRegistry.list().filter((m) => this.matchMetricName(m.name));
    const before = this.converter.stats.truncatedTags;
    const points = this.dedup.filter(this.converter.convert(metrics, now));
    if (this.converter.stats.truncatedTags > before)
      this.counters.truncated?.increment(undefined, this.converter.stats.truncatedTags - before);
    this.dedup.prune(now);
    this.enqueue(points);
  }

  /** Writes buffered points in batches; at most one flush runs at a time. */
  flush(now = Date.now()): Promise<void> {
    if (this.flushing) return this.flushing;
    if (now < this.nextAttemptAt || this.buffer.length === 0) return Promise.resolve();
    this.flushing = this.drain().finally(() => {
      this.flushing = undefined;
      this.counters.buffered?.set(this.buffer.length);
    });
    return this.flushing;
  }

  /** Called by Moleculer when the broker stops. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    // One last publication, bounded in time: a sink that is away must not hold up shutdown.
    this.collect();
    this.nextAttemptAt = 0;
    await Promise.race([this.flush(), new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  get buffered(): number {
    return this.buffer.length;
  }

  private enqueue(points: MetricPoint[]): void {
    for (const p of points) this.buffer.push(p);
    const overflow = this.buffer.length - this.maxBuffer;
    if (overflow > 0) {
      this.buffer.splice(0, overflow);
      this.totals.dropped += overflow;
      this.counters.dropped?.increment(undefined, overflow);
    }
    this.counters.buffered?.set(this.buffer.length);
  }

  private async drain(): Promise<void> {
    for (let i = 0; i < MAX_BATCHES_PER_FLUSH && this.buffer.length > 0; i++) {
      const batch = this.buffer.splice(0, this.batchSize);
      try {
        await this.sink.write(batch);
        this.failures = 0;
        this.totals.sent += batch.length;
        this.counters.sent?.increment(undefined, batch.length);
      } catch (error) {
        this.totals.errors++;
        this.counters.errors?.increment();
        const retriable = !(error instanceof SinkWriteError) || error.retriable;
        this.logFailure(error, retriable);
        if (!retriable) {
          this.totals.rejected += batch.length;
          this.counters.rejected?.increment(undefined, batch.length);
          continue;
        }
        // Put the batch back in front and wait: the sink is away or overloaded.
        this.buffer = batch.concat(this.buffer);
        this.enqueue([]);
        this.failures++;
        const delay = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (this.failures - 1));
        this.nextAttemptAt = Date.now() + delay * (0.8 + Math.random() * 0.4);
        return;
      }
    }
  }

  private logFailure(error: unknown, retriable: boolean): void {
    const now = Date.now();
    if (now - this.lastErrorLogAt < 30_000) return;
    this.lastErrorLogAt = now;
    this.metricRegistry?.logger.warn(
      `metrics sink '${this.sink.type}' write failed (${retriable ? "will retry" : "points dropped"}): ${String(error)}; buffered ${this.buffer.length}`,
    );
  }
}
