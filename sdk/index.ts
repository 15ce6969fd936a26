/** The consumer SDK: everything a third-party consumer plugin needs. */
export { defineConsumer } from "./consumer";
export type {
  ConsumerContext,
  ConsumerDefinition,
  ConsumerPlugin,
  DeliveryOptions,
  DeliveryReport,
  HandleContext,
  HandleResult,
  RetryOptions,
  RunningContext,
  SubscribeFilter,
} from "./consumer";
export { ok, drop, retry, deadLetter, type Outcome, type OutcomeKind } from "./results";
export {
  EffectLedger,
  EffectNotPerformed,
  type CommitPoint,
  type EffectOptions,
  type EffectResult,
  type InDoubtPolicy,
} from "./effects";
export type { ConsumerMetrics, ConsumerMetricsSnapshot } from "./metrics";
export type { Activity, ActivitySource, Attributes, JsonValue } from "../core/activity/model";
