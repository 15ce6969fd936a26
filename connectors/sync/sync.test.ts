import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { salesforceManifest } from "../salesforce/manifest";
import { redact, redactText } from "../shared/redact";
import { crmActivityId } from "./activity";
import { FairShareBudget } from "./budget";
import { validateInstanceConfig } from "./config";
import { resolveConflict } from "./conflict";
import { coerce, mapInbound, mapOutbound, type FieldMapping } from "./mapping";
import { SqliteStateStore } from "./sqlite-state-store";
import { MemoryStateStore, type ConnectorStateStore } from "./state-store";
import { listStream, salesforceHarness } from "./testing/harness";
import { AesGcmCredentialVault } from "./vault";

describe("field mapping", () => {
  const mappings: FieldMapping[] = [
    { object: "Lead", crmField: "Hub_Score__c", leadField: "score", type: "number", direction: "inbound" },
    { object: "Lead", crmField: "IsConverted", leadField: "converted", type: "boolean", direction: "both" },
    { object: "Lead", crmField: "CreatedDate", leadField: "crmCreated", type: "date", direction: "inbound" },
    { object: "Lead", crmField: "Email", leadField: "email", type: "string", direction: "outbound" },
  ];

  test("coerces by declared type and reports mismatches without throwing", () => {
    assert.deepEqual(coerce("12.5", "number"), { ok: true, value: 12.5 });
    assert.deepEqual(coerce("false", "boolean"), { ok: true, value: false });
    assert.deepEqual(coerce("2024-05-01T10:00:00.000+0000", "date"), { ok: true, value: "2024-05-01T10:00:00.000Z" });
    assert.equal(coerce("abc", "number").ok, false);
    assert.equal(coerce(3, "string").ok, false);
    assert.deepEqual(coerce(null, "number"), { ok: true, value: null });
  });

  test("maps inbound and outbound by direction", () => {
    const inbound = mapInbound(mappings, "Lead", {
      Hub_Score__c: "x",
      IsConverted: true,
      CreatedDate: "2024-01-01T00:00:00Z",
      Email: "e@x",
    });
    assert.deepEqual(inbound.fields, { converted: true, crmCreated: "2024-01-01T00:00:00.000Z" });
    assert.deepEqual(inbound.errors, [{ field: "Hub_Score__c", message: 'expected number, got "x"' }]);
    assert.deepEqual(mapOutbound(mappings, "Lead", { email: "e@x", converted: false, score: 3 }).fields, {
      IsConverted: false,
      Email: "e@x",
    });
  });

  test("config validation reports field-level problems", () => {
    const { problems } = validateInstanceConfig(
      {
        instanceId: "i",
        tenantId: "t",
        connector: "salesforce",
        enabled: true,
        schedule: "not cron",
        options: { bulkThreshold: "many", nope: 1 },
        conflictRule: "crm-wins",
        mappings: [
          { object: "Task", crmField: "Subject", leadField: "s", type: "string", direction: "inbound" },
          { object: "Lead", crmField: "bad field", leadField: "x", type: "string", direction: "inbound" },
        ],
        inbound: { objects: ["Lead", "Widget"] },
        outbound: { leads: true, activities: true, scores: false },
      },
      salesforceManifest,
    );
    assert.deepEqual(
      problems.map((p) => p.field).sort(),
      [
        "inbound.objects[1]",
        "mappings[0].direction",
        "mappings[1].crmField",
        "options.bulkThreshold",
        "options.nope",
        "schedule",
      ].sort(),
    );
  });
});

describe("conflict rules", () => {
  const crm = "2024-01-02T00:00:00Z";
  const hub = "2024-01-03T00:00:00Z";
  test("table", () => {
    assert.equal(resolveConflict("crm-wins", crm, hub), "crm");
    assert.equal(resolveConflict("hub-wins", crm, hub), "hub");
    assert.equal(resolveConflict("newest-wins", crm, hub), "hub");
    assert.equal(resolveConflict("newest-wins", hub, crm), "crm");
    assert.equal(resolveConflict("hub-wins", crm, undefined), "crm", "no pending hub change: no conflict");
    assert.equal(resolveConflict("crm-wins", undefined, hub), "hub");
  });
});

describe("credential vault and redaction", () => {
  test("encrypts at rest with AES-256-GCM bound to the tenant, rotates keys, never returns secrets", async () => {
    const store = new MemoryStateStore();
    const oldKey = { id: "old", key: randomBytes(32) };
    const ref = { tenantId: "t1", instanceId: "i1" };
    const credentials = {
      mode: "client_credentials",
      values: { loginUrl: "https://x", clientId: "cid", clientSecret: "super-secret-value" },
    };
    await new AesGcmCredentialVault(store, oldKey).store(ref, credentials);
    const blob = (await store.getSecretBlob("i1")) ?? "";
    assert.ok(blob.startsWith("v1.old."));
    assert.ok(
      !blob.includes("super-secret-value") && !blob.includes(Buffer.from("super-secret-value").toString("base64")),
    );

    const vault = new AesGcmCredentialVault(store, { id: "new", key: randomBytes(32) }, [oldKey]);
    assert.deepEqual(await vault.load(ref), credentials);
    assert.ok((await store.getSecretBlob("i1"))?.startsWith("v1.new."), "re-encrypted with the current key");
    const view = await vault.view(ref, salesforceManifest);
    assert.deepEqual(view, {
      mode: "client_credentials",
      values: { loginUrl: "https://x", clientId: "cid", clientSecret: "[REDACTED]" },
      secretsSet: ["clientSecret"],
    });
    await assert.rejects(vault.load({ tenantId: "other", instanceId: "i1" }), /cannot be decrypted/);
    // One flipped bit of the ciphertext (the blob's last base64 character may only carry padding bits).
    const parts = blob.split(".");
    const ciphertext = Buffer.from(parts[4]!, "base64url");
    ciphertext[0] = ciphertext[0]! ^ 1;
    parts[4] = ciphertext.toString("base64url");
    await store.putSecretBlob("i1", parts.join("."));
    await assert.rejects(new AesGcmCredentialVault(store, oldKey).load(ref), /cannot be decrypted/);
  });

  test("redact masks secret keys, known values, bearer tokens and form secrets", () => {
    const out = redact(
      {
        clientSecret: "abc",
        nested: { access_token: "t", note: "used xyzzy-1234 here" },
        list: ["Bearer abcdefghijkl"],
      },
      ["xyzzy-1234"],
    );
    assert.deepEqual(out, {
      clientSecret: "[REDACTED]",
      nested: { access_token: "[REDACTED]", note: "used [REDACTED] here" },
      list: ["Bearer [REDACTED]"],
    });
    assert.equal(
      redactText("grant_type=refresh_token&refresh_token=5Aep861&client_id=x"),
      "grant_type=refresh_token&refresh_token=[REDACTED]&client_id=x",
    );
  });
});

describe("fair share budget", () => {
  test("a flooding tenant does not starve a quiet one", async () => {
    const budget = new FairShareBudget({ callsPerSecond: 200, burst: 1 });
    const order: string[] = [];
    const noisy = Array.from({ length: 40 }, () => budget.acquire("noisy", 1).then(() => order.push("noisy")));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const quiet = budget.acquire("quiet", 1).then(() => order.push("quiet"));
    await Promise.all([...noisy, quiet]);
    const position = order.indexOf("quiet");
    assert.ok(position < 10, `quiet tenant served at position ${position} of ${order.length}`);
  });
});

test("crm activity ids are deterministic per record version", () => {
  const parts = {
    tenantId: "t",
    instanceId: "i",
    object: "Lead",
    crmId: "00Q1",
    version: "2024-01-01T00:00:00.000Z",
    operation: "upsert",
  };
  assert.equal(crmActivityId(parts), crmActivityId({ ...parts }));
  assert.notEqual(crmActivityId(parts), crmActivityId({ ...parts, version: "2024-01-01T00:00:01.000Z" }));
});

function storeContract(name: string, make: () => { store: ConnectorStateStore; dispose(): void }): void {
  describe(`state store contract: ${name}`, () => {
    test("watermarks, links, lead times, dead letters, runs, locks, secrets", async () => {
      const { store, dispose } = make();
      try {
        assert.equal(await store.getWatermark("i", "in:Lead"), undefined);
        await store.commitInbound("i", "in:Lead", "c1", [
          { object: "Lead", crmId: "00Q1", leadId: "L1", crmModifiedAt: "2024-01-02T00:00:00.000Z" },
        ]);
        assert.equal(await store.getWatermark("i", "in:Lead"), "c1");
        assert.deepEqual([...(await store.leadIdsFor("i", "Lead", ["00Q1", "00Q2"]))], [["00Q1", "L1"]]);
        await store.commitOutbound(
          "i",
          "p9",
          [{ leadId: "L1", pushedAt: "2024-01-03T00:00:00.000Z" }],
          [{ key: "a1", kind: "activity", code: "X", message: "m", at: "now" }],
        );
        assert.equal(await store.getWatermark("i", "out"), "p9");
        assert.deepEqual(
          await store.leadSyncTimes("i", ["L1", "L2"]),
          new Map([["L1", { crmModifiedAt: "2024-01-02T00:00:00.000Z", pushedAt: "2024-01-03T00:00:00.000Z" }]]),
        );
        assert.equal((await store.listDeadLetters("i", 10))[0].key, "a1");
        assert.equal(await store.acquireLock("i", "host:1:a", 10_000), true);
        assert.equal(await store.acquireLock("i", "host:1:b", 10_000), false, "held by a live owner");
        assert.equal(await store.renewLock("i", "host:1:a", 10_000), true);
        await store.releaseLock("i", "host:1:a");
        assert.equal(await store.acquireLock("i", "host:1:b", 1), true);
        await new Promise((resolve) => setTimeout(resolve, 5));
        assert.equal(await store.acquireLock("i", "host:1:c", 1000), true, "expired locks are taken over");
        const run = {
          runId: "r1",
          instanceId: "i",
          tenantId: "t",
          direction: "inbound" as const,
          status: "running" as const,
          startedAt: "2024-01-01T00:00:00.000Z",
          counts: { read: 0, emitted: 0, deleted: 0, written: 0, failed: 0, skipped: 0, apiCalls: 0 },
          paths: {},
        };
        await store.saveRun(run);
        await store.saveRun({ ...run, status: "succeeded" });
        assert.deepEqual(
          (await store.listRuns("i", 5)).map((r) => r.status),
          ["succeeded"],
        );
        await store.putSecretBlob("i", "blob");
        assert.equal(await store.getSecretBlob("i"), "blob");
        await store.deleteSecretBlob("i");
        assert.equal(await store.getSecretBlob("i"), undefined);
      } finally {
        dispose();
      }
    });
  });
}

storeContract("memory", () => ({ store: new MemoryStateStore(), dispose: () => undefined }));
storeContract("sqlite", () => {
  const dir = mkdtempSync(join(tmpdir(), "connector-store-"));
  const store = new SqliteStateStore(join(dir, "state.db"));
  return {
    store,
    dispose: () => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe("engine run lock", () => {
  test("overlapping runs of one connector: the second is skipped", async () => {
    const h = await salesforceHarness();
    try {
      await h.engine.configure(h.config, h.credentials);
      h.fake.insert(
        "Lead",
        Array.from({ length: 50 }, (_, i) => ({ LastName: `L${i}`, Hub_Lead_Id__c: `l${i}` })),
      );
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const slowSource = listStream([{ kind: "score", score: { leadId: "l1", score: 1 } }]);
      const first = h.engine.run(h.config.instanceId, {
        source: async function* (after) {
          await gate;
          yield* slowSource(after);
        },
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const second = await h.engine.run(h.config.instanceId);
      assert.deepEqual(
        second.map((r) => r.status),
        ["skipped"],
      );
      release();
      assert.deepEqual(
        (await first).map((r) => r.status),
        ["succeeded", "succeeded"],
      );
    } finally {
      await h.close();
    }
  });
});
