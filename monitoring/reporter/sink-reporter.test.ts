import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServiceBroker } from "moleculer";
import { metricsOf } from "../metrics/library";
import { SinkWriteError, type MetricPoint, type MetricsSink } from "../sinks/contract";
import { bucketQuantile, Deduplicator, PointConverter } from "./points";
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
    for (const suffix of ["count", "sum", "mean", "p50", "p95", "p99"])
      assert.ok(byName.has(`hub.test.lat.ms.${suffix}`), suffix);
    const p99 = byName.get("hub.test.lat.ms.p99")!.value;
    assert.ok(p99 > 10 && p99 <= 20, `p99 ${p99}`);
    await reporter.stop();
  });

  it("keeps at most 8 tags and makes names OpenTSDB-safe", () => {
    const converter = new PointConverter("my host");
    const points = converter.convert(
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
      0,
    );
    assert.equal(Object.keys(points[0]!.tags).length, 8);
    assert.equal(points[0]!.tags.host, "my_host");
    assert.equal(converter.stats.truncatedTags, 3);
  });

  it("computes per-interval quantiles from bucket count deltas", () => {
    assert.equal(bucketQuantile(0.5, [10, 20, 50], [0, 10, 10], 10), 15);
    assert.equal(bucketQuantile(0.99, [10, 20, 50], [5, 5, 5], 10), 50, "beyond the last bound");
    const converter = new PointConverter("h");
    const snapshot = (count: number, sum: number, b: [number, number, number]) => [
      {
        type: "histogram",
        name: "hub.x.ms",
        labelNames: [],
        values: [{ labels: {}, count, sum, buckets: { 10: b[0], 100: b[1], 1000: b[2] }, timestamp: 0 }],
      },
    ];
    converter.convert(snapshot(100, 500, [100, 100, 100]), 0);
    const second = converter.convert(snapshot(200, 50_500, [100, 200, 200]), 1000);
    const p50 = second.find((p) => p.metric === "hub.x.ms.p50")!;
    assert.equal(p50.value, 55, "the second interval's observations all fell in (10, 100]");
    assert.equal(second.find((p) => p.metric === "hub.x.ms.mean")!.value, 500);
    assert.equal(
      converter.convert(snapshot(200, 50_500, [100, 200, 200]), 2000).filter((p) => p.metric.endsWith(".p50")).length,
      0,
    );
  });

  it("replaces Moleculer's sample-keeping timers with bucket histograms", async () => {
    const { broker, reporter } = setup();
    broker.metrics.register({
      type: "histogram",
      name: "moleculer.test.time",
      labelNames: ["a"],
      quantiles: true,
      buckets: true,
    });
    reporter.collect(1);
    assert.equal(
      (broker.metrics.getMetric("moleculer.test.time") as unknown as { quantiles?: unknown }).quantiles,
      undefined,
    );
    broker.metrics.observe("moleculer.test.time", 5, { a: "x" });
    await reporter.stop();
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
