import type { HealthStatus } from "../../core/health";
import type { Metrics } from "../metrics/library";
import type { Collector } from "./collector";

export interface EngineCheck {
  /** `queue`, `store`, `metrics`, `search`, … */
  engine: string;
  /** Implementation, e.g. `kafka`, `hbase`, `opentsdb`, `solr`. */
  type: string;
  check(): Promise<HealthStatus>;
}

/** An engine reachable over HTTP (Solr, HBase REST, …): up when `url` answers 2xx. */
export function httpCheck(engine: string, type: string, url: string, timeoutMs = 5000): EngineCheck {
  return {
    engine,
    type,
    async check() {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        await response.arrayBuffer();
        return response.ok
          ? { ok: true, status: "up" }
          : { ok: false, status: "down", detail: `HTTP ${response.status}` };
      } catch (error) {
        return { ok: false, status: "down", detail: String(error) };
      }
    },
  };
}

/** Health of the engines (Kafka, HBase, Solr, OpenTSDB or their embedded stand-ins): up 1/0 and check time. */
export function engineCollector(
  metrics: Metrics,
  intervalMs: number,
  checks: () => EngineCheck[],
): Collector & { last: Map<string, HealthStatus & { type: string; ms: number }> } {
  const up = metrics.gauge({
    name: "hub.engine.up",
    description: "1 when the engine answers its health check",
    tags: ["engine", "type"],
  });
  const latency = metrics.gauge({
    name: "hub.engine.check.ms",
    description: "Time the health check took",
    tags: ["engine", "type"],
    unit: "ms",
  });
  const last = new Map<string, HealthStatus & { type: string; ms: number }>();
  return {
    name: "engines",
    intervalMs,
    last,
    async collect() {
      await Promise.all(
        checks().map(async (c) => {
          const start = performance.now();
          const status = await c
            .check()
            .catch((error: unknown): HealthStatus => ({ ok: false, status: "down", detail: String(error) }));
          const ms = performance.now() - start;
          up.set(status.ok ? 1 : 0, { engine: c.engine, type: c.type });
          latency.set(ms, { engine: c.engine, type: c.type });
          last.set(c.engine, { ...status, type: c.type, ms });
        }),
      );
    },
  };
}
