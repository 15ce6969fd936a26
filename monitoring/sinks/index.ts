import { option, Registry } from "../../core/registry";
import type { MetricsSink } from "./contract";
import { EmbeddedMetricsSink } from "./embedded";
import { OpenTsdbSink } from "./opentsdb";

export type { MetricsSink, MetricPoint, Series, SeriesQuery, Aggregator } from "./contract";
export { SinkWriteError } from "./contract";

/** What a sink factory receives besides its own options. */
export interface SinkContext {
  dataDir: string;
}

/** The metrics sink registry: `embedded` (local SQLite time series) and `opentsdb`. */
export const metricsSinks = new Registry<MetricsSink, SinkContext>("metricsSink")
  .register(
    "embedded",
    (options, context) =>
      new EmbeddedMetricsSink({
        dataDir: option(options, "dataDir", "string") ?? context.dataDir,
        retentionMs: option(options, "retentionMs", "number"),
      }),
  )
  .register(
    "opentsdb",
    (options) =>
      new OpenTsdbSink({
        url: option(options, "url", "string") ?? "http://127.0.0.1:4242",
        timeoutMs: option(options, "timeoutMs", "number"),
        assignUids: option(options, "assignUids", "boolean"),
      }),
  );
