import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServiceBroker, type Middleware } from "moleculer";
import { INTERNAL_MIDDLEWARES, requestMetricsMiddleware } from "./request-metrics";

describe("request metrics middleware", () => {
  it("counts every call, samples the timer and records errors, under the stock metric names", async () => {
    const broker = new ServiceBroker({
      logger: false,
      metrics: { enabled: true, collectProcessMetrics: false },
      internalMiddlewares: false,
      middlewares: INTERNAL_MIDDLEWARES.map((name) =>
        name === "Metrics" ? (requestMetricsMiddleware as unknown as Middleware) : name,
      ),
    });
    broker.createService({
      name: "probe",
      actions: {
        ok: () => "pong",
        fail: () => {
          throw new Error("boom");
        },
      },
    });
    await broker.start();
    for (let i = 0; i < 500; i++) await broker.call("probe.ok");
    for (let i = 0; i < 3; i++) await broker.call("probe.fail").catch(() => undefined);
    await broker.stop(); // flushes the counters
    const labels = { service: "probe", action: "probe.ok", caller: null, type: "local" };
    const total = broker.metrics.getMetric("moleculer.request.total")!.get(labels);
    assert.equal(total?.value, 500);
    const failed = broker.metrics.getMetric("moleculer.request.total")!.get({ ...labels, action: "probe.fail" });
    assert.equal(failed?.value, 3);
    const errors = (
      broker.metrics.getMetric("moleculer.request.error.total")!.snapshot() as Array<{
        labels: Record<string, unknown>;
        value: number;
      }>
    ).filter((v) => v.labels.action === "probe.fail");
    assert.equal(
      errors.reduce((sum, v) => sum + v.value, 0),
      3,
    );
    const time = broker.metrics.getMetric("moleculer.request.time")!.get(labels) as { count?: number } | null;
    // The first flush comes after a second: until then every call is timed.
    assert.ok((time?.count ?? 0) > 0 && (time?.count ?? 0) <= 500);
    assert.equal(broker.metrics.getMetric("moleculer.request.active")!.get(labels)?.value, 0);
  });
});
