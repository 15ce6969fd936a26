import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { ServiceBroker } from "moleculer";
import { metricsOf } from "../metrics/library";
import { SinkReporter } from "../reporter/sink-reporter";
import { SinkWriteError } from "./contract";
import { OpenTsdbSink } from "./opentsdb";

/** A port nothing listens on: OpenTSDB is away. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

describe("OpenTSDB publisher while OpenTSDB is away", () => {
  it("fails writes as retriable and reports down", async () => {
    const sink = new OpenTsdbSink({ url: `http://127.0.0.1:${await closedPort()}`, timeoutMs: 1000 });
    await assert.rejects(
      sink.write([{ metric: "hub.x.y", timestamp: Date.now(), value: 1, tags: { host: "h" } }]),
      (e: SinkWriteError) => e.retriable,
    );
    assert.equal((await sink.health()).ok, false);
  });

  it("keeps memory bounded and counts drops over 5 minutes of outage", async () => {
    const broker = new ServiceBroker({ logger: false, metrics: { enabled: true, collectProcessMetrics: false } });
    const sink = new OpenTsdbSink({ url: `http://127.0.0.1:${await closedPort()}`, timeoutMs: 500 });
    const reporter = new SinkReporter({
      sink,
      host: "h",
      intervalMs: 3_600_000,
      maxBuffer: 20_000,
      dedupMaxAgeMs: 0,
      backoffMs: 1,
      maxBackoffMs: 5,
    });
    reporter.init(broker.metrics);
    const gauge = metricsOf(broker).gauge({ name: "hub.test.outage", description: "x", tags: ["n"] });
    for (let n = 0; n < 2000; n++) gauge.set(n, { n });
    const heapBefore = process.memoryUsage().heapUsed;
    // 5 minutes of 5-second publications, with simulated time.
    let now = Date.now();
    for (let i = 0; i < 60; i++) {
      await reporter.tick((now += 5000));
      await new Promise((r) => setTimeout(r, 6));
    }
    assert.ok(reporter.buffered <= 20_000);
    assert.ok(reporter.totals.dropped >= 60 * 2000 - 20_000 - 2000, `dropped ${reporter.totals.dropped}`);
    assert.ok(reporter.totals.errors > 0 && reporter.totals.errors < 120, `attempts ${reporter.totals.errors}`);
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 64 * 1024 * 1024);
    await reporter.stop();
  });
});
