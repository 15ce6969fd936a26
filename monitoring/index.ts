/** The monitoring plugin and the library other components use. */
export { monitoringPlugin } from "./plugin";
export { metricsOf, type Metrics, type Counter, type Gauge, type Histogram } from "./metrics";
export { businessSla, SLA_EVENTS, type SlaTrigger, type SlaConsumed } from "./sla/business";
