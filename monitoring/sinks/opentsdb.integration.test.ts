import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { ServiceBroker } from "moleculer";
import { STACK_ENDPOINTS } from "../../stack/index";
import { metricsOf } from "../metrics/library";
import { SinkReporter } from "../reporter/sink-reporter";
import { metricsSinkContractSuite } from "./contract-suite";
import { OpenTsdbSink } from "./opentsdb";

// Needs the stack's OpenTSDB: `npx tsx stack/cli.ts up opentsdb`, then HUB_TEST_STACK=1.
if (process.env.HUB_TEST_STACK !== "1") {
  throw new Error(
    "opentsdb.integration.test.ts needs the real OpenTSDB: run `npx tsx stack/cli.ts up opentsdb` and set HUB_TEST_STACK=1",
  );
}
const url = STACK_ENDPOINTS.opentsdb.url;

metricsSinkContractSuite("opentsdb", async () => {
  const sink = new OpenTsdbSink({ url });
  await sink.start();
  return sink;
});

/** Reads points back with OpenTSDB's own HTTP query API, independent of the sink's reader. */
async function queryTsdb(
  metric: string,
  tags: Record<string, string>,
  start: number,
): Promise<Array<{ tags: Record<string, string>; dps: Record<string, number> }>> {
  const filter = Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const response = await fetch(
    `${url}/api/query?start=${start}&ms=true&m=${encodeURIComponent(`sum:${metric}{${filter}}`)}`,
  );
  if (response.status === 400) return [];
  assert.equal(response.status, 200);
  return (await response.json()) as Array<{ tags: Record<string, string>; dps: Record<string, number> }>;
}

/**
 * Each series becomes readable on its own once OpenTSDB has written it to HBase (asynchronously,
 * after `/api/put` answered): polls for up to 10 s.
 */
async function queryWhenVisible(
  metric: string,
  tags: Record<string, string>,
  start: number,
): ReturnType<typeof queryTsdb> {
  let series: Awaited<ReturnType<typeof queryTsdb>> = [];
  for (let i = 0; i < 40 && series.length === 0; i++) {
    series = await queryTsdb(metric, tags, start);
    if (series.length === 0) await new Promise((r) => setTimeout(r, 250));
  }
  return series;
}

describe("OpenTSDB publisher against the real OpenTSDB", () => {
  it("publishes the metrics library's and Moleculer's metrics through /api/put, readable with /api/query", async () => {
    const run = randomUUID().slice(0, 8);
    const broker = new ServiceBroker({
      nodeID: `it-${run}`,
      logger: false,
      metrics: { enabled: true, collectProcessMetrics: false },
    });
    broker.createService({ name: "probe", actions: { ping: () => "pong" } });
    await broker.start();
    const reporter = new SinkReporter({ sink: new OpenTsdbSink({ url }), host: `it-${run}`, intervalMs: 3_600_000 });
    reporter.init(broker.metrics);
    const started = Date.now() - 1000;
    metricsOf(broker)
      .counter({ name: `hub.it.r${run}.accepted`, description: "x", tags: ["tenant", "type"] })
      .inc({ tenant: "acme", type: "visit_web_page" }, 42);
    metricsOf(broker)
      .histogram({ name: `hub.it.r${run}.latency.ms`, description: "x", tags: ["tenant"] })
      .observe(12, { tenant: "acme" });
    for (let i = 0; i < 5; i++) await broker.call("probe.ping");
    await reporter.tick();
    assert.equal(reporter.totals.errors, 0);
    assert.ok(reporter.totals.sent > 0);

    const series = await queryWhenVisible(`hub.it.r${run}.accepted`, { tenant: "acme" }, started);
    assert.equal(series.length, 1);
    assert.deepEqual(Object.values(series[0]!.dps), [42]);
    assert.equal(series[0]!.tags.type, "visit_web_page");
    assert.equal(series[0]!.tags.host, `it-${run}`);
    const p99 = await queryWhenVisible(`hub.it.r${run}.latency.ms.p99`, { tenant: "acme" }, started);
    assert.equal(p99.length, 1);
    const requests = await queryWhenVisible(
      "moleculer.request.total",
      { host: `it-${run}`, action: "probe.ping" },
      started,
    );
    assert.equal(Object.values(requests[0]!.dps).at(-1), 5);
    await reporter.stop();
    await broker.stop();
  });
});
