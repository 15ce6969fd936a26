import type { GaugeMetric, HistogramMetric, MetricRegistry, ServiceBroker, CounterMetric } from "moleculer";
import { assertMetricName, assertTagKey, MAX_TAGS } from "./names";
import { TenantGuard } from "./tenant-guard";

/** Tag values of one observation; keys are the tags the metric declared. */
export type Tags<K extends string> = { readonly [P in K]?: string | number | boolean };

export interface MetricDefinition<K extends string> {
  /** See `names.ts` for the convention. */
  name: string;
  description: string;
  /** Tag keys this metric carries (at most 7: `host` is added on publishing). */
  tags: readonly K[];
  unit?: string;
}

/**
 * Bucket bounds of histograms (ms-friendly, 0.5 ms … 60 s). Histograms keep bucket counts only
 * (constant memory and O(buckets) per observation); the publisher turns the counts observed in
 * each interval into p50/p95/p99, as Prometheus' `histogram_quantile` does.
 */
export const DEFAULT_BUCKETS = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000];

export interface HistogramDefinition<K extends string> extends MetricDefinition<K> {
  /** Upper bounds of the buckets (default `DEFAULT_BUCKETS`). */
  buckets?: number[];
}

export interface Counter<K extends string> {
  inc(tags?: Tags<K>, by?: number): void;
}

export interface Gauge<K extends string> {
  set(value: number, tags?: Tags<K>): void;
  inc(tags?: Tags<K>, by?: number): void;
  dec(tags?: Tags<K>, by?: number): void;
}

export interface Histogram<K extends string> {
  /** Observes `value`, `count` times (default once): one call for a run of equal observations. */
  observe(value: number, tags?: Tags<K>, count?: number): void;
  /** Starts a timer; calling the result observes the elapsed milliseconds and returns them. */
  startTimer(tags?: Tags<K>): () => number;
}

export interface MetricsOptions {
  /** Tenants that keep their own `tenant` tag value; the rest are folded into `_other`. */
  maxTenants: number;
  pinnedTenants?: readonly string[];
}

type Labels = Record<string, string | number | boolean>;

/**
 * The hub's one metrics library. Instruments are Moleculer metrics, so whatever publishes
 * Moleculer's registry (the monitoring plugin's reporter) publishes these and Moleculer's own
 * request and event metrics alike. When metrics are off (no monitoring plugin loaded) every
 * instrument is a no-op, so components can instrument unconditionally.
 */
export class Metrics {
  readonly tenants: TenantGuard;

  constructor(
    private readonly registry: MetricRegistry | undefined,
    options: MetricsOptions,
  ) {
    this.tenants = new TenantGuard(options.maxTenants, options.pinnedTenants);
  }

  get enabled(): boolean {
    return this.registry !== undefined;
  }

  counter<K extends string>(definition: MetricDefinition<K>): Counter<K> {
    const metric = this.register<CounterMetric>("counter", definition, {});
    if (!metric) return { inc() {} };
    const labels = this.labeler(definition);
    return { inc: (tags, by = 1) => metric.increment(labels(tags), by) };
  }

  gauge<K extends string>(definition: MetricDefinition<K>): Gauge<K> {
    const metric = this.register<GaugeMetric>("gauge", definition, {});
    if (!metric) return { set() {}, inc() {}, dec() {} };
    const labels = this.labeler(definition);
    return {
      set: (value, tags) => metric.set(value, labels(tags)),
      inc: (tags, by = 1) => metric.increment(labels(tags), by),
      dec: (tags, by = 1) => metric.decrement(labels(tags), by),
    };
  }

  histogram<K extends string>(definition: HistogramDefinition<K>): Histogram<K> {
    const metric = this.register<HistogramMetric>("histogram", definition, {
      buckets: definition.buckets ?? DEFAULT_BUCKETS,
      quantiles: false,
    });
    if (!metric) {
      return {
        observe() {},
        startTimer() {
          const start = performance.now();
          return () => performance.now() - start;
        },
      };
    }
    const labels = this.labeler(definition);
    return {
      observe: (value, tags, count = 1) => observeHistogram(metric, value, labels(tags), count),
      startTimer: (tags) => {
        const start = performance.now();
        return () => {
          const elapsed = performance.now() - start;
          metric.observe(elapsed, labels(tags));
          return elapsed;
        };
      },
    };
  }

  private register<M>(
    type: string,
    definition: MetricDefinition<string>,
    extra: Record<string, unknown>,
  ): M | undefined {
    if (!this.registry) return undefined;
    assertMetricName(definition.name);
    if (definition.tags.length >= MAX_TAGS)
      throw new Error(`Metric '${definition.name}' declares more than ${MAX_TAGS - 1} tags`);
    for (const tag of definition.tags) assertTagKey(definition.name, tag);
    const existing = this.registry.getMetric(definition.name);
    if (existing) {
      if (existing.type !== type)
        throw new Error(`Metric '${definition.name}' is already registered as a ${existing.type}`);
      return existing as unknown as M;
    }
    const metric = this.registry.register({
      type,
      name: definition.name,
      description: definition.description,
      labelNames: [...definition.tags],
      ...(definition.unit !== undefined ? { unit: definition.unit } : {}),
      ...extra,
    });
    return (metric ?? undefined) as M | undefined;
  }

  /** Turns tags into Moleculer labels; the `tenant` tag goes through the cardinality guard. */
  private labeler<K extends string>(
    definition: MetricDefinition<K>,
  ): (tags: Tags<K> | undefined) => Labels | undefined {
    if (!definition.tags.includes("tenant" as K)) return (tags) => tags as Labels | undefined;
    return (tags) => {
      if (tags === undefined) return undefined;
      const tenant = (tags as Labels).tenant;
      if (tenant === undefined) return tags as Labels;
      return { ...(tags as Labels), tenant: this.tenants.tag(String(tenant)) };
    };
  }
}

/** The series of a Moleculer histogram, as far as a weighted observation touches it. */
interface HistogramSeries {
  sum: number;
  count: number;
  bucketValues?: Record<number, number>;
}

/**
 * Observes `value` `count` times on a Moleculer histogram: what `count` calls of `observe` would
 * record (count, sum, buckets), for the price of one. The histograms here keep buckets only
 * (`quantiles: false`), so nothing per sample is lost. A stream of activities mostly arrives in
 * runs that share an intake time, hence a latency: one call per run instead of per activity.
 */
export function observeHistogram(
  metric: HistogramMetric,
  value: number,
  labels: Labels | undefined,
  count: number,
): void {
  if (!(count > 0)) return;
  const series = metric.observe(value, labels) as unknown as HistogramSeries | undefined;
  const more = count - 1;
  if (more === 0) return;
  if (series === undefined) {
    for (let i = 0; i < more; i++) metric.observe(value, labels);
    return;
  }
  series.sum += value * more;
  series.count += more;
  const buckets = series.bucketValues;
  if (buckets === undefined) return;
  for (const bound of metric.buckets) if (value <= bound) buckets[bound] = (buckets[bound] ?? 0) + more;
}

const libraries = new WeakMap<ServiceBroker, Metrics>();

/**
 * The metrics library of a broker. The monitoring plugin configures it (`configureMetrics`);
 * any other component just calls `metricsOf(broker)`.
 */
export function metricsOf(broker: ServiceBroker): Metrics {
  let library = libraries.get(broker);
  if (!library) {
    library = new Metrics(broker.isMetricsEnabled() ? broker.metrics : undefined, { maxTenants: 100 });
    libraries.set(broker, library);
  }
  return library;
}

/** Sets the tenant guard of the broker's library (the monitoring plugin's configuration). */
export function configureMetrics(broker: ServiceBroker, options: MetricsOptions): Metrics {
  const library = metricsOf(broker);
  library.tenants.configure(options.maxTenants, options.pinnedTenants);
  return library;
}
