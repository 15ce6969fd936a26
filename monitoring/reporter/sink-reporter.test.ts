import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServiceBroker } from "moleculer";
import { metricsOf } from "../metrics/library";
import { SinkWriteError, type MetricPoint, type MetricsSink } from "../sinks/contract";
import { Deduplicator, toPoints } from "./points";
import { PUBLISHER_METRICS, SinkReporter } from "./sink-reporter";

/** A sink that can be switched off, like OpenTSDB going away. */
class FlakySink implements MetricsSink {
  readonly type = "flaky";
  up = true;
  refuse = false;
  written: MetricPoint[] = [];
  writes = 0;
  async start() {}
  async stop() {}
  async write(points: MetricPoint[]) {
    this.writes++;
    if (this.refuse) throw new SinkWriteError("bad metric", false);
    if (!this.up) throw new SinkWriteError("connection refused", true);
    this.written.push(...points);
  }
  async query() {
    return [];
  }
  async tagValues() {
    return [];
  }
  async health() {
    return { ok: this.up, status: this.up ? "up" : "down" };
  }
}

function setup(options: Partial<ConstructorParameters<typeof SinkReporter>[0]> = {}) {
  const broker = new ServiceBroker({ logger: false, metrics: { enabled: true, collectProcessMetrics: false } });
  const sink = new FlakySink();
  const reporter = new SinkReporter({
    sink,
    host: "node-1",
    intervalMs: 3_600_000,
    backoffMs: 10,
    maxBackoffMs: 40,
    ...options,
  });
  reporter.init(broker.metrics);
  return { broker, sink, reporter, metrics: metricsOf(broker) };
}

describe("sink reporter (the OpenTSDB publisher)", () => {
  it("publishes counters, gauges and histogram summaries with a host tag", async () => {
    const { sink, reporter, metrics } = setup();
    metrics.counter({ name: "hub.test.count", description: "x", tags: ["tenant"] }).inc({ tenant: "t1" }, 5);
    metrics.histogram({ name: "hub.test.lat.ms", description: "x", tags: [] }).observe(12);
    await reporter.tick(1_000_000);
    const byName = new Map(sink.written.map((p) => [p.metric, p]));
    assert.deepEqual(byName.get("hub.test.count"), {
      metric: "hub.test.count",
      timestamp: 1_000_000,
      value: 5,
      tags: { host: "node-1", tenant: "t1" },
    });
    for (const suffix of ["count", "sum", "mean", "max", "p50", "p95", "p99"])
      assert.ok(byName.has(`hub.test.lat.ms.${suffix}`), suffix);
    assert.equal(byName.get("hub.test.lat.ms.p99")!.value, 12);
    await reporter.stop();
  });

  it("keeps at most 8 tags and makes names OpenTSDB-safe", () => {
    const stats = { truncatedTags: 0 };
    const points = toPoints(
      [
        {
          type: "gauge",
          name: "moleculer.x",
          labelNames: [],
          values: [
            {
              labels: {
                a: "1",
                b: "2",
                c: "3",
                d: "4",
                e: "5",
                f: "6",
                g: "7",
                h: "8",
                i: "9",
                caller: null,
                svc: "a b/é",
              },
              value: 1,
              timestamp: 0,
            },
          ],
        },
      ],
      "my host",
      0,
      stats,
    );
    assert.equal(Object.keys(points[0]!.tags).length, 8);
    assert.equal(points[0]!.tags.host, "my_host");
    assert.equal(stats.truncatedTags, 3);
  });

  it("de-duplicates unchanged values like tcollector and sends the last flat point on change", () => {
    const dedup = new Deduplicator(60_000);
    const p = (t: number, v: number): MetricPoint => ({ metric: "m", timestamp: t, value: v, tags: { host: "h" } });
    assert.deepEqual(
      dedup.filter([p(0, 1)]).map((x) => x.timestamp),
      [0],
    );
    assert.deepEqual(dedup.filter([p(10_000, 1)]), []);
    assert.deepEqual(dedup.filter([p(20_000, 1)]), []);
    assert.deepEqual(
      dedup.filter([p(30_000, 2)]).map((x) => [x.timestamp, x.value]),
      [
        [20_000, 1],
        [30_000, 2],
      ],
    );
    assert.deepEqual(
      dedup.filter([p(95_000, 2)]).map((x) => x.timestamp),
      [95_000],
      "re-sent after the horizon",
    );
  });

  it("buffers while the sink is away, bounded, counting drops, then catches up with backoff", async () => {
    const { sink, reporter, metrics, broker } = setup({ maxBuffer: 1000, batchSize: 100, dedupMaxAgeMs: 0 });
    const gauge = metrics.gauge({ name: "hub.test.series", description: "x", tags: ["n"] });
    for (let n = 0; n < 300; n++) gauge.set(n, { n });
    sink.up = false;
    let t = 1_000_000;
    for (let i = 0; i < 10; i++) {
      await reporter.tick((t += 10_000));
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(reporter.buffered <= 1000, `buffer ${reporter.buffered}`);
    assert.ok(reporter.totals.dropped > 0);
    assert.ok(sink.writes < 10 * 20, `writes while down: ${sink.writes} (backoff keeps this low)`);
    const dropped = broker.metrics.getMetric(PUBLISHER_METRICS.dropped).get() as { value: number };
    assert.equal(dropped.value, reporter.totals.dropped);
    sink.up = true;
    await new Promise((r) => setTimeout(r, 60));
    await reporter.flush(Date.now());
    assert.equal(reporter.buffered, 0);
    assert.ok(sink.written.length >= 900);
    await reporter.stop();
  });

  it("drops and counts points the sink refuses instead of retrying them forever", async () => {
    const { sink, reporter, metrics } = setup();
    metrics.gauge({ name: "hub.test.refused", description: "x", tags: [] }).set(1);
    sink.refuse = true;
    await reporter.tick(1);
    assert.ok(reporter.totals.rejected > 0);
    assert.equal(reporter.buffered, 0);
    await reporter.stop();
  });
});
