import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import { newActivityId } from "../../core/activity/ids";
import { ACTIVITY_SCHEMA_VERSION, type Activity } from "../../core/activity/model";
import { ConfigError } from "../../core/errors";
import { STACK_ENDPOINTS } from "../../stack/index";
import { storeContractSuite } from "./contract-suite";
import { HBaseStore, hbaseStoreOptions } from "./hbase";
import { stores } from "./index";

// Needs the stack's HBase and its REST gateway: `npx tsx stack/cli.ts up hbase`, then HUB_TEST_STACK=1.
if (process.env.HUB_TEST_STACK !== "1") {
  throw new Error(
    "hbase.integration.test.ts needs the real HBase REST server: run `npx tsx stack/cli.ts up hbase` and set HUB_TEST_STACK=1",
  );
}
const url = STACK_ENDPOINTS.hbase.restUrl;
/** Unique tables per run, dropped at the end. */
const tablePrefix = `test_${randomUUID().slice(0, 8)}_`;
const opened: HBaseStore[] = [];

storeContractSuite(
  "hbase",
  async () => {
    const store = stores.resolve({ type: "hbase", options: { url, tablePrefix, saltBuckets: 8 } }, { dataDir: "" });
    assert.ok(store instanceof HBaseStore);
    await store.start();
    opened.push(store);
    return store;
  },
  async () => {
    for (const store of opened.splice(0)) await store.dropTables();
  },
);

describe("hbase store specifics", () => {
  const prefix = `test_${randomUUID().slice(0, 8)}_`;
  const store = new HBaseStore(hbaseStoreOptions({ url, tablePrefix: prefix, saltBuckets: 4, timeoutMs: 3000 }));
  after(() => store.dropTables());

  it("rejects bad options field by field", () => {
    assert.throws(
      () => hbaseStoreOptions({ url: "ftp://x", saltBuckets: 0, timeoutMs: "5", nope: 1 }),
      (error: unknown) =>
        error instanceof ConfigError &&
        ["store.options.url", "store.options.saltBuckets", "store.options.timeoutMs", "store.options.nope"].every((f) =>
          error.details.some((d) => d.field === f),
        ),
    );
    assert.throws(() => hbaseStoreOptions({}), ConfigError);
  });

  it("refuses to open existing tables with another number of salt buckets", async () => {
    await store.start();
    const other = new HBaseStore(hbaseStoreOptions({ url, tablePrefix: prefix, saltBuckets: 8 }));
    await assert.rejects(other.start(), ConfigError);
  });

  it("merges every salt bucket into one newest-first listing, page after page", async () => {
    await store.start();
    const tenant = `t-${randomUUID().slice(0, 8)}`;
    const base = Date.now() - 3_600_000;
    const items: Activity[] = Array.from({ length: 230 }, (_, i) => ({
      id: newActivityId(base + i * 10),
      tenantId: tenant,
      leadId: `lead-${i % 13}`,
      type: i % 3 === 0 ? "email_opened" : "visit_web_page",
      source: "email",
      occurredAt: new Date(base - i).toISOString(),
      receivedAt: new Date(base + i * 10).toISOString(),
      attributes: { i },
      schemaVersion: ACTIVITY_SCHEMA_VERSION,
    }));
    await store.put(items);
    for (const [limit, types] of [
      [7, undefined],
      [100, undefined],
      [13, ["email_opened"]],
    ] as const) {
      const seen: string[] = [];
      let token: string | undefined;
      for (let page = 0; page < 100; page++) {
        const result = await store.list(tenant, {
          limit,
          ...(types ? { types: [...types] } : {}),
          ...(token ? { pageToken: token } : {}),
        });
        assert.ok(result.items.length <= limit);
        seen.push(...result.items.map((a) => a.id));
        token = result.nextPageToken;
        if (!token) break;
      }
      const expected = items
        .filter((a) => types === undefined || (types as readonly string[]).includes(a.type))
        .map((a) => a.id)
        .reverse();
      assert.deepEqual(seen, expected, `limit ${limit}`);
    }
  });

  it("rejects promptly, and reports down, when the REST server is unreachable", async () => {
    const down = new HBaseStore(
      hbaseStoreOptions({ url: "http://127.0.0.1:59999", tablePrefix: prefix, timeoutMs: 1000 }),
    );
    const started = Date.now();
    await assert.rejects(down.start(), (e: unknown) => e instanceof Error && /HBase REST/.test(e.message));
    assert.ok(Date.now() - started < 2000);
    assert.equal((await down.health()).ok, false);
  });
});
