/**
 * Dynamics 365 connector driven through dynamics-web-api against the fake environment over HTTP.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { resolveOptions } from "../contract";
import { dynamicsHarness, listStream, type Harness } from "../sync/testing/harness";
import type { FakeDynamicsServer } from "../../test/fakes/dynamics-server";
import { dynamicsConnector } from ".";
import { dynamicsManifest } from "./manifest";

function leads(count: number, from = 0): Record<string, string>[] {
  return Array.from({ length: count }, (_, i) => ({
    lastname: `Last${from + i}`,
    emailaddress1: `l${from + i}@example.com`,
    hub_leadid: `lead-${from + i}`,
  }));
}

test("dynamics manifest pins the defaults table", () => {
  const resolved = resolveOptions(dynamicsManifest, {});
  assert.ok(resolved.ok);
  assert.deepEqual(resolved.options, {
    apiVersion: "9.2",
    leadAlternateKey: "hub_leadid",
    activityEntity: "tasks",
    activityAlternateKey: "hub_activityid",
    activityLeadField: "hub_leadid",
    scoreField: "hub_score",
    batchSize: 1000,
    batchMode: "changeset",
    pageSize: 5000,
    maxAttempts: 6,
    maxRetryAfterSeconds: 300,
    writeMode: "auto",
  });
});

describe("dynamics sync against the fake environment", () => {
  let h: Harness<FakeDynamicsServer>;
  const resetOutbound = async (): Promise<void> => h.store.commitOutbound(h.config.instanceId, "-1", [], []);

  before(async () => {
    h = await dynamicsHarness({ options: { pageSize: 400 } });
    await h.engine.configure(h.config, h.credentials);
  });
  after(async () => h.close());

  test("inbound: change tracking with delta links, paging and deletions", async () => {
    const ids = h.fake.insert("leads", leads(1000));
    const [run] = await h.engine.run(h.config.instanceId);
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.equal(run.counts.read, 1000);
    assert.equal(h.fake.calls.of("query"), 3, "1000 rows at 400 per page");
    assert.equal(h.emitted[0].leadId, "lead-0");
    assert.deepEqual(h.emitted[0].attributes.fields, { email: "l0@example.com", lastName: "Last0", crmScore: null });
    const watermark = await h.store.getWatermark(h.config.instanceId, "in:leads");
    assert.match(watermark ?? "", /deltatoken/);

    h.emitted.length = 0;
    h.fake.update("leads", ids[3], { hub_score: 5 });
    h.fake.delete("leads", ids[4]);
    const [delta] = await h.engine.run(h.config.instanceId);
    assert.equal(delta.counts.read, 1);
    assert.equal(delta.counts.deleted, 1);
    assert.equal(h.fake.calls.of("delta"), 1);
    assert.equal(h.emitted.find((a) => a.attributes.operation === "delete")?.leadId, "lead-4");
    assert.equal(h.emitted.find((a) => a.attributes.operation === "upsert")?.attributes.fields.crmScore, 5);
  });

  test("outbound: upsert by alternate key and activities in one $batch change set per 1,000", async () => {
    await resetOutbound();
    h.fake.calls.reset();
    const items = [
      ...Array.from({ length: 1500 }, (_, i) => ({
        kind: "activity" as const,
        activity: {
          id: `a-${i}`,
          tenantId: "tenant-b",
          leadId: `lead-${i}`,
          type: "email_clicked",
          occurredAt: new Date().toISOString(),
          attributes: { url: "https://x" },
        },
      })),
      {
        kind: "lead" as const,
        lead: {
          leadId: "new-lead",
          updatedAt: new Date().toISOString(),
          fields: { lastName: "O'Brien", email: "ob@example.com" },
        },
      },
      { kind: "score" as const, score: { leadId: "lead-9", score: 88 } },
    ];
    const [run] = await h.engine.run(h.config.instanceId, { source: listStream(items), directions: ["outbound"] });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.equal(run.counts.written, 1502);
    assert.equal(h.fake.count("tasks"), 1500);
    assert.equal(h.fake.findByKey("leads", "hub_leadid", "new-lead")?.lastname, "O'Brien");
    assert.equal(h.fake.findByKey("leads", "hub_leadid", "lead-9")?.hub_score, 88);
    assert.equal(h.fake.calls.of("batch"), 2 + 1 + 1, "two activity batches + lead + score");
  });

  test("an access token that expires mid-session is re-acquired once and the call retried", async () => {
    const resolved = resolveOptions(dynamicsManifest, {});
    assert.ok(resolved.ok);
    const session = await dynamicsConnector.openSession(
      { tenantId: "t", instanceId: "i", credentials: h.credentials, options: resolved.options },
      {},
    );
    const first = await session.updateScores([{ leadKey: "lead-11", score: 3 }]);
    assert.ok(first.results[0].ok);
    h.fake.calls.reset();
    h.fake.expireTokens();
    const second = await session.updateScores([{ leadKey: "lead-11", score: 4 }]);
    assert.ok(second.results[0].ok);
    assert.deepEqual(h.fake.calls.snapshot(), { batch: 2, auth: 1 });
    assert.equal(h.fake.findByKey("leads", "hub_leadid", "lead-11")?.hub_score, 4);
  });

  test("429 with Retry-After is honoured", async () => {
    await resetOutbound();
    h.fake.throttleNext(2, 1);
    const started = Date.now();
    const [run] = await h.engine.run(h.config.instanceId, {
      source: listStream([{ kind: "score", score: { leadId: "lead-10", score: 1 } }]),
      directions: ["outbound"],
    });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.ok(Date.now() - started >= 1900, "waited Retry-After twice");
  });

  test("partial batch failure: the change set is re-sent without the failing row's effect lost", async () => {
    await resetOutbound();
    h.fake.rejectRecords("tasks", (record) =>
      record.hub_activityid === "pf-2" ? { code: "0x80040265", message: "Rejected by a plug-in" } : undefined,
    );
    const items = Array.from({ length: 5 }, (_, i) => ({
      kind: "activity" as const,
      activity: {
        id: `pf-${i}`,
        tenantId: "tenant-b",
        leadId: "lead-1",
        type: "t",
        occurredAt: new Date().toISOString(),
      },
    }));
    const [run] = await h.engine.run(h.config.instanceId, { source: listStream(items), directions: ["outbound"] });
    assert.equal(run.status, "partial");
    assert.equal(run.counts.written, 4);
    const status = await h.engine.status(h.config.instanceId);
    assert.deepEqual([status.deadLetters[0].key, status.deadLetters[0].code], ["pf-2", "0x80040265"]);
    assert.ok(h.fake.findByKey("tasks", "hub_activityid", "pf-4"));
  });

  test("a field that no longer exists: test connection names it, sync fails with connector_invalid_field", async () => {
    h.fake.removeField("leads", "lastname");
    const check = await h.engine.testConnection(h.config.instanceId);
    assert.deepEqual(check.missingFields, [{ object: "leads", field: "lastname" }]);
    await h.store.commitInbound(h.config.instanceId, "in:leads", JSON.stringify({ link: undefined }), []);
    const [run] = await h.engine.run(h.config.instanceId);
    assert.equal(run.error?.code, "connector_invalid_field");
    assert.match(run.error?.message ?? "", /lastname/);
    assert.ok(!JSON.stringify(run).includes(h.fake.clientSecret));
  });
});
