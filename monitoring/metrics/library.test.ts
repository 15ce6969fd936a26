import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServiceBroker } from "moleculer";
import { Metrics, metricsOf } from "./library";
import { OTHER_TENANT, TenantGuard } from "./tenant-guard";

function broker(enabled: boolean): ServiceBroker {
  return new ServiceBroker({ logger: false, metrics: { enabled, collectProcessMetrics: false } });
}

describe("metrics library", () => {
  it("records counters, gauges and histograms in Moleculer's registry", () => {
    const b = broker(true);
    const m = metricsOf(b);
    m.counter({ name: "hub.test.things", description: "things", tags: ["kind"] }).inc({ kind: "a" }, 3);
    m.gauge({ name: "hub.test.level", description: "level", tags: [] }).set(7);
    const timer = m.histogram({ name: "hub.test.latency.ms", description: "latency", tags: ["kind"] });
    timer.observe(10, { kind: "a" });
    timer.observe(30, { kind: "a" });
    const list = b.metrics.list();
    const things = list.find((x) => x.name === "hub.test.things")!;
    assert.deepEqual(
      things.values.map((v) => [v.labels, (v as { value: number }).value]),
      [[{ kind: "a" }, 3]],
    );
    const latency = list.find((x) => x.name === "hub.test.latency.ms")!.values[0] as { count: number; sum: number };
    assert.equal(latency.count, 2);
    assert.equal(latency.sum, 40);
    assert.equal(metricsOf(b), m, "one library per broker");
  });

  it("records a weighted observation exactly as that many single ones", () => {
    const snapshot = (weighted: boolean): unknown => {
      const b = broker(true);
      const h = metricsOf(b).histogram({ name: "hub.test.weighted.ms", description: "x", tags: ["kind"] });
      for (const [value, count] of [
        [3, 250],
        [0.5, 1],
        [70_000, 4],
        [12.5, 0],
      ] as const) {
        if (weighted) h.observe(value, { kind: "a" }, count);
        else for (let i = 0; i < count; i++) h.observe(value, { kind: "a" });
      }
      const series = b.metrics.list().find((x) => x.name === "hub.test.weighted.ms")!.values[0] as {
        count: number;
        sum: number;
        buckets: Record<string, number>;
      };
      return { count: series.count, sum: series.sum, buckets: series.buckets };
    };
    const single = snapshot(false) as { count: number; buckets: Record<string, number> };
    assert.equal(single.count, 255);
    assert.equal(single.buckets["5"], 251);
    assert.deepEqual(snapshot(true), single);
  });

  it("returns the same metric when registered twice and refuses a type change", () => {
    const m = metricsOf(broker(true));
    const a = m.counter({ name: "hub.test.twice", description: "x", tags: [] });
    const b = m.counter({ name: "hub.test.twice", description: "x", tags: [] });
    a.inc();
    b.inc();
    assert.throws(
      () => m.gauge({ name: "hub.test.twice", description: "x", tags: [] }),
      /already registered as a counter/,
    );
  });

  it("enforces the naming convention and the tag limit", () => {
    const m = metricsOf(broker(true));
    assert.throws(() => m.counter({ name: "Hub.Bad Name", description: "x", tags: [] }), /naming convention/);
    assert.throws(() => m.counter({ name: "single", description: "x", tags: [] }), /naming convention/);
    assert.throws(() => m.counter({ name: "hub.test.tags", description: "x", tags: ["BadTag"] }), /lower snake case/);
    assert.throws(
      () => m.counter({ name: "hub.test.many", description: "x", tags: ["a", "b", "c", "d", "e", "f", "g", "h"] }),
      /more than 7 tags/,
    );
  });

  it("is a no-op when metrics are off", () => {
    const m = metricsOf(broker(false));
    assert.equal(m.enabled, false);
    m.counter({ name: "hub.test.off", description: "x", tags: [] }).inc();
    const end = m.histogram({ name: "hub.test.off.ms", description: "x", tags: [] }).startTimer();
    assert.ok(end() >= 0);
  });

  it("folds tenants beyond the guard's limit into _other, counting them", () => {
    const b = broker(true);
    const m = new Metrics(b.metrics, { maxTenants: 2, pinnedTenants: ["vip"] });
    const c = m.counter({ name: "hub.test.per_tenant", description: "x", tags: ["tenant"] });
    for (const t of ["vip", "t1", "t2", "t3", "t1"]) c.inc({ tenant: t });
    const values = b.metrics
      .list()
      .find((x) => x.name === "hub.test.per_tenant")!
      .values.map((v) => [v.labels.tenant, (v as { value: number }).value]);
    assert.deepEqual(Object.fromEntries(values), { vip: 1, t1: 2, [OTHER_TENANT]: 2 });
    assert.deepEqual(m.tenants.stats(), { admitted: 2, foldedTenants: 2, foldedObservations: 2 });
  });

  it("keeps a tenant's series once admitted", () => {
    const guard = new TenantGuard(1);
    assert.equal(guard.tag("a"), "a");
    assert.equal(guard.tag("b"), OTHER_TENANT);
    guard.configure(5);
    assert.equal(guard.tag("a"), "a");
    assert.equal(guard.tag("b"), "b");
  });
});
