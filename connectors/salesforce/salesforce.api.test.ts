/**
 * Salesforce connector driven through jsforce against the fake org over HTTP (no mocked client).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { resolveOptions } from "../contract";
import { listStream, salesforceHarness, type Harness } from "../sync/testing/harness";
import type { FakeSalesforceServer } from "../../test/fakes/salesforce-server";
import { salesforceManifest } from "./manifest";
import { buildChangesQuery } from "./operations/query-changes";

function leads(count: number, from = 0): Record<string, string>[] {
  return Array.from({ length: count }, (_, i) => ({
    LastName: `Last${from + i}`,
    Company: "Acme",
    Email: `l${from + i}@example.com`,
    Hub_Lead_Id__c: `lead-${from + i}`,
  }));
}

describe("salesforce manifest", () => {
  test("pins the defaults table", () => {
    const resolved = resolveOptions(salesforceManifest, {});
    assert.ok(resolved.ok);
    assert.deepEqual(resolved.options, {
      apiVersion: "62.0",
      leadExternalIdField: "Hub_Lead_Id__c",
      taskExternalIdField: "Hub_Activity_Id__c",
      taskLeadField: "Hub_Lead_Id__c",
      scoreField: "Hub_Score__c",
      bulkThreshold: 2000,
      queryBatchSize: 2000,
      safetyLagSeconds: 60,
      maxDailyApiShare: 0.5,
      bulkPollIntervalMs: 2000,
      bulkPollTimeoutMs: 600000,
      maxAttempts: 6,
      writeMode: "auto",
    });
    assert.deepEqual(
      salesforceManifest.credentials.map((m) => [m.mode, m.fields.filter((f) => f.secret).map((f) => f.name)]),
      [
        ["jwt_bearer", ["privateKey"]],
        ["client_credentials", ["clientSecret"]],
        ["refresh_token", ["clientSecret", "refreshToken"]],
      ],
    );
  });

  test("watermark query breaks SystemModstamp ties by Id", () => {
    const soql = buildChangesQuery(
      "Lead",
      ["Email"],
      { modstamp: "2024-01-01T00:00:00Z", lastId: "00Q1", deletedSince: "x" },
      Date.UTC(2024, 0, 2),
    );
    assert.equal(
      soql,
      "SELECT Id, SystemModstamp, Email FROM Lead WHERE (SystemModstamp > 2024-01-01T00:00:00Z OR (SystemModstamp = 2024-01-01T00:00:00Z AND Id > '00Q1')) AND SystemModstamp <= 2024-01-02T00:00:00Z ORDER BY SystemModstamp ASC, Id ASC",
    );
  });
});

describe("salesforce sync against the fake org", () => {
  let h: Harness<FakeSalesforceServer>;

  before(async () => {
    h = await salesforceHarness({ options: { queryBatchSize: 500 } });
    await h.engine.configure(h.config, h.credentials);
  });
  after(async () => h.close());

  /** Each test replays its own outbound stream from the start. */
  async function resetOutbound(): Promise<void> {
    await h.store.commitOutbound(h.config.instanceId, "-1", [], []);
  }

  test("inbound: incremental by SystemModstamp with a stored watermark, all objects, deletions", async () => {
    const ids = h.fake.insert("Lead", leads(1234));
    const [run] = await h.engine.run(h.config.instanceId);
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.equal(run.counts.read, 1234);
    assert.equal(h.emitted.length, 1234);
    const first = h.emitted[0];
    assert.equal(first.type, "crm_sync");
    assert.equal(first.source, "crm");
    assert.equal(first.leadId, "lead-0");
    assert.deepEqual(first.attributes.fields, {
      email: "l0@example.com",
      lastName: "Last0",
      company: "Acme",
      crmScore: null,
    });
    assert.match(first.id, /^crm_[0-9a-f]{32}$/);
    assert.equal(h.fake.calls.of("query"), 1);
    assert.equal(h.fake.calls.of("queryMore"), 2, "1234 records at 500 per page");

    // Nothing changed: the watermark makes the next run read nothing.
    h.emitted.length = 0;
    const [idle] = await h.engine.run(h.config.instanceId);
    assert.equal(idle.counts.read, 0);

    // Two changes and a deletion inside the getDeleted window.
    const watermark = await h.store.getWatermark(h.config.instanceId, "in:Lead");
    assert.ok(watermark);
    const cursor: unknown = JSON.parse(watermark);
    assert.ok(typeof cursor === "object" && cursor !== null);
    await h.store.commitInbound(
      h.config.instanceId,
      "in:Lead",
      JSON.stringify({ ...cursor, deletedSince: new Date(Date.now() - 10 * 60_000).toISOString() }),
      [],
    );
    await new Promise((resolve) => setTimeout(resolve, 1100));
    h.fake.update("Lead", ids[5], { Email: "changed@example.com" });
    h.fake.update("Lead", ids[6], { Hub_Score__c: 42 });
    h.fake.delete("Lead", ids[7], Date.now() - 5 * 60_000);
    const [incremental] = await h.engine.run(h.config.instanceId);
    assert.equal(incremental.status, "succeeded", JSON.stringify(incremental.error));
    assert.equal(incremental.counts.read, 2);
    assert.equal(incremental.counts.deleted, 1);
    const deletion = h.emitted.find((a) => a.attributes.operation === "delete");
    assert.equal(deletion?.leadId, "lead-7", "deleted records resolve to the hub lead seen before");
    assert.equal(h.emitted.find((a) => a.attributes.crmId === ids[6])?.attributes.fields.crmScore, 42);

    // Other objects sync too, with CampaignMember linked to its lead.
    const config = {
      ...h.config,
      inbound: { ...h.config.inbound, objects: ["Contact", "Account", "Opportunity", "CampaignMember"] },
    };
    await h.engine.configure(config);
    h.fake.insert("Contact", [{ LastName: "C", Email: "c@example.com" }]);
    h.fake.insert("Account", [{ Name: "Acme" }]);
    h.fake.insert("Opportunity", [{ Name: "Big deal", Amount: 1000, StageName: "Prospecting" }]);
    h.fake.insert("CampaignMember", [{ LeadId: ids[1], Status: "Responded", HasResponded: true }]);
    h.emitted.length = 0;
    const [others] = await h.engine.run(h.config.instanceId);
    assert.equal(others.counts.read, 4, JSON.stringify(others.error));
    assert.equal(h.emitted.find((a) => a.attributes.object === "CampaignMember")?.leadId, ids[1]);
    assert.equal(
      h.emitted.find((a) => a.attributes.object === "Opportunity")?.attributes.fields.opportunityAmount,
      1000,
    );
    await h.engine.configure(h.config);
  });

  test("outbound: leads upsert by external id, tasks and scores via sObject Collections; expired token refreshed", async () => {
    h.fake.calls.reset();
    h.fake.expireTokens();
    const items = [
      ...Array.from({ length: 250 }, (_, i) => ({
        kind: "lead" as const,
        lead: {
          leadId: `out-${i}`,
          updatedAt: new Date().toISOString(),
          fields: { lastName: `Out${i}`, company: "Hub", email: `o${i}@example.com` },
        },
      })),
      ...Array.from({ length: 30 }, (_, i) => ({
        kind: "activity" as const,
        activity: {
          id: `a-${i}`,
          tenantId: "tenant-a",
          leadId: `out-${i}`,
          type: "fill_out_form",
          occurredAt: new Date().toISOString(),
          attributes: { formName: "Demo" },
        },
      })),
      {
        kind: "activity" as const,
        activity: {
          id: "echo",
          tenantId: "tenant-a",
          leadId: "out-1",
          type: "crm_sync",
          source: "crm",
          occurredAt: new Date().toISOString(),
        },
      },
      { kind: "score" as const, score: { leadId: "out-3", score: 77 } },
    ];
    const [inbound, outbound] = await h.engine.run(h.config.instanceId, { source: listStream(items) });
    assert.equal(inbound.status, "succeeded");
    assert.equal(outbound.status, "succeeded", JSON.stringify(outbound.error));
    assert.equal(outbound.counts.written, 281);
    assert.equal(outbound.counts.skipped, 1, "crm_sync activities are never echoed back");
    assert.equal(h.fake.findByExternalId("Lead", "Hub_Lead_Id__c", "out-3")?.Hub_Score__c, 77);
    assert.equal(h.fake.findByExternalId("Task", "Hub_Activity_Id__c", "a-5")?.Subject, "fill_out_form: Demo");
    assert.ok(h.fake.calls.of("auth") >= 2, "a new token was obtained after the 401");
    assert.deepEqual(outbound.paths, { collection: 281 });

    // Redelivery of the same stream after resetting the position: same records, no duplicates.
    await h.store.commitOutbound(h.config.instanceId, "-1", [], []);
    const tasksBefore = h.fake.count("Task");
    await h.engine.run(h.config.instanceId, { source: listStream(items), directions: ["outbound"] });
    assert.equal(h.fake.count("Task"), tasksBefore);
  });

  test("outbound: Bulk API 2.0 above the threshold, ≤ 2 calls per 1,000 records", async () => {
    await resetOutbound();
    h.fake.calls.reset();
    const count = 5000;
    const items = Array.from({ length: count }, (_, i) => ({
      kind: "activity" as const,
      activity: {
        id: `bulk-${i}`,
        tenantId: "tenant-a",
        leadId: `lead-${i}`,
        type: "email_opened",
        occurredAt: new Date().toISOString(),
      },
    }));
    const [run] = await h.engine.run(h.config.instanceId, { source: listStream(items), directions: ["outbound"] });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.equal(run.counts.written, count);
    assert.deepEqual(run.paths, { bulk: count });
    const dataCalls = h.fake.calls.total - h.fake.calls.of("auth");
    assert.ok((dataCalls / count) * 1000 <= 2, `calls per 1000: ${(dataCalls / count) * 1000}`);
  });

  test("partial batch failure: bad records become dead letters, UNABLE_TO_LOCK_ROW is retried", async () => {
    await resetOutbound();
    let locked = 2;
    h.fake.rejectRecords("Task", (record) => {
      if (record.Hub_Activity_Id__c === "pf-3")
        return { status: 400, errorCode: "STRING_TOO_LONG", message: "Subject: data value too large" };
      if (record.Hub_Activity_Id__c === "pf-4" && locked-- > 0)
        return {
          status: 400,
          errorCode: "UNABLE_TO_LOCK_ROW",
          message: "unable to obtain exclusive access to this record",
        };
      return undefined;
    });
    const items = Array.from({ length: 10 }, (_, i) => ({
      kind: "activity" as const,
      activity: {
        id: `pf-${i}`,
        tenantId: "tenant-a",
        leadId: "lead-1",
        type: "t",
        occurredAt: new Date().toISOString(),
      },
    }));
    const [run] = await h.engine.run(h.config.instanceId, { source: listStream(items), directions: ["outbound"] });
    assert.equal(run.status, "partial");
    assert.equal(run.counts.written, 9);
    assert.equal(run.counts.failed, 1);
    const status = await h.engine.status(h.config.instanceId);
    assert.equal(status.deadLetters[0].key, "pf-3");
    assert.equal(status.deadLetters[0].code, "STRING_TOO_LONG");
    assert.ok(h.fake.findByExternalId("Task", "Hub_Activity_Id__c", "pf-4"), "locked row succeeded on retry");
  });

  test("rate limiting: REQUEST_LIMIT_EXCEEDED (concurrency) is retried with backoff", async () => {
    await resetOutbound();
    h.fake.failNext("collection", 2, {
      status: 403,
      errorCode: "REQUEST_LIMIT_EXCEEDED",
      message: "ConcurrentPerOrgLongTxn Limit exceeded.",
    });
    h.fake.failNext("collection", 1, { status: 503, errorCode: "SERVER_UNAVAILABLE", message: "try later" });
    const items = [{ kind: "score" as const, score: { leadId: "out-4", score: 12 } }];
    const [run] = await h.engine.run(h.config.instanceId, { source: listStream(items), directions: ["outbound"] });
    assert.equal(run.status, "succeeded", JSON.stringify(run.error));
    assert.equal(h.fake.findByExternalId("Lead", "Hub_Lead_Id__c", "out-4")?.Hub_Score__c, 12);
  });

  test("daily quota: stops at the configured share of Sforce-Limit-Info and resumes from the watermark", async () => {
    h.fake.insert("Lead", leads(1000, 50_000));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    // maxDailyApiShare is 0.5: after the first page the org reports half its limit used.
    h.fake.dailyLimit = 2 * (h.fake.apiUsed + 1);
    const [run] = await h.engine.run(h.config.instanceId);
    assert.equal(run.status, "failed");
    assert.equal(run.error?.code, "connector_quota_exhausted");
    assert.equal(run.counts.read, 500, "the first page was committed before the guard stopped the run");
    h.fake.dailyLimit = h.fake.apiUsed;
    const [refused] = await h.engine.run(h.config.instanceId);
    assert.equal(refused.error?.code, "connector_quota_exhausted", "REQUEST_LIMIT_EXCEEDED TotalRequests from the org");
    h.fake.dailyLimit = 5_000_000;
    const [retry] = await h.engine.run(h.config.instanceId);
    // 1,000 new leads plus the 250 the outbound test created: each read exactly once across the runs.
    assert.equal(run.counts.read + retry.counts.read, 1250, "resumed after the committed page");
  });

  test("a field that no longer exists: test connection names it, sync fails with connector_invalid_field", async () => {
    h.fake.removeField("Lead", "Company");
    const check = await h.engine.testConnection(h.config.instanceId);
    assert.equal(check.ok, false);
    assert.deepEqual(check.missingFields, [{ object: "Lead", field: "Company" }]);
    h.fake.insert("Lead", leads(1, 60_000));
    const [run] = await h.engine.run(h.config.instanceId);
    assert.equal(run.status, "failed");
    assert.equal(run.error?.code, "connector_invalid_field");
    assert.match(run.error?.message ?? "", /No such column 'Company'/);
  });
});

describe("salesforce auth modes", () => {
  for (const mode of ["client_credentials", "refresh_token"] as const) {
    test(`${mode}: authenticates, refreshes on 401, never leaks the secret`, async () => {
      const logged: string[] = [];
      const h = await salesforceHarness({ mode });
      try {
        await h.engine.configure(h.config, h.credentials);
        h.fake.insert("Lead", leads(3));
        const [run] = await h.engine.run(h.config.instanceId);
        assert.equal(run.counts.read, 3, JSON.stringify(run.error));
        h.fake.expireTokens();
        h.fake.insert("Lead", leads(2, 10));
        await new Promise((resolve) => setTimeout(resolve, 1100));
        const [again] = await h.engine.run(h.config.instanceId);
        assert.equal(again.status, "succeeded", JSON.stringify(again.error));
        const status = await h.engine.status(h.config.instanceId);
        const text = JSON.stringify(status) + logged.join("");
        assert.ok(!text.includes(h.fake.clientSecret));
        assert.ok(!text.includes(h.fake.refreshToken));
        assert.equal(status.credentials?.values.clientSecret, "[REDACTED]");
      } finally {
        await h.close();
      }
    });
  }

  test("bad credentials fail with connector_auth_failed and a redacted message", async () => {
    const h = await salesforceHarness({ mode: "client_credentials" });
    try {
      const wrong = {
        mode: "client_credentials",
        values: { ...h.credentials.values, clientSecret: "s3cr3t-wrong-value" },
      };
      await h.engine.configure(h.config, wrong);
      const [run] = await h.engine.run(h.config.instanceId);
      assert.equal(run.error?.code, "connector_auth_failed");
      assert.ok(!JSON.stringify(run).includes("s3cr3t-wrong-value"));
    } finally {
      await h.close();
    }
  });
});
