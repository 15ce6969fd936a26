/**
 * The connector plugin inside a hub: configuration over REST, test connection, run now, CRM records
 * arriving as `crm_sync` activities, outbound activities and scores reaching the fake CRM, secrets
 * never in a response, a log line or the database file, and tenant isolation. Needs the fake CRM
 * servers of `test/fakes` (real HTTP on 127.0.0.1).
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import fs, { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { FakeDynamicsServer } from "../../test/fakes/dynamics-server";
import { FakeSalesforceServer } from "../../test/fakes/salesforce-server";
import { startTestHub, type TestHub } from "../../test/support/hub";
import { eventually } from "../../test/support/tmp";
import { restIngestionPlugin } from "../ingestion/plugin";
import { leadProfilesPlugin } from "../lead-profiles/plugin";
import { crmConnectorsPlugin } from "./plugin";
import { KEY_FILE_NAME } from "./vault-key";

type Json = Record<string, unknown>;

/** Everything written to stdout/stderr while the hub runs (pino writes to fd 1 with fs.writeSync). */
function captureOutput(): { text(): string; restore(): void } {
  const chunks: string[] = [];
  const originalWriteSync = fs.writeSync;
  const originalStdout = process.stdout.write.bind(process.stdout);
  const originalStderr = process.stderr.write.bind(process.stderr);
  const keep = (data: unknown): void => {
    chunks.push(typeof data === "string" ? data : Buffer.isBuffer(data) ? data.toString("utf8") : String(data));
  };
  const patchedWriteSync = (...args: Parameters<typeof fs.writeSync>): number => {
    if (args[0] === 1 || args[0] === 2) {
      // Swallowed while captured: the debug log would drown the test report.
      keep(args[1]);
      const data: unknown = args[1];
      return typeof data === "string" ? Buffer.byteLength(data) : ArrayBuffer.isView(data) ? data.byteLength : 0;
    }
    return Reflect.apply(originalWriteSync, fs, args) as number;
  };
  fs.writeSync = patchedWriteSync as typeof fs.writeSync;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    keep(chunk);
    return Reflect.apply(originalStdout, process.stdout, [chunk, ...rest]) as boolean;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    keep(chunk);
    return Reflect.apply(originalStderr, process.stderr, [chunk, ...rest]) as boolean;
  }) as typeof process.stderr.write;
  return {
    text: () => chunks.join(""),
    restore() {
      fs.writeSync = originalWriteSync;
      process.stdout.write = originalStdout;
      process.stderr.write = originalStderr;
    },
  };
}

describe("crm-connectors plugin", () => {
  let hub: TestHub;
  let sf: FakeSalesforceServer;
  let dyn: FakeDynamicsServer;
  let output: ReturnType<typeof captureOutput>;
  const responses: string[] = [];
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const pemBody = pem.split("\n")[5] ?? pem;
  let tenantA: { tenantId: string; apiKey: string };
  let tenantB: { tenantId: string; apiKey: string };

  async function call(
    method: string,
    path: string,
    key: string,
    body?: unknown,
  ): Promise<{ status: number; body: Json }> {
    const result = await hub.request(method, path, key, body);
    responses.push(JSON.stringify(result.body ?? null));
    return { status: result.status, body: (result.body ?? {}) as Json };
  }

  function salesforceConnector(extra: Json = {}): Json {
    return {
      connector: "salesforce",
      enabled: true,
      schedule: "0 3 * * *",
      credentials: {
        mode: "jwt_bearer",
        values: { loginUrl: sf.url, clientId: sf.clientId, username: sf.username, privateKey: pem },
      },
      options: { safetyLagSeconds: 0, bulkPollIntervalMs: 20 },
      mappings: [
        { object: "Lead", crmField: "Email", leadField: "email", type: "string", direction: "both" },
        { object: "Lead", crmField: "LastName", leadField: "lastName", type: "string", direction: "both" },
        { object: "Lead", crmField: "Company", leadField: "company", type: "string", direction: "inbound" },
      ],
      conflictRule: "newest-wins",
      inbound: { objects: ["Lead"], leadIdFields: { Lead: "Hub_Lead_Id__c" } },
      outbound: { leads: true, activities: true, scores: true, activityTypes: ["visit_web_page"] },
      ...extra,
    };
  }

  before(async () => {
    sf = await FakeSalesforceServer.start({ jwtPublicKey: publicKey });
    dyn = await FakeDynamicsServer.start();
    output = captureOutput();
    hub = await startTestHub({
      plugins: [restIngestionPlugin, leadProfilesPlugin, crmConnectorsPlugin],
      config: { logLevel: "debug", plugins: { "crm-connectors": { outboundLingerMs: 50 } } },
    });
    tenantA = await hub.createTenant();
    tenantB = await hub.createTenant();
  });

  after(async () => {
    await hub?.stop();
    output?.restore();
    await sf?.close();
    await dyn?.close();
  });

  test("Salesforce: configure, test, run now, inbound activities, outbound tasks and scores", async () => {
    // SystemModstamp has one-second precision in Salesforce.
    const past = Math.floor(Date.now() / 1000) * 1000 - 120_000;
    sf.insert(
      "Lead",
      [
        { LastName: "Lovelace", Email: "ada@example.com", Company: "Analytical", Hub_Lead_Id__c: "lead-1" },
        { LastName: "Hopper", Email: "grace@example.com", Company: "Navy", Hub_Lead_Id__c: "lead-2" },
      ],
      past,
    );

    const created = await call("POST", "/api/v1/connectors", tenantA.apiKey, salesforceConnector());
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = String(created.body.id);
    const credentials = created.body.credentials as { values: Json; secretsSet: string[] };
    assert.deepEqual(credentials.secretsSet, ["privateKey"]);
    assert.equal(credentials.values.privateKey, undefined);
    assert.equal(credentials.values.username, sf.username);

    const tested = await call("POST", `/api/v1/connectors/${id}/test`, tenantA.apiKey);
    assert.equal(tested.status, 200);
    assert.equal(tested.body.ok, true, JSON.stringify(tested.body));

    const ran = await call("POST", `/api/v1/connectors/${id}/run?wait=true`, tenantA.apiKey);
    assert.equal(ran.status, 200);
    const [inbound] = ran.body.runs as Array<{ status: string; counts: { emitted: number } }>;
    assert.equal(inbound?.status, "succeeded");
    assert.equal(inbound?.counts.emitted, 2);

    const history = await call("GET", "/api/v1/leads/lead-1/activities", tenantA.apiKey);
    assert.equal(history.status, 200);
    const items = history.body.items as Array<{ type: string; source: string; attributes: Json }>;
    const sync = items.find((a) => a.type === "crm_sync");
    assert.ok(sync, JSON.stringify(items));
    assert.equal(sync.source, "crm");
    assert.equal(sync.attributes.crm, "salesforce");
    assert.equal(sync.attributes.objectType, "Lead");
    assert.equal(sync.attributes.operation, "updated");
    assert.deepEqual(sync.attributes.fields, { email: "ada@example.com", lastName: "Lovelace", company: "Analytical" });

    // A change in the CRM arrives on the next run; nothing already synced arrives twice.
    const [leadId] = sf
      .all("Lead")
      .filter((r) => r.Hub_Lead_Id__c === "lead-1")
      .map((r) => String(r.Id));
    sf.update("Lead", leadId!, { Company: "Analytical Engines" }, past + 1000);
    const again = await call("POST", `/api/v1/connectors/${id}/run?wait=true`, tenantA.apiKey);
    assert.equal((again.body.runs as Array<{ counts: { emitted: number } }>)[0]?.counts.emitted, 1);
    const after = await call("GET", "/api/v1/leads/lead-1/activities", tenantA.apiKey);
    assert.equal((after.body.items as Array<{ type: string }>).filter((a) => a.type === "crm_sync").length, 2);

    // Outbound: hub activities of this tenant reach the CRM; crm_sync activities never go back.
    const posted = await call("POST", "/api/v1/activities", tenantA.apiKey, {
      activities: [
        { leadId: "lead-1", type: "visit_web_page", attributes: { url: "https://example.com/pricing" } },
        { leadId: "lead-1", type: "change_score", attributes: { delta: 5 } },
        { leadId: "lead-1", type: "change_score", attributes: { delta: 3 } },
        { leadId: "lead-2", type: "change_data_value", attributes: { field: "lastName", newValue: "Hopper-Murray" } },
      ],
    });
    assert.equal(posted.status, 202, JSON.stringify(posted.body));
    const visitId = (posted.body.ids as string[])[0]!;
    await call("POST", "/api/v1/activities", tenantB.apiKey, {
      leadId: "lead-1",
      type: "visit_web_page",
      attributes: { url: "https://example.com/other-tenant" },
    });
    const task = await eventually(() => sf.findByExternalId("Task", "Hub_Activity_Id__c", visitId), 15_000, "task");
    assert.equal(task.Hub_Lead_Id__c, "lead-1");
    await eventually(
      () => (sf.findByExternalId("Lead", "Hub_Lead_Id__c", "lead-1")?.Hub_Score__c === 8 ? true : undefined),
      15_000,
      "score",
    );
    await eventually(
      () => (sf.findByExternalId("Lead", "Hub_Lead_Id__c", "lead-2")?.LastName === "Hopper-Murray" ? true : undefined),
      15_000,
      "lead update",
    );
    assert.equal(sf.count("Task"), 1, JSON.stringify(sf.all("Task")));

    const status = await call("GET", `/api/v1/connectors/${id}/status`, tenantA.apiKey);
    assert.equal(status.status, 200);
    assert.equal((status.body.lastInbound as { status: string }).status, "succeeded");
    assert.ok(["succeeded", "partial"].includes((status.body.lastOutbound as { status: string }).status));
    assert.equal((status.body.outbound as { consuming: boolean }).consuming, true);
    const runs = await call("GET", `/api/v1/connectors/${id}/runs?limit=10`, tenantA.apiKey);
    assert.ok((runs.body.runs as unknown[]).length >= 3);

    // Disabled: no consumer group, no schedule.
    const disabled = await call("POST", `/api/v1/connectors/${id}/disable`, tenantA.apiKey);
    assert.equal(disabled.body.enabled, false);
    const statusOff = await call("GET", `/api/v1/connectors/${id}/status`, tenantA.apiKey);
    assert.equal((statusOff.body.outbound as { consuming: boolean }).consuming, false);
    assert.equal(statusOff.body.nextRun, null);
  });

  test("another tenant can neither see nor change a connector", async () => {
    const created = await call("POST", "/api/v1/connectors", tenantA.apiKey, salesforceConnector({ enabled: false }));
    const id = String(created.body.id);
    for (const [method, path] of [
      ["GET", `/api/v1/connectors/${id}`],
      ["PATCH", `/api/v1/connectors/${id}`],
      ["DELETE", `/api/v1/connectors/${id}`],
      ["POST", `/api/v1/connectors/${id}/test`],
      ["POST", `/api/v1/connectors/${id}/run`],
      ["POST", `/api/v1/connectors/${id}/enable`],
      ["GET", `/api/v1/connectors/${id}/status`],
      ["GET", `/api/v1/connectors/${id}/runs`],
    ] as const) {
      const result = await call(
        method,
        path,
        tenantB.apiKey,
        method === "PATCH" ? { schedule: "* * * * *" } : undefined,
      );
      assert.equal(result.status, 404, `${method} ${path}`);
      assert.equal((result.body.error as { code: string }).code, "connector_not_found");
    }
    const list = await call("GET", "/api/v1/connectors", tenantB.apiKey);
    assert.deepEqual(list.body.connectors, []);
    const mine = await call("GET", `/api/v1/connectors/${id}`, tenantA.apiKey);
    assert.equal(mine.body.schedule, "0 3 * * *");

    const removed = await call("DELETE", `/api/v1/connectors/${id}`, tenantA.apiKey);
    assert.equal(removed.status, 204);
    assert.equal((await call("GET", `/api/v1/connectors/${id}`, tenantA.apiKey)).status, 404);
  });

  test("field mapping and configuration errors are 400 with field-level details", async () => {
    const bad = await call(
      "POST",
      "/api/v1/connectors",
      tenantA.apiKey,
      salesforceConnector({
        mappings: [
          { object: "Lead", crmField: "Email", leadField: "email", type: "integer", direction: "both" },
          { object: "Lead", crmField: "NumberOfEmployees", leadField: "size", type: "number", direction: "sideways" },
        ],
      }),
    );
    assert.equal(bad.status, 400);
    const fields = (bad.body.error as { details: Array<{ field: string }> }).details.map((d) => d.field);
    assert.deepEqual(fields.sort(), ["mappings[0].type", "mappings[1].direction"]);

    const semantic = await call(
      "POST",
      "/api/v1/connectors",
      tenantA.apiKey,
      salesforceConnector({
        schedule: "every minute",
        mappings: [
          { object: "Lead", crmField: "Email", leadField: "email", type: "string", direction: "both" },
          { object: "Contact", crmField: "Birthdate", leadField: "email", type: "date", direction: "inbound" },
          { object: "Widget", crmField: "Name", leadField: "widget", type: "string", direction: "inbound" },
        ],
        options: { bulkThreshold: "many" },
      }),
    );
    assert.equal(semantic.status, 400);
    const details = (semantic.body.error as { details: Array<{ field: string; code: string }> }).details;
    const byField = new Map(details.map((d) => [d.field, d.code]));
    assert.equal(byField.get("schedule"), "invalid_value");
    assert.equal(byField.get("mappings[1].type"), "invalid_mapping");
    assert.equal(byField.get("mappings[2].object"), "invalid_mapping");
    assert.ok(
      [...byField.keys()].some((f) => f.startsWith("options.bulkThreshold")),
      JSON.stringify(details),
    );

    const missing = await call("POST", "/api/v1/connectors", tenantA.apiKey, {
      connector: "salesforce",
      credentials: { mode: "jwt_bearer", values: { loginUrl: sf.url } },
    });
    assert.equal(missing.status, 400);
    const missingFields = (missing.body.error as { details: Array<{ field: string }> }).details.map((d) => d.field);
    assert.ok(missingFields.includes("credentials.privateKey"), JSON.stringify(missingFields));
  });

  test("Dynamics: client credentials, a mapped field that no longer exists, inbound through intake", async () => {
    dyn.insert("leads", [{ lastname: "Curie", emailaddress1: "marie@example.com", hub_leadid: "lead-9" }]);
    const created = await call("POST", "/api/v1/connectors", tenantA.apiKey, {
      connector: "dynamics",
      credentials: {
        mode: "client_credentials",
        values: {
          environmentUrl: dyn.url,
          authorityUrl: dyn.url,
          tenantId: dyn.tenantId,
          clientId: dyn.clientId,
          clientSecret: dyn.clientSecret,
        },
      },
      mappings: [
        { object: "leads", crmField: "emailaddress1", leadField: "email", type: "string", direction: "inbound" },
        { object: "leads", crmField: "jobtitle", leadField: "title", type: "string", direction: "inbound" },
      ],
      inbound: { objects: ["leads"], leadIdFields: { leads: "hub_leadid" } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = String(created.body.id);
    dyn.removeField("leads", "jobtitle");
    const tested = await call("POST", `/api/v1/connectors/${id}/test`, tenantA.apiKey);
    assert.equal(tested.body.ok, false);
    assert.deepEqual(tested.body.missingFields, [{ object: "leads", field: "jobtitle" }]);

    const fixed = await call("PATCH", `/api/v1/connectors/${id}`, tenantA.apiKey, {
      mappings: [
        { object: "leads", crmField: "emailaddress1", leadField: "email", type: "string", direction: "inbound" },
      ],
    });
    assert.equal(fixed.status, 200, JSON.stringify(fixed.body));
    assert.equal((await call("POST", `/api/v1/connectors/${id}/test`, tenantA.apiKey)).body.ok, true);
    const ran = await call("POST", `/api/v1/connectors/${id}/run?wait=true`, tenantA.apiKey);
    assert.equal((ran.body.runs as Array<{ status: string }>)[0]?.status, "succeeded", JSON.stringify(ran.body));
    const history = await call("GET", "/api/v1/leads/lead-9/activities", tenantA.apiKey);
    const sync = (history.body.items as Array<{ type: string; attributes: Json }>).find((a) => a.type === "crm_sync");
    assert.equal(sync?.attributes.crm, "dynamics");
    assert.deepEqual(sync?.attributes.fields, { email: "marie@example.com" });

    // Wrong credentials: the test reports the failure as a value, and never echoes the secret.
    const wrong = await call("PATCH", `/api/v1/connectors/${id}`, tenantA.apiKey, {
      credentials: {
        mode: "client_credentials",
        values: {
          environmentUrl: dyn.url,
          authorityUrl: dyn.url,
          tenantId: dyn.tenantId,
          clientId: dyn.clientId,
          clientSecret: "not-the-secret-3f9a7c",
        },
      },
    });
    assert.equal(wrong.status, 200);
    const failed = await call("POST", `/api/v1/connectors/${id}/test`, tenantA.apiKey);
    assert.equal(failed.body.ok, false);
  });

  test("secrets never appear in responses, logs or the database file; the key file is 0600", () => {
    const all = responses.join("\n");
    for (const secret of [pemBody, dyn.clientSecret, "not-the-secret-3f9a7c"]) {
      assert.ok(!all.includes(secret), "a response carried a secret");
      assert.ok(!output.text().includes(secret), "a log line carried a secret");
    }
    assert.ok(output.text().length > 0, "logs were captured");
    const db = readFileSync(join(hub.dataDir, "crm-connectors.db"));
    const wal = (() => {
      try {
        return readFileSync(join(hub.dataDir, "crm-connectors.db-wal"));
      } catch {
        return Buffer.alloc(0);
      }
    })();
    for (const secret of [pemBody, dyn.clientSecret]) {
      assert.ok(!db.includes(secret) && !wal.includes(secret), "a secret was stored in clear");
    }
    assert.equal(statSync(join(hub.dataDir, KEY_FILE_NAME)).mode & 0o777, 0o600);
  });
});
