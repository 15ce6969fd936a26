import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { leadKeyOf, type Activity } from "../core/activity/model";
import { activityJson } from "../core/activity/serialize";
import { benchActivityBatches } from "./lib/fixtures";
import { GroupCommit, openSqlite } from "../core/sqlite";
import { EmbeddedStore } from "../plugins/store/embedded";

/**
 * `npm run bench:store`: the embedded store's `put` alone, batches of 500 with 4 in flight (as
 * the ingest benchmark's clients), old and new write paths alternately in the same run:
 * - `direct`: the previous store, every activity inserted into the indexed table (PK + lead
 *   index) inside the fsync'd group commit on the main thread;
 * - `lsm`: the current store (one segment row per group commit, indexer in a worker thread),
 *   with the indexer sorting its chunks, and without (`lsm-unsorted`).
 * Reports wall µs per activity until every put resolved, main-thread busy µs per activity (event
 * loop utilisation), and for `lsm` the time until the worker has indexed everything. Activities
 * are serialised before the clock starts, as the intake's queue publish already did. Then reads
 * of the indexed data, mean µs per call: 2,000 lead histories of 40, 200 tenant lists of 1,000,
 * 20,000 gets by id; `direct` keeps the bodies in its table, `lsm` in the segment files.
 * STORE_BENCH_ACTIVITIES (default 200,000), STORE_BENCH_ROUNDS (default 2).
 */
const total = Number(process.env.STORE_BENCH_ACTIVITIES ?? 200_000);
const rounds = Number(process.env.STORE_BENCH_ROUNDS ?? 2);
const BATCH = 500;
const IN_FLIGHT = 4;

interface Target {
  put(activities: Activity[], json: string[]): Promise<void>;
  drain(): Promise<void>;
  stop(): Promise<void>;
  /** Reads, once everything is indexed: a lead's newest, the tenant's newest, one by id. */
  history(leadKey: string, limit: number): Promise<Activity[]>;
  list(limit: number): Promise<Activity[]>;
  get(id: string): Promise<Activity | undefined>;
}

const TENANT = "bench";

/** The batches, each with its activities' JSON made up front, as the intake makes it for the queue. */
function batches(): Array<{ activities: Activity[]; json: string[] }> {
  return benchActivityBatches(TENANT, total, BATCH).map((activities) => ({
    activities,
    json: activities.map(activityJson),
  }));
}

/** The previous embedded store's write path, verbatim in effect. */
function direct(dataDir: string): Target {
  const db = openSqlite(join(dataDir, "store.db"));
  db.exec(`
    CREATE TABLE activities (
      tenant_id TEXT NOT NULL, id TEXT NOT NULL, lead_key TEXT NOT NULL, type TEXT NOT NULL,
      occurred_at INTEGER NOT NULL, body TEXT NOT NULL,
      PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;
    CREATE INDEX activities_by_lead ON activities (tenant_id, lead_key, occurred_at, id);
  `);
  const insert = db.prepare(
    "INSERT OR IGNORE INTO activities (tenant_id, id, lead_key, type, occurred_at, body) VALUES (?, ?, ?, ?, ?, ?)",
  );
  const commit = new GroupCommit<[Activity, string]>(db, (items) => {
    for (const [a, json] of items) {
      insert.run(a.tenantId, a.id, leadKeyOf(a), a.type, Date.parse(a.occurredAt), json);
    }
  });
  const parse = (rows: unknown[]): Activity[] => (rows as string[]).map((body) => JSON.parse(body) as Activity);
  const history = db
    .prepare(
      "SELECT body FROM activities WHERE tenant_id = ? AND lead_key = ? ORDER BY occurred_at DESC, id DESC LIMIT ?",
    )
    .pluck();
  const list = db.prepare("SELECT body FROM activities WHERE tenant_id = ? ORDER BY id DESC LIMIT ?").pluck();
  const get = db.prepare("SELECT body FROM activities WHERE tenant_id = ? AND id = ?").pluck();
  return {
    put: (activities, json) => commit.add(activities.map((a, i): [Activity, string] => [a, json[i]!])),
    drain: async () => undefined,
    stop: async () => {
      db.close();
    },
    history: async (leadKey, limit) => parse(history.all(TENANT, leadKey, limit)),
    list: async (limit) => parse(list.all(TENANT, limit)),
    get: async (id) => parse(get.all(TENANT, id))[0],
  };
}

async function lsm(dataDir: string, sorted: boolean): Promise<Target> {
  const store = new EmbeddedStore({ dataDir, indexSorted: sorted, maxMemstoreActivities: Math.max(300_000, total) });
  await store.start();
  return {
    put: (a, json) => store.put(a, json),
    drain: () => store.whenIndexed(),
    stop: () => store.stop(),
    history: async (leadKey, limit) => (await store.leadHistory(TENANT, leadKey, { limit })).items,
    list: async (limit) => (await store.list(TENANT, { limit })).items,
    get: (id) => store.get(TENANT, id),
  };
}

async function run(name: string, open: (dir: string) => Promise<Target> | Target): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "hub-bench-store-"));
  const work = batches();
  const target = await open(dir);
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < work.length) {
        const batch = work[next++]!;
        await target.put(batch.activities, batch.json);
      }
    }),
  );
  const putMs = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  await target.drain();
  const drainedMs = performance.now() - t0;
  const reads = await timeReads(
    target,
    work.map((b) => b.activities),
  );
  await target.stop();
  rmSync(dir, { recursive: true, force: true });
  const n = work.length * BATCH;
  const us = (ms: number): string => ((ms * 1000) / n).toFixed(1).padStart(6);
  console.log(
    `${name.padEnd(13)} put ${us(putMs)} µs/activity (${((n / putMs) * 1000).toFixed(0).padStart(7)}/s)` +
      `  main thread busy ${us(elu.active)} µs/activity` +
      `  until indexed ${us(drainedMs)} µs/activity (${((n / drainedMs) * 1000).toFixed(0).padStart(7)}/s)` +
      `  reads: lead history (40) ${reads.history} µs, list (1000) ${reads.list} µs, get ${reads.get} µs`,
  );
}

/** Mean µs per read over a fixed set of calls, each checked for the expected count. */
async function timeReads(target: Target, work: Activity[][]): Promise<{ history: string; list: string; get: string }> {
  const ids = work.flat().map((a) => a.id);
  const time = async (calls: number, call: (i: number) => Promise<number>, expect: number): Promise<string> => {
    const t = performance.now();
    for (let i = 0; i < calls; i++) {
      const got = await call(i);
      if (got !== expect) throw new Error(`a read returned ${got} items, not ${expect}`);
    }
    return (((performance.now() - t) * 1000) / calls).toFixed(0);
  };
  return {
    history: await time(2_000, async (i) => (await target.history(`lead-${(i * 7) % 5000}`, 40)).length, 40),
    list: await time(200, async () => (await target.list(1000)).length, 1000),
    get: await time(20_000, async (i) => ((await target.get(ids[(i * 7919) % ids.length]!)) ? 1 : 0), 1),
  };
}

async function main(): Promise<void> {
  console.log(
    `bench:store — ${total} activities per run, batches of ${BATCH}, ${IN_FLIGHT} in flight, 5,000 leads, fsync per group commit`,
  );
  for (let r = 0; r < rounds; r++) {
    await run("direct (old)", (dir) => direct(dir));
    await run("lsm (new)", (dir) => lsm(dir, true));
    await run("lsm-unsorted", (dir) => lsm(dir, false));
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
