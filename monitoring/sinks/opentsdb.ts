import type { HealthStatus } from "../../core/health";
import {
  SinkWriteError,
  type Aggregator,
  type MetricPoint,
  type MetricsSink,
  type Series,
  type SeriesQuery,
} from "./contract";

export interface OpenTsdbSinkOptions {
  /** Base URL, e.g. `http://127.0.0.1:4242`. */
  url: string;
  /** Timeout of one HTTP call (default 10 s). */
  timeoutMs?: number;
  /**
   * Assign UIDs of new metric names and tags through `/api/uid/assign` before their first put,
   * for OpenTSDBs running without `tsd.core.auto_create_metrics` (default false: the stack's
   * OpenTSDB auto-creates). A failed assignment does not fail the write: the put then says.
   */
  assignUids?: boolean;
}

interface QueryResult {
  metric: string;
  tags: Record<string, string>;
  dps: Record<string, number>;
}

/** OpenTSDB 2.4 over HTTP: `/api/put` for writes, `/api/query` for reads. */
export class OpenTsdbSink implements MetricsSink {
  readonly type = "opentsdb";
  private readonly url: string;
  private readonly timeoutMs: number;
  private readonly assigned = { metric: new Set<string>(), tagk: new Set<string>(), tagv: new Set<string>() };

  constructor(private readonly options: OpenTsdbSinkOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  async write(points: MetricPoint[]): Promise<void> {
    const valid = points.filter((p) => Number.isFinite(p.value));
    if (valid.length === 0) return;
    if (this.options.assignUids === true) await this.assignNew(valid);
    const body = valid.map((p) => ({
      metric: p.metric,
      timestamp: Math.round(p.timestamp),
      value: p.value,
      tags: p.tags,
    }));
    let response: Response;
    try {
      response = await this.post("/api/put?details", body);
    } catch (error) {
      throw new SinkWriteError(`OpenTSDB unreachable: ${String(error)}`, true);
    }
    if (response.ok) return;
    const text = await response.text().catch(() => "");
    // 4xx: the points were refused (bad names, unknown metric); 5xx: OpenTSDB or HBase is unwell.
    throw new SinkWriteError(
      `OpenTSDB /api/put answered ${response.status}: ${text.slice(0, 500)}`,
      response.status >= 500,
    );
  }

  async query(query: SeriesQuery): Promise<Series[]> {
    const aggregator = query.aggregator ?? "avg";
    const filters = [
      ...Object.entries(query.tags ?? {}).map(([tagk, value]) => ({
        type: "literal_or",
        tagk,
        filter: value,
        groupBy: true,
      })),
      ...(query.groupBy ?? []).map((tagk) => ({ type: "wildcard", tagk, filter: "*", groupBy: true })),
    ];
    const body = {
      start: Math.floor(query.start),
      end: Math.ceil(query.end ?? Date.now()),
      msResolution: true,
      queries: [
        {
          aggregator,
          metric: query.metric,
          filters,
          ...(query.downsampleMs
            ? { downsample: `${downsampleSpec(query.downsampleMs)}-${query.downsampleAggregator ?? aggregator}` }
            : {}),
        },
      ],
    };
    const results = await this.queryRaw(body);
    return results
      .map((r) => ({
        metric: r.metric,
        // OpenTSDB also returns tags common to every aggregated series; the contract gives only the
        // filter's and the groups' tags, so a series has the same identity on every sink.
        tags: Object.fromEntries(
          Object.entries(r.tags).filter(([k]) => k in (query.tags ?? {}) || (query.groupBy ?? []).includes(k)),
        ),
        points: Object.entries(r.dps)
          .map(([ts, value]): [number, number] => [Number(ts), value])
          .sort((a, b) => a[0] - b[0]),
      }))
      .filter((s) => s.points.length > 0);
  }

  async tagValues(metric: string, tag: string, since: number): Promise<string[]> {
    const results = await this.queryRaw({
      start: Math.floor(since),
      queries: [
        {
          aggregator: "max" satisfies Aggregator,
          metric,
          downsample: "0all-max",
          filters: [{ type: "wildcard", tagk: tag, filter: "*", groupBy: true }],
        },
      ],
    });
    return [...new Set(results.map((r) => r.tags[tag]).filter((v): v is string => v !== undefined))].sort();
  }

  async health(): Promise<HealthStatus> {
    try {
      const response = await fetch(`${this.url}/api/version`, {
        signal: AbortSignal.timeout(Math.min(this.timeoutMs, 5000)),
      });
      if (!response.ok) return { ok: false, status: "down", detail: `/api/version answered ${response.status}` };
      const version = (await response.json()) as { version?: string };
      return { ok: true, status: "up", detail: `OpenTSDB ${version.version ?? "?"}` };
    } catch (error) {
      return { ok: false, status: "down", detail: String(error) };
    }
  }

  private async queryRaw(body: unknown): Promise<QueryResult[]> {
    const response = await this.post("/api/query", body);
    if (response.status === 400) {
      const text = await response.text();
      // No data, or a metric / tag never written: an empty result, not an error.
      if (/No such name|does not exist/i.test(text)) return [];
      throw new Error(`OpenTSDB /api/query answered 400: ${text.slice(0, 500)}`);
    }
    if (!response.ok) throw new Error(`OpenTSDB /api/query answered ${response.status}`);
    return (await response.json()) as QueryResult[];
  }

  private async assignNew(points: MetricPoint[]): Promise<void> {
    const fresh = { metric: new Set<string>(), tagk: new Set<string>(), tagv: new Set<string>() };
    for (const p of points) {
      if (!this.assigned.metric.has(p.metric)) fresh.metric.add(p.metric);
      for (const [k, v] of Object.entries(p.tags)) {
        if (!this.assigned.tagk.has(k)) fresh.tagk.add(k);
        if (!this.assigned.tagv.has(v)) fresh.tagv.add(v);
      }
    }
    if (fresh.metric.size + fresh.tagk.size + fresh.tagv.size === 0) return;
    let response: Response;
    try {
      response = await this.post("/api/uid/assign", {
        metric: [...fresh.metric],
        tagk: [...fresh.tagk],
        tagv: [...fresh.tagv],
      });
    } catch (error) {
      throw new SinkWriteError(`OpenTSDB unreachable: ${String(error)}`, true);
    }
    await response.text().catch(() => "");
    // 400 also means "some of these already exist", which is what we want.
    if (response.status >= 500) throw new SinkWriteError(`OpenTSDB /api/uid/assign answered ${response.status}`, true);
    for (const kind of ["metric", "tagk", "tagv"] as const)
      for (const name of fresh[kind]) this.assigned[kind].add(name);
  }

  private post(path: string, body: unknown): Promise<Response> {
    return fetch(`${this.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
  }
}

function downsampleSpec(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
