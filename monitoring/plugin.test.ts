import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { restIngestionPlugin } from "../plugins/ingestion/plugin";
import { leadProfilesPlugin } from "../plugins/lead-profiles/plugin";
import { startTestHub, TEST_ADMIN_TOKEN, type TestHub } from "../test/support/hub";
import { eventually } from "../test/support/tmp";
import { monitoringPlugin } from "./plugin";

describe("monitoring plugin in a hub", () => {
  let hub: TestHub;
  let tenant: { tenantId: string; apiKey: string };

  before(async () => {
    hub = await startTestHub({
      plugins: [restIngestionPlugin, leadProfilesPlugin, monitoringPlugin],
      config: { plugins: { monitoring: { publishIntervalMs: 1000, evaluationIntervalMs: 1000 } } },
    });
    tenant = await hub.createTenant("metrics-tenant", { rate: 50, burst: 50 });
  });
  after(() => hub.stop());

  it("needs the platform admin token", async () => {
    assert.equal((await hub.request("GET", "/api/v1/monitoring/alerts", undefined)).status, 401);
    assert.equal((await hub.request("GET", "/api/v1/monitoring/alerts", tenant.apiKey)).status, 401);
    assert.equal((await hub.request("GET", "/api/v1/monitoring/alerts", TEST_ADMIN_TOKEN)).status, 200);
    assert.equal((await hub.request("GET", "/console/", undefined)).status, 200);
  });

  it("publishes business metrics per tenant and type, and Moleculer's own metrics, to the sink", async () => {
    const ok = { type: "visit_web_page", leadId: "l1", source: "web", attributes: { url: "https://example.com" } };
    assert.equal(
      (await hub.request("POST", "/api/v1/activities", tenant.apiKey, { activities: [ok, ok, ok] })).status,
      202,
    );
    assert.equal(
      (await hub.request("POST", "/api/v1/activities", tenant.apiKey, { activities: [{ type: "click_link" }] })).status,
      400,
    );
    const big = Array.from({ length: 60 }, () => ok);
    assert.equal((await hub.request("POST", "/api/v1/activities", tenant.apiKey, { activities: big })).status, 429);
    const series = async (metric: string, extra = "") =>
      (
        await hub.request(
          "GET",
          `/api/v1/monitoring/series?metric=${metric}&rangeMs=600000&aggregator=max${extra}`,
          TEST_ADMIN_TOKEN,
        )
      ).body.series as Array<{
        tags: Record<string, string>;
        points: Array<[number, number]>;
      }>;
    const accepted = await eventually(
      async () => {
        const s = await series("hub.intake.activities.accepted", "&groupBy=tenant,type");
        return s.length > 0 ? s : undefined;
      },
      20_000,
      "accepted metrics",
    );
    assert.deepEqual(accepted[0]!.tags, { tenant: tenant.tenantId, type: "visit_web_page" });
    assert.equal(accepted[0]!.points.at(-1)![1], 3);
    const rejected = await series("hub.intake.activities.rejected", "&groupBy=type");
    assert.equal(rejected[0]!.tags.type, "click_link");
    const throttled = await series("hub.intake.activities.throttled");
    assert.equal(throttled[0]!.points.at(-1)![1], 60);
    const requests = await series("moleculer.request.total", "&tags=action:intake.ingest");
    assert.ok(requests[0]!.points.at(-1)![1] >= 3);
    const p99 = await series("hub.sla.intake_to_store.ms.p99", "&groupBy=tenant");
    assert.equal(p99[0]!.tags.tenant, tenant.tenantId);
  });

  it("reports collectors: process, host, queue lag and engine health", async () => {
    const status = await eventually(
      async () => {
        const s = (await hub.request("GET", "/api/v1/monitoring/status", TEST_ADMIN_TOKEN)).body;
        return s.consumerGroups["lead-profiles/hub.activities"] ? s : undefined;
      },
      20_000,
      "collector status",
    );
    assert.equal(status.engines.queue.ok, true);
    assert.equal(status.engines.store.ok, true);
    assert.equal(status.engines.metrics.ok, true);
    for (const metric of [
      "hub.process.memory.bytes",
      "hub.host.memory.bytes",
      "hub.queue.lag.messages",
      "hub.engine.up",
    ]) {
      const s = (
        await hub.request("GET", `/api/v1/monitoring/series?metric=${metric}&rangeMs=600000`, TEST_ADMIN_TOKEN)
      ).body.series;
      assert.ok(s.length > 0, metric);
    }
  });

  it("manages rules over REST with field-level validation", async () => {
    const bad = await hub.request("POST", "/api/v1/monitoring/rules", TEST_ADMIN_TOKEN, {
      kind: "threshold",
      name: "x",
      query: { metric: "m" },
      op: ">",
    });
    assert.equal(bad.status, 400);
    assert.ok(bad.body.error.details.some((d: { field: string }) => d.field === "value"));
    const rule = await hub.request("POST", "/api/v1/monitoring/rules", TEST_ADMIN_TOKEN, {
      kind: "absence",
      name: "No data",
      query: { metric: "hub.none" },
      absentForMs: 60_000,
    });
    assert.equal(rule.status, 201);
    const updated = await hub.request("PUT", `/api/v1/monitoring/rules/${rule.body.id}`, TEST_ADMIN_TOKEN, {
      ...rule.body,
      absentForMs: 120_000,
    });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.absentForMs, 120_000);
    assert.equal(
      (await hub.request("DELETE", `/api/v1/monitoring/rules/${rule.body.id}`, TEST_ADMIN_TOKEN)).status,
      204,
    );
    assert.equal((await hub.request("GET", `/api/v1/monitoring/rules/${rule.body.id}`, TEST_ADMIN_TOKEN)).status, 404);
  });
});
