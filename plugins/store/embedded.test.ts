import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createRequire } from "node:module";
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { newActivityId } from "../../core/activity/ids";
import { ACTIVITY_SCHEMA_VERSION, leadKeyOf, type Activity } from "../../core/activity/model";
import { UnavailableError } from "../../core/errors";
import { tempDir } from "../../test/support/tmp";
import type { ActivityPage, ActivityQuery } from "./contract";
import { storeContractSuite } from "./contract-suite";
import { EmbeddedStore, type EmbeddedStoreOptions } from "./embedded";
import { stores } from "./index";
import { SegmentReader } from "./segment-files";

/** How many of the activities the store holds. */
const countExisting = async (store: EmbeddedStore, tenantId: string, activities: Activity[]): Promise<number> =>
  (
    await store.existing(
      tenantId,
      activities.map((a) => a.id),
    )
  ).size;

const tmp = tempDir("hub-store-");
storeContractSuite(
  "embedded",
  async () => {
    const store = stores.resolve("embedded", { dataDir: tmp.dir });
    await store.start();
    return store;
  },
  async () => tmp.cleanup(),
);

// The same contract answered from the memstore alone (the indexer never runs).
const pausedTmp = tempDir("hub-store-paused-");
storeContractSuite(
  "embedded, indexer paused (memstore only)",
  async () => {
    const store = new EmbeddedStore({ dataDir: pausedTmp.dir, indexerPaused: true });
    await store.start();
    return store;
  },
  async () => pausedTmp.cleanup(),
);

const base = Date.UTC(2026, 0, 1);
const received = Date.now() - 3_600_000;

function activity(tenantId: string, lead: string, type: string, occurredAt: number, receivedAt: number): Activity {
  return {
    id: newActivityId(receivedAt),
    tenantId,
    leadId: lead,
    type,
    source: "web",
    occurredAt: new Date(occurredAt).toISOString(),
    receivedAt: new Date(receivedAt).toISOString(),
    // Not only ASCII: the log and the indexer carry the lines as UTF-8 bytes.
    attributes: { n: occurredAt - base, title: "Café — 東京 👋🏽" },
    schemaVersion: ACTIVITY_SCHEMA_VERSION,
  };
}

/** The ids of a lead's activities, newest first, for activities written in `occurredAt` order. */
const idsNewestFirst = (written: Activity[], lead: string): string[] =>
  written
    .filter((a) => a.leadId === lead)
    .map((a) => a.id)
    .reverse();

async function withStore<T>(
  dir: string,
  options: Omit<EmbeddedStoreOptions, "dataDir">,
  use: (store: EmbeddedStore) => Promise<T>,
): Promise<T> {
  const store = new EmbeddedStore({ dataDir: dir, ...options });
  await store.start();
  try {
    return await use(store);
  } finally {
    await store.stop();
  }
}

async function allPages(read: (token?: string) => Promise<ActivityPage>): Promise<string[]> {
  const ids: string[] = [];
  let token: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const page = await read(token);
    ids.push(...page.items.map((a) => `${a.id}@${a.occurredAt}/${a.type}`));
    token = page.nextPageToken;
    if (!token) return ids;
  }
  throw new Error("too many pages");
}

/** Every read the store offers, over a tenant, as comparable text. */
async function snapshot(store: EmbeddedStore, tenant: string, leads: string[], ids: string[]): Promise<unknown> {
  const out: Record<string, unknown> = {};
  const queries: Array<Omit<ActivityQuery, "pageToken">> = [
    { limit: 3 },
    { limit: 1000 },
    { limit: 2, types: ["email_opened"] },
    { limit: 4, since: base + 5_000, until: base + 30_000 },
  ];
  for (const lead of leads) {
    for (const [i, q] of queries.entries()) {
      out[`lead ${lead} q${i}`] = await allPages((t) =>
        store.leadHistory(tenant, lead, t ? { ...q, pageToken: t } : q),
      );
    }
  }
  const listQueries: Array<Omit<ActivityQuery, "pageToken">> = [
    { limit: 5 },
    { limit: 3, types: ["visit_web_page"] },
    { limit: 4, since: received + 10_000, until: received + 40_000 },
  ];
  for (const [i, q] of listQueries.entries()) {
    out[`list q${i}`] = await allPages((t) => store.list(tenant, t ? { ...q, pageToken: t } : q));
  }
  out.get = await Promise.all(ids.map((id) => store.get(tenant, id)));
  out.existing = [...(await store.existing(tenant, ids))].sort();
  return out;
}

describe("embedded store: LSM write path", () => {
  const dirs: Array<{ cleanup: () => void }> = [];
  const dir = (): string => {
    const d = tempDir("hub-store-lsm-");
    dirs.push(d);
    return d.dir;
  };
  after(() => dirs.forEach((d) => d.cleanup()));

  it("reads its writes before they are indexed, and the same after", async () => {
    await withStore(dir(), { indexerPaused: true }, async (store) => {
      const a = activity("t-ryw", "lead-1", "visit_web_page", base, received);
      await store.put([a]);
      assert.equal(store.unindexed, 1);
      assert.deepEqual(await store.get("t-ryw", a.id), a);
      assert.deepEqual((await store.leadHistory("t-ryw", "lead-1", { limit: 10 })).items, [a]);
      assert.deepEqual((await store.list("t-ryw", { limit: 10 })).items, [a]);
      assert.deepEqual([...(await store.existing("t-ryw", [a.id]))], [a.id]);
      store.resumeIndexer();
      await store.whenIndexed();
      assert.equal(store.unindexed, 0);
      assert.deepEqual(await store.get("t-ryw", a.id), a);
      assert.deepEqual((await store.leadHistory("t-ryw", "lead-1", { limit: 10 })).items, [a]);
    });
  });

  it("holds what it wrote by place, not text: un-indexed bodies come from the log, across files, as the caller made them", async () => {
    const d = dir();
    const written = Array.from({ length: 24 }, (_, i) => {
      const a = activity("t-place", `lead-${i % 2}`, "visit_web_page", base + i, received + i);
      return { ...a, attributes: { title: `Ünïcødé ✓ 𝄞 ${i}`, n: i } };
    });
    // Made by the caller (as the intake does for the queue), with a space JSON.stringify would not write.
    const texts = written.map((a) => JSON.stringify(a).replace('"n":', '"n": '));
    await withStore(d, { indexerPaused: true, segmentFileBytes: 1_500 }, async (store) => {
      for (let i = 0; i < 24; i += 4) await store.put(written.slice(i, i + 4), texts.slice(i, i + 4));
      assert.equal(store.unindexed, 24);
      for (const a of written) assert.deepEqual(await store.get("t-place", a.id), a);
      const history = await store.leadHistory("t-place", "lead-1", { limit: 100 });
      assert.deepEqual(history.items, written.filter((a) => a.leadId === "lead-1").reverse());
      const listed = await store.list("t-place", { limit: 5 });
      assert.deepEqual(listed.items, [...written].reverse().slice(0, 5));
    });
    const files = readdirSync(join(d, "store-log"));
    assert.ok(files.length >= 3, "written across several files");
    const log = files.map((f) => readFileSync(join(d, "store-log", f), "utf8")).join("");
    for (const text of texts) assert.ok(log.includes(text), "the caller's text, as it is");
  });

  it("waits in whenIndexed for puts still being committed", async () => {
    await withStore(dir(), {}, async (store) => {
      const batches = [0, 1, 2].map((b) =>
        Array.from({ length: 300 }, (_, i) =>
          activity("t-wait", "lead-1", "visit_web_page", base + b * 300 + i, received),
        ),
      );
      const puts = batches.map((b) => store.put(b));
      await store.whenIndexed();
      assert.equal(store.unindexed, 0);
      await Promise.all(puts);
      assert.equal(
        (
          await store.existing(
            "t-wait",
            batches.flat().map((a) => a.id),
          )
        ).size,
        900,
      );
    });
  });

  it("lets small segments gather for indexLingerMs, then indexes them in one chunk", async () => {
    await withStore(dir(), { indexLingerMs: 1_000 }, async (store) => {
      await store.put([activity("t-linger", "lead-1", "visit_web_page", base, received)]);
      await store.whenIndexed();
      const indexedAt = performance.now();
      // Three segments (each put awaited) right after a chunk: none is indexed before the linger.
      for (let i = 1; i <= 3; i++) {
        await store.put([activity("t-linger", "lead-1", "visit_web_page", base + i, received)]);
      }
      assert.equal(store.unindexed, 3);
      assert.equal((await store.leadHistory("t-linger", "lead-1", { limit: 10 })).items.length, 4);
      await store.whenIndexed();
      assert.ok(performance.now() - indexedAt >= 900, "indexed before the linger was over");
      assert.equal(store.unindexed, 0);
    });
  });

  it("applies the segments the log writer hands over without reading them back", async () => {
    await withStore(dir(), {}, async (store) => {
      const written: Activity[] = [];
      for (let i = 0; i < 5; i++) {
        const batch = [0, 1, 2].map((j) =>
          activity("t-handoff", `lead-${j}`, "visit_web_page", base + i * 3 + j, received + i),
        );
        await store.put(batch);
        written.push(...batch);
      }
      await store.whenIndexed();
      const { handedOver, readBack } = store.indexerStats;
      assert.equal(handedOver + readBack, 5, "each segment applied once");
      // Only the first chunk (no linger before it) may run before its handoff arrived.
      assert.ok(handedOver >= 4, `handed over ${handedOver} of 5`);
      assert.equal(store.unindexed, 0);
      for (const j of [0, 1, 2]) {
        const history = await store.leadHistory("t-handoff", `lead-${j}`, { limit: 10 });
        assert.deepEqual(history.items, written.filter((a) => a.leadId === `lead-${j}`).reverse());
      }
    });
  });

  it("indexes segments of a log written before segments carried index fields", async () => {
    const d = dir();
    const old = [
      activity("t-oldlog", "lead-1", "visit_web_page", base, received),
      { ...activity("t-oldlog", "x", "email_opened", base + 1, received), leadId: undefined, anonymousId: "v-1" },
    ];
    const log = new Database(join(d, "store-log.db"));
    log.exec("CREATE TABLE segments (seq INTEGER PRIMARY KEY, size INTEGER NOT NULL, body TEXT NOT NULL)");
    log
      .prepare("INSERT INTO segments (seq, size, body) VALUES (1, 2, ?)")
      .run(old.map((a) => JSON.stringify(a)).join("\n"));
    log.close();
    await withStore(d, {}, async (store) => {
      await store.whenIndexed();
      assert.equal(store.unindexed, 0);
      assert.deepEqual(store.indexerStats, { handedOver: 0, readBack: 1 });
      assert.equal((await store.get("t-oldlog", old[0]!.id))?.id, old[0]!.id);
      const anon = await store.leadHistory("t-oldlog", "anon:v-1", { limit: 10 });
      assert.deepEqual(
        anon.items.map((a) => a.id),
        [old[1]!.id],
      );
      const next = activity("t-oldlog", "lead-1", "visit_web_page", base + 2, received + 1);
      await store.put([next]);
      await store.whenIndexed();
      assert.equal((await store.leadHistory("t-oldlog", "lead-1", { limit: 10 })).items.length, 2);
    });
  });

  it("indexes in bulks, and a bulk holding ids written before keeps their first version and indexes the rest once", async () => {
    const tenant = "t-bulk";
    const make = (n: number, offset: number): Activity[] =>
      Array.from({ length: n }, (_, i) =>
        activity(tenant, `lead-${i % 4}`, "visit_web_page", base + (offset + i) * 1000, received + offset + i),
      );
    const first = make(300, 0);
    const fresh = make(200, 1000);
    // Every third row of the second put rewrites an indexed id (other lead, other type).
    const second: Activity[] = [];
    fresh.forEach((a, i) => {
      second.push(a);
      if (i % 2 === 0) second.push({ ...first[i]!, leadId: "lead-x", type: "fill_out_form" });
    });
    await withStore(dir(), {}, async (store) => {
      await store.put(first);
      await store.whenIndexed();
      await store.put(second);
      await store.whenIndexed();
      assert.equal(store.unindexed, 0);
      for (const a of [first[0]!, first[150]!, first[298]!]) assert.deepEqual(await store.get(tenant, a.id), a);
      assert.equal((await store.leadHistory(tenant, "lead-x", { limit: 10 })).items.length, 0, "rewrites not indexed");
      for (let lead = 0; lead < 4; lead++) {
        const history = await store.leadHistory(tenant, `lead-${lead}`, { limit: 1000 });
        const want = [...first, ...fresh].filter((a) => a.leadId === `lead-${lead}`).reverse();
        assert.deepEqual(
          history.items.map((a) => a.id),
          want.map((a) => a.id),
          "each id once, in order",
        );
      }
      assert.equal((await store.list(tenant, { limit: 1000 })).items.length, 500);
    });
  });

  it("merges the table and the memstore: first write of an id wins, pages without gaps or repeats", async () => {
    const tenant = "t-merge";
    const leads = ["lead-a", "lead-b", "lead-c"];
    const first = Array.from({ length: 40 }, (_, i) =>
      activity(
        tenant,
        leads[i % 3]!,
        i % 4 ? "visit_web_page" : "email_opened",
        base + ((i * 7) % 45) * 1000,
        received + i * 1000,
      ),
    );
    const second = Array.from({ length: 40 }, (_, i) =>
      activity(
        tenant,
        leads[i % 3]!,
        i % 3 ? "visit_web_page" : "email_opened",
        base + ((i * 11) % 45) * 1000,
        received + i * 1000 + 500,
      ),
    );
    // Rewrites of ids with other content: of indexed ids, of memstore ids, and within a segment.
    const rewrite = (a: Activity, lead: string): Activity => ({
      ...a,
      leadId: lead,
      type: "fill_out_form",
      occurredAt: new Date(base + 2_000).toISOString(),
    });
    const ids = [...first, ...second].map((a) => a.id);
    await withStore(dir(), { indexChunkActivities: 7 }, async (store) => {
      await store.put(first.slice(0, 25));
      await store.put(first.slice(25));
      await store.whenIndexed();
      await store.pauseIndexer();
      await store.put([...second.slice(0, 20), rewrite(first[3]!, "lead-b"), rewrite(second[5]!, "lead-a")]);
      await store.put([rewrite(first[4]!, "lead-c"), ...second.slice(20), rewrite(second[25]!, "lead-a")]);
      await store.put([rewrite(second[30]!, "lead-b")]);
      assert.ok(store.unindexed > 0);
      const before = await snapshot(store, tenant, leads, ids);
      // The answers a single first-write-wins table gives.
      const firstVersions = [...first, ...second];
      const expectedHistory = (lead: string) =>
        firstVersions
          .filter((a) => leadKeyOf(a) === lead)
          .sort((x, y) => Date.parse(y.occurredAt) - Date.parse(x.occurredAt) || (x.id < y.id ? 1 : -1))
          .map((a) => `${a.id}@${a.occurredAt}/${a.type}`);
      const b = before as Record<string, unknown>;
      for (const lead of leads) {
        assert.deepEqual(b[`lead ${lead} q0`], expectedHistory(lead), lead);
        assert.deepEqual(b[`lead ${lead} q1`], expectedHistory(lead), lead);
      }
      assert.deepEqual(
        b["list q0"],
        [...firstVersions].sort((x, y) => (x.id < y.id ? 1 : -1)).map((a) => `${a.id}@${a.occurredAt}/${a.type}`),
      );
      assert.deepEqual(
        b.get,
        firstVersions.map((a) => a),
      );
      store.resumeIndexer();
      await store.whenIndexed();
      assert.equal(store.unindexed, 0);
      assert.deepEqual(await snapshot(store, tenant, leads, ids), before);
    });
  });

  it("loads un-indexed segments back after a restart", async () => {
    const d = dir();
    const written = Array.from({ length: 1200 }, (_, i) =>
      activity("t-restart", `lead-${i % 8}`, "visit_web_page", base + i, received + i),
    );
    await withStore(d, { indexerPaused: true }, async (store) => {
      await store.put(written.slice(0, 700));
      await store.put(written.slice(700));
    });
    await withStore(d, { indexerPaused: true }, async (store) => {
      assert.equal(store.unindexed, 1200);
      assert.equal(await countExisting(store, "t-restart", written), 1200);
      assert.equal((await store.leadHistory("t-restart", "lead-4", { limit: 1000 })).items.length, 1200 / 8);
      store.resumeIndexer();
      await store.whenIndexed();
      assert.equal(store.unindexed, 0);
      assert.deepEqual(store.indexerStats, { handedOver: 0, readBack: 2 }, "both segments read back from the log");
    });
    await withStore(d, {}, async (store) => {
      assert.equal(store.unindexed, 0);
      const page = await store.list("t-restart", { limit: 1000 });
      assert.equal(page.items.length, 1000);
      assert.deepEqual(page.items[0], written[written.length - 1]);
    });
  });

  it("keeps the lead index in two tiers, merged in key order, and reads across both as from one", async () => {
    const leads = ["lead-a", "lead-b", "lead-c"];
    const written = Array.from({ length: 180 }, (_, i) =>
      activity(
        "t-tiers",
        leads[i % 3]!,
        i % 4 === 0 ? "email_opened" : "visit_web_page",
        base + ((i * 7919) % 180) * 1000,
        received + i * 1000,
      ),
    );
    const ids = written.map((a) => a.id);
    const fill = async (store: EmbeddedStore): Promise<void> => {
      for (let i = 0; i < 3; i++) {
        await store.put(written.slice(i * 60, i * 60 + 60));
        await store.whenIndexed();
      }
    };
    const tiered = dir();
    // 60 rows, then 120 (merged), then 60 more: both tiers hold some of each lead.
    const reads = await withStore(tiered, { indexMergeRows: 100, indexLingerMs: 0 }, async (store) => {
      await fill(store);
      return snapshot(store, "t-tiers", leads, ids);
    });
    const db = new Database(join(tiered, "store.db"), { readonly: true });
    try {
      assert.equal(db.prepare("SELECT count(*) FROM lead_index").pluck().get(), 120);
      assert.equal(db.prepare("SELECT count(*) FROM lead_index_recent").pluck().get(), 60);
    } finally {
      db.close();
    }
    const single = await withStore(dir(), { indexLingerMs: 0 }, async (store) => {
      await fill(store);
      return snapshot(store, "t-tiers", leads, ids);
    });
    assert.deepEqual(reads, single);
    const history = (reads as Record<string, string[]>)["lead lead-b q1"]!;
    assert.equal(history.length, 60);
  });

  it("moves the lead index of a file from before the two tiers over on start", async () => {
    const d = dir();
    const written = Array.from({ length: 12 }, (_, i) =>
      activity("t-old", `lead-${i % 2}`, "visit_web_page", base + i * 1000, received + i),
    );
    const db = new Database(join(d, "store.db"));
    db.exec(`
      CREATE TABLE activities (
        tenant_id TEXT NOT NULL, id TEXT NOT NULL, lead_key TEXT NOT NULL, type TEXT NOT NULL,
        occurred_at INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tenant_id, id)
      ) WITHOUT ROWID;
      CREATE INDEX activities_by_lead ON activities (tenant_id, lead_key, occurred_at, id);
    `);
    const insert = db.prepare("INSERT INTO activities VALUES (?, ?, ?, ?, ?, ?)");
    for (const a of written)
      insert.run(a.tenantId, a.id, leadKeyOf(a), a.type, Date.parse(a.occurredAt), JSON.stringify(a));
    db.close();
    // Written after the upgrade: bodies in the segment files, next to the old rows' own.
    const later = Array.from({ length: 6 }, (_, i) =>
      activity("t-old", `lead-${i % 2}`, "visit_web_page", base + 20_000 + i * 1000, received + 20 + i),
    );
    await withStore(d, {}, async (store) => {
      await store.put(later);
      await store.whenIndexed();
      const page = await store.leadHistory("t-old", leadKeyOf({ leadId: "lead-1" }), { limit: 100 });
      assert.deepEqual(page.items, [...written, ...later].filter((a) => a.leadId === "lead-1").reverse());
      assert.deepEqual(await store.get("t-old", written[3]!.id), written[3]);
      assert.deepEqual(await store.get("t-old", later[3]!.id), later[3]);
    });
    const after = new Database(join(d, "store.db"), { readonly: true });
    try {
      assert.equal(
        after.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'activities_by_lead'").pluck().get(),
        0,
      );
      assert.equal(after.prepare("SELECT count(*) FROM lead_index").pluck().get() as number, 12);
      assert.deepEqual(
        after.prepare("SELECT body_file IS NULL AS old, count(*) AS n FROM activities GROUP BY 1 ORDER BY 1").all(),
        [
          { old: 0, n: 6 },
          { old: 1, n: 12 },
        ],
      );
    } finally {
      after.close();
    }
  });

  it("reads a long backlog back in chunks, each continuing where the last one stopped", async () => {
    const d = dir();
    const written = Array.from({ length: 500 }, (_, i) =>
      activity("t-chunks", `lead-${i % 5}`, "visit_web_page", base + i, received + i),
    );
    await withStore(d, { indexerPaused: true }, async (store) => {
      for (let i = 0; i < 10; i++) await store.put(written.slice(i * 50, i * 50 + 50));
    });
    // Chunks of at least 120 activities: three segments each, four read backs of the one file.
    await withStore(d, { indexChunkActivities: 120 }, async (store) => {
      await store.whenIndexed();
      assert.deepEqual(store.indexerStats, { handedOver: 0, readBack: 10 }, "each segment read back once");
      assert.equal(store.unindexed, 0);
    });
    await withStore(d, {}, async (store) => {
      assert.equal(await countExisting(store, "t-chunks", written), 500);
      const history = await store.leadHistory("t-chunks", "lead-2", { limit: 1000 });
      assert.deepEqual(
        history.items.map((a) => a.id),
        idsNewestFirst(written, "lead-2"),
      );
    });
  });

  it("rolls the log over to new files, keeps them (they hold the bodies) and reads bodies back across files", async () => {
    const d = dir();
    const segmentDir = join(d, "store-log");
    const written = Array.from({ length: 60 }, (_, i) =>
      activity("t-roll", `lead-${i % 3}`, "visit_web_page", base + i, received + i),
    );
    const small = { segmentFileBytes: 2_000, indexerSyncIntervalMs: 50, indexLingerMs: 0 };
    await withStore(d, { ...small, indexerPaused: true }, async (store) => {
      for (let i = 0; i < 6; i++) await store.put(written.slice(i * 5, i * 5 + 5));
    });
    const filesBefore = readdirSync(segmentDir).length;
    assert.ok(filesBefore >= 3, "a segment or two per file at this size");
    // Read back from six files after a restart; handed over after that.
    await withStore(d, small, async (store) => {
      await store.whenIndexed();
      assert.equal(store.indexerStats.readBack, 6);
      for (let i = 6; i < 12; i++) await store.put(written.slice(i * 5, i * 5 + 5));
      await store.whenIndexed();
      assert.ok(readdirSync(segmentDir).length > filesBefore, "indexed files stay");
    });
    await withStore(d, {}, async (store) => {
      assert.equal(store.unindexed, 0);
      // Every body from the table's positions, across all the files, byte for byte.
      for (const a of written) assert.deepEqual(await store.get("t-roll", a.id), a);
      const history = await store.leadHistory("t-roll", "lead-1", { limit: 100 });
      assert.deepEqual(history.items, [...written.filter((a) => a.leadId === "lead-1")].reverse());
      const listed = await store.list("t-roll", { limit: 7 });
      assert.deepEqual(listed.items, [...written].reverse().slice(0, 7));
    });
    const db = new Database(join(d, "store.db"), { readonly: true });
    try {
      const rows = db
        .prepare("SELECT count(*) AS n, sum(body = '' AND body_file IS NOT NULL) AS positioned FROM activities")
        .get() as { n: number; positioned: number };
      assert.deepEqual(rows, { n: 60, positioned: 60 }, "store.db holds positions, not bodies");
      // Read together in any order, through a reader holding one file open at a time.
      const places = db
        .prepare("SELECT id, body_file AS file, body_at AS at, body_len AS length FROM activities ORDER BY id DESC")
        .all() as Array<{ id: string; file: number; at: number; length: number }>;
      const shuffled = places.map((_, i) => places[(i * 37) % places.length]!);
      const reader = new SegmentReader(segmentDir, 1);
      try {
        const byId = new Map(written.map((a) => [a.id, a]));
        const lines = reader.read(shuffled);
        shuffled.forEach((p, i) => assert.deepEqual(JSON.parse(lines[i]!), byId.get(p.id)));
        assert.deepEqual(JSON.parse(reader.read([places[0]!])[0]!), written[59]);
      } finally {
        reader.close();
      }
    } finally {
      db.close();
    }
  });

  it("cuts a torn tail off the log on start, and refuses a damaged record before the last file's tail", async () => {
    const d = dir();
    const written = Array.from({ length: 30 }, (_, i) =>
      activity("t-torn", "lead-1", "visit_web_page", base + i, received + i),
    );
    await withStore(d, { indexerPaused: true }, async (store) => {
      await store.put(written.slice(0, 10));
      await store.put(written.slice(10, 20));
    });
    const segmentDir = join(d, "store-log");
    const [file] = readdirSync(segmentDir);
    const path = join(segmentDir, file!);
    const intact = statSync(path).size;
    // A record cut short by a crash: a header announcing more than was written.
    const torn = Buffer.alloc(40);
    torn.writeUInt32LE(5_000, 0);
    appendFileSync(path, torn);
    await withStore(d, { indexerPaused: true }, async (store) => {
      assert.equal(store.unindexed, 20, "both segments before the torn record are back");
      assert.equal(statSync(path).size, intact, "the torn record is cut off");
      await store.put(written.slice(20));
    });
    await withStore(d, {}, async (store) => {
      await store.whenIndexed();
      assert.equal(await countExisting(store, "t-torn", written), 30);
    });
    // A flipped byte inside a file that is not the last one: the store does not start.
    const bytes = readFileSync(path);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(path, bytes);
    writeFileSync(join(segmentDir, "99999999999999999999.seg"), "");
    const damaged = new EmbeddedStore({ dataDir: d });
    await assert.rejects(damaged.start(), /damaged at byte 0/);
  });

  it("bounds the memstore: a put waits for the indexer, then rejects after the timeout", async () => {
    const batch = (n: number, from: number) =>
      Array.from({ length: n }, (_, i) => activity("t-bp", "lead-1", "visit_web_page", base + from + i, received));
    await withStore(
      dir(),
      { indexerPaused: true, maxMemstoreActivities: 1000, backpressureTimeoutMs: 300 },
      async (store) => {
        await store.put(batch(600, 0));
        await store.put(batch(400, 600));
        assert.equal(store.unindexed, 1000);
        const started = Date.now();
        await assert.rejects(store.put(batch(1, 1000)), UnavailableError);
        assert.ok(Date.now() - started >= 250, "waited for the indexer first");
        assert.equal(store.unindexed, 1000, "nothing admitted beyond the bound");
        assert.equal((await store.health()).status, "degraded");
        let resolved = false;
        const waiting = store.put(batch(10, 2000)).then(() => (resolved = true));
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(resolved, false);
        store.resumeIndexer();
        await waiting;
        await store.whenIndexed();
        const page = await store.leadHistory("t-bp", "lead-1", { limit: 1000 });
        const rest = await store.leadHistory("t-bp", "lead-1", { limit: 1000, pageToken: page.nextPageToken! });
        assert.equal(page.items.length + rest.items.length, 1010);
        assert.equal((await store.health()).status, "up");
      },
    );
  });

  it("restarts a dead indexer or log writer; reads and later puts keep working", async () => {
    type Workers = { worker?: Worker; writer?: { current?: Worker } };
    const a = activity("t-respawn", "lead-1", "visit_web_page", base, received);
    const b = activity("t-respawn", "lead-1", "visit_web_page", base + 1, received + 1);
    const c = activity("t-respawn", "lead-1", "visit_web_page", base + 2, received + 2);
    const more = Array.from({ length: 4 }, (_, i) =>
      activity("t-respawn", "lead-2", "visit_web_page", base + 3 + i, received + 3 + i),
    );
    await withStore(dir(), {}, async (store) => {
      const internals = store as unknown as Workers;
      // Two puts in a row: the second lands while the indexer lingers after the first, so it can
      // only have been applied from the handoff if the workers are linked.
      const handedOverAfterTwoPuts = async (x: Activity, y: Activity): Promise<number> => {
        const before = store.indexerStats.handedOver;
        await store.put([x]);
        await store.put([y]);
        await store.whenIndexed();
        return store.indexerStats.handedOver - before;
      };
      await internals.worker!.terminate();
      await store.put([a]);
      assert.deepEqual(await store.get("t-respawn", a.id), a);
      assert.equal((await store.health()).status, "degraded");
      await store.whenIndexed(); // the indexer is back within about a second
      assert.equal(store.unindexed, 0);
      assert.ok((await handedOverAfterTwoPuts(more[0]!, more[1]!)) >= 1, "a new indexer is linked to the writer");
      await internals.writer!.current!.terminate();
      await assert.rejects(store.put([b]), UnavailableError);
      await new Promise((r) => setTimeout(r, 1_300));
      await store.put([b, c]);
      await store.whenIndexed();
      assert.ok((await handedOverAfterTwoPuts(more[2]!, more[3]!)) >= 1, "a new writer is linked to the indexer");
      const history = await store.leadHistory("t-respawn", "lead-1", { limit: 10 });
      assert.deepEqual(
        history.items.map((x) => x.id),
        [c.id, b.id, a.id],
      );
      assert.equal((await store.leadHistory("t-respawn", "lead-2", { limit: 10 })).items.length, 4);
      assert.equal((await store.health()).status, "up");
    });
  });

  it("keeps client ids a previous version stored in store.db", async () => {
    const d = dir();
    const oldId = newActivityId();
    const old = new Database(join(d, "store.db"));
    old.exec(
      "CREATE TABLE client_ids (tenant_id TEXT NOT NULL, client_id TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (tenant_id, client_id)) WITHOUT ROWID",
    );
    old.prepare("INSERT INTO client_ids VALUES (?, ?, ?)").run("t-old", "order-1", oldId);
    old.close();
    await withStore(d, {}, async (store) => {
      assert.deepEqual(await store.claimClientIds("t-old", [{ clientId: "order-1", proposedId: newActivityId() }]), [
        oldId,
      ]);
    });
  });
});

describe("embedded store: crashes and entry points", () => {
  const dirs: Array<{ cleanup: () => void }> = [];
  after(() => dirs.forEach((d) => d.cleanup()));
  const writer = join(__dirname, "test-writer.ts");
  const tsxCli = createRequire(__filename).resolve("tsx/cli");

  /** Runs the writer; resolves with the ids it reported durable, killing it with -9 unless clean. */
  async function runWriter(
    entry: string[],
    dataDir: string,
    mode: string,
  ): Promise<{ ids: string[]; indexed: boolean }> {
    const child = spawn(process.execPath, [...entry, writer, dataDir, mode, "6"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    let ids: string[] | undefined;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      const line = out.split("\n").find((l) => l.startsWith('{"ready"'));
      if (line && out.includes(`${line}\n`) && ids === undefined) {
        ids = (JSON.parse(line) as { ids: string[] }).ids;
        if (mode !== "clean") child.kill("SIGKILL");
      }
    });
    const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
    if (ids === undefined) throw new Error(`writer ended (${code ?? signal}) without reporting: ${out}`);
    if (mode !== "clean") assert.equal(signal, "SIGKILL");
    else assert.equal(code, 0);
    return { ids, indexed: out.includes('{"indexed":true}') };
  }

  async function assertReadable(dataDir: string, ids: string[], expectUnindexed: boolean): Promise<void> {
    await withStore(dataDir, {}, async (store) => {
      if (expectUnindexed) assert.ok(store.unindexed > 0, "segments were left un-indexed");
      assert.equal((await store.existing("t-crash", ids)).size, ids.length, "every resolved put is readable");
      const some = ids[Math.floor(ids.length / 2)]!;
      const a = await store.get("t-crash", some);
      assert.equal(a?.id, some);
      await store.whenIndexed();
      assert.equal(store.unindexed, 0);
      assert.equal((await store.existing("t-crash", ids)).size, ids.length);
    });
  }

  it("survives kill -9 with every segment un-indexed", async () => {
    const d = tempDir("hub-store-crash-");
    dirs.push(d);
    const { ids } = await runWriter(["--import", "tsx"], d.dir, "paused");
    assert.equal(ids.length, 3000);
    await assertReadable(d.dir, ids, true);
  });

  it("survives kill -9 while the indexer is working", async () => {
    const d = tempDir("hub-store-crash-");
    dirs.push(d);
    const { ids } = await runWriter(["--import", "tsx"], d.dir, "running");
    await assertReadable(d.dir, ids, false);
  });

  it("loads its indexer worker under the tsx CLI too", async () => {
    const d = tempDir("hub-store-tsx-");
    dirs.push(d);
    const { ids, indexed } = await runWriter([tsxCli], d.dir, "clean");
    assert.equal(indexed, true);
    await withStore(d.dir, {}, async (store) => {
      assert.equal(store.unindexed, 0);
      assert.equal((await store.existing("t-crash", ids)).size, ids.length);
    });
  });
});
