import { Worker } from "node:worker_threads";
import { groupWriterSource } from "../../core/group-writer";
import { BULK_WRITES_SOURCE } from "../../core/sqlite-bulk";

/**
 * The lead profiles' applier: a `worker_threads` Worker owning the only writing connection to
 * `lead-profiles.db`, behind a `GroupWriter` (`core/group-writer.ts`). Per activity it records the
 * id (dedup) and folds the activity into its lead's profile; none of that SQLite work, nor the
 * parsed profiles it keeps, runs on or lives in the event loop's heap. Same loading scheme as the
 * store's indexer (a self-contained CommonJS body evaluated with `eval: true`).
 */

export interface ApplierConfig {
  /** Absolute path of the better-sqlite3 module. */
  sqlite: string;
  path: string;
  /** Profiles kept parsed in memory (recently used ones). */
  cacheLeads: number;
}

/** Fields per activity in `rows`, in this order. */
export const ROW_FIELDS = ["tenantId", "leadKey", "type", "occurredAt", "id"] as const;

/**
 * Main thread to worker. `append`: `rows` holds the activities' `ROW_FIELDS`, flattened; applied
 * ids below `expiredBelow` (an `activityIdFloor`) are forgotten, a bounded number per group. The
 * worker answers `written` once the group's transaction committed.
 */
export type ApplierCommand = { type: "append"; rows: string[]; expiredBelow: string } | { type: "stop" };

const WORKER_SOURCE = groupWriterSource(String.raw`
${BULK_WRITES_SOURCE}
const db = new Database(cfg.path, { fileMustExist: true });
db.pragma("journal_mode = WAL");
// Derived state: survives a process crash (WAL); after a power loss the queue redelivers.
db.pragma("synchronous = NORMAL");
db.pragma("busy_timeout = 5000");
db.pragma("wal_autocheckpoint = 20000");
// Keyed by id first: new ids append at the B-tree's right edge, expired ones leave from its left.
// Ids and profiles are written in bulks (BULK_WRITES_SOURCE).
const marks = bulkWriter(db, "INSERT OR IGNORE INTO applied_ids (activity_id, tenant_id) VALUES ", "(?, ?)");
const prune = db.prepare(
  "DELETE FROM applied_ids WHERE (activity_id, tenant_id) IN " +
    "(SELECT activity_id, tenant_id FROM applied_ids WHERE activity_id < ? LIMIT ?)",
);
const read = db.prepare(
  "SELECT activity_count, counts_by_type, first_at, last_at, last_id, last_type FROM profiles WHERE tenant_id = ? AND lead_key = ?",
);
const upserts = bulkWriter(
  db,
  "INSERT INTO profiles (tenant_id, lead_key, activity_count, counts_by_type, first_at, last_at, last_id, last_type, updated_at) VALUES ",
  "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
  " ON CONFLICT (tenant_id, lead_key) DO UPDATE SET " +
    "activity_count = excluded.activity_count, counts_by_type = excluded.counts_by_type, first_at = excluded.first_at, " +
    "last_at = excluded.last_at, last_id = excluded.last_id, last_type = excluded.last_type, updated_at = excluded.updated_at",
);

// This thread is the profiles' only writer, so recently used profiles stay parsed here, in two
// generations (see core/recent-cache.ts). The cache takes states only once their transaction
// committed and never mutates them: a rollback leaves it as it was.
const generation = Math.max(1, cfg.cacheLeads >> 1);
let current = new Map();
let previous = new Map();
function remember(slot, state) {
  if (current.size >= generation) {
    previous = current;
    current = new Map();
  }
  current.set(slot, state);
}
function load(tenantId, key, slot) {
  const hit = current.get(slot);
  if (hit !== undefined) return hit;
  const old = previous.get(slot);
  if (old !== undefined) {
    remember(slot, old);
    return old;
  }
  const row = read.get(tenantId, key);
  if (!row) return undefined;
  return {
    count: row.activity_count,
    counts: JSON.parse(row.counts_by_type),
    first: row.first_at,
    last: { at: row.last_at, id: row.last_id, type: row.last_type },
  };
}

const apply = db.transaction((rows, expiredBelow) => {
  prune.run(expiredBelow, Math.max(100, (rows.length / 5) * 2));
  // Fold the group per lead first: one write per lead, not per activity.
  const perLead = new Map();
  // Activity k's fields are rows[5k..5k+4]; only the ids not applied before are folded.
  writeNew(
    marks,
    rows.length / 5,
    (k, out) => out.push(rows[5 * k + 4], rows[5 * k]),
    (k) => {
      const i = 5 * k;
      const slot = rows[i] + "\u0000" + rows[i + 1];
      const entry = perLead.get(slot);
      if (entry) entry.push(i);
      else perLead.set(slot, [i]);
    },
  );
  const now = new Date().toISOString();
  const updates = [];
  const written = [];
  for (const [slot, items] of perLead) {
    const tenantId = rows[items[0]];
    const key = rows[items[0] + 1];
    const previous = load(tenantId, key, slot);
    const counts = { ...(previous && previous.counts) };
    let first = previous && previous.first;
    let last = previous && previous.last;
    for (const i of items) {
      const type = rows[i + 2];
      const at = rows[i + 3];
      const id = rows[i + 4];
      counts[type] = (counts[type] || 0) + 1;
      if (first === undefined || at < first) first = at;
      if (!last || at > last.at || (at === last.at && id > last.id)) last = { at, id, type };
    }
    const next = { count: (previous ? previous.count : 0) + items.length, counts, first, last };
    written.push(tenantId, key, next.count, JSON.stringify(counts), first, last.at, last.id, last.type, now);
    updates.push(slot, next);
  }
  writeAll(upserts, written.length / 9, (k, out) => {
    for (let i = 9 * k; i < 9 * k + 9; i++) out.push(written[i]);
  });
  return updates;
});

function write(m) {
  const updates = apply(m.rows, m.expiredBelow);
  for (let i = 0; i < updates.length; i += 2) remember(updates[i], updates[i + 1]);
}
`);

export function startApplier(config: ApplierConfig): Worker {
  return new Worker(WORKER_SOURCE, { eval: true, workerData: config, execArgv: [] });
}
