import type { HealthStatus } from "../../core/health";

/**
 * The metrics sink family: where published points go and where the alert engine, the console
 * and capacity planning read them back. Implementations: `embedded` (SQLite time series under
 * the data dir) and `opentsdb` (`/api/put`, `/api/query`). Every implementation passes
 * `contract-suite.ts`.
 */

export interface MetricPoint {
  metric: string;
  /** Milliseconds since the epoch. */
  timestamp: number;
  value: number;
  /** At most 8 tags; keys and values in OpenTSDB's alphabet `[A-Za-z0-9-_./]`. */
  tags: Record<string, string>;
}

export type Aggregator = "sum" | "avg" | "min" | "max";

export interface SeriesQuery {
  metric: string;
  /** Milliseconds since the epoch, inclusive. */
  start: number;
  /** Milliseconds since the epoch, inclusive (default: now). */
  end?: number;
  /** Only series whose tags have exactly these values. */
  tags?: Record<string, string>;
  /** One result series per distinct combination of these tags; the rest are aggregated. */
  groupBy?: string[];
  /** How series are combined, and buckets summarised (default `avg`). */
  aggregator?: Aggregator;
  /** Bucket width; without it every point is returned. */
  downsampleMs?: number;
  /**
   * How one series' points inside a bucket are summarised (default: `aggregator`). Cumulative
   * counters want `max` here (the last total) and `sum` across series.
   */
  downsampleAggregator?: Aggregator;
}

export interface Series {
  metric: string;
  /** The group's tag values (only the `tags` filter and `groupBy` keys). */
  tags: Record<string, string>;
  /** `[timestamp ms, value]`, oldest first. */
  points: Array<[number, number]>;
}

export interface MetricsSink {
  /** Registry name of the implementation: `embedded`, `opentsdb`. */
  readonly type: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Writes a batch; rejects with `SinkWriteError` (retriable or not) when it cannot. */
  write(points: MetricPoint[]): Promise<void>;
  query(query: SeriesQuery): Promise<Series[]>;
  /** Distinct values of a tag of a metric (e.g. the tenants reporting an SLA). */
  tagValues(metric: string, tag: string, since: number): Promise<string[]>;
  health(): Promise<HealthStatus>;
}

/** A failed write; `retriable` false means the points themselves were refused and retrying is useless. */
export class SinkWriteError extends Error {
  constructor(
    message: string,
    readonly retriable: boolean,
  ) {
    super(message);
    this.name = "SinkWriteError";
  }
}

/** Combines values with an aggregator; shared by implementations that aggregate themselves. */
export function aggregate(values: number[], aggregator: Aggregator): number {
  switch (aggregator) {
    case "sum":
      return values.reduce((a, b) => a + b, 0);
    case "avg":
      return values.reduce((a, b) => a + b, 0) / values.length;
    case "min":
      return Math.min(...values);
    case "max":
      return Math.max(...values);
  }
}
