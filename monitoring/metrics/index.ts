export { Metrics, metricsOf, configureMetrics, DEFAULT_BUCKETS } from "./library";
export type { Counter, Gauge, Histogram, Tags, MetricDefinition, HistogramDefinition, MetricsOptions } from "./library";
export { METRIC_NAME, TAG_KEY, MAX_TAGS, tsdbSafe } from "./names";
export { TenantGuard, OTHER_TENANT } from "./tenant-guard";
