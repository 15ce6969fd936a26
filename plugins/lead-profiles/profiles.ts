import { join } from "node:path";
import { activityIdFloor } from "../../core/activity/ids";
import type { Activity } from "../../core/activity/model";
import { leadKeyOf } from "../../core/activity/model";
import { RecentCache } from "../../core/recent-cache";
import { GroupCommit, openSqlite, type SqliteDatabase } from "../../core/sqlite";

export interface LeadProfile {
  leadId: string;
  activityCount: number;
  countsByType: Record<string, number>;
  firstActivityAt: string;
  lastActivityAt: string;
  lastActivityId: string;
  lastActivityType: string;
  updatedAt: string;
}

export interface LeadProfilesOptions {
  /**
   * How long an applied activity's id is remembered to recognise a redelivery (ms, default 7 days,
   * the embedded queue's default retention). Ids are time-sortable by arrival at the hub, so the
   * oldest are forgotten first, a few per applied batch.
   */
  dedupWindowMs?: number;
}

/** Per batch, at most this many expired ids per applied activity are forgotten (at least 100). */
const PRUNE_PER_ACTIVITY = 2;

/**
 * Per-lead counters and last activity, kept from the queue. Applying an activity is idempotent
 * within the dedup window: a redelivered activity id is recognised and not counted twice.
 */
export class LeadProfiles {
  private readonly db: SqliteDatabase;
  private readonly applyBatch: (activities: Activity[]) => number;
  private readonly grouped: GroupCommit<Activity>;

  constructor(dataDir: string, options: LeadProfilesOptions = {}) {
    const dedupWindowMs = options.dedupWindowMs ?? 7 * 24 * 3600 * 1000;
    this.db = openSqlite(join(dataDir, "lead-profiles.db"));
    // Derived state: survives a process crash (WAL); after a power loss the queue redelivers.
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS profiles (
        tenant_id TEXT NOT NULL, lead_key TEXT NOT NULL, activity_count INTEGER NOT NULL,
        counts_by_type TEXT NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL,
        last_id TEXT NOT NULL, last_type TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, lead_key)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS applied_ids (
        activity_id TEXT NOT NULL, tenant_id TEXT NOT NULL, PRIMARY KEY (activity_id, tenant_id)
      ) WITHOUT ROWID;
    `);
    migrateApplied(this.db);
    // Keyed by id first: new ids append at the B-tree's right edge, expired ones leave from its left.
    const mark = this.db.prepare("INSERT OR IGNORE INTO applied_ids (activity_id, tenant_id) VALUES (?, ?)");
    const prune = this.db.prepare(
      `DELETE FROM applied_ids WHERE (activity_id, tenant_id) IN
         (SELECT activity_id, tenant_id FROM applied_ids WHERE activity_id < ? LIMIT ?)`,
    );
    const read = this.db.prepare(
      "SELECT activity_count, counts_by_type, first_at, last_at, last_id, last_type FROM profiles WHERE tenant_id = ? AND lead_key = ?",
    );
    const write = this.db.prepare(
      `INSERT INTO profiles (tenant_id, lead_key, activity_count, counts_by_type, first_at, last_at, last_id, last_type, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, lead_key) DO UPDATE SET activity_count = excluded.activity_count,
         counts_by_type = excluded.counts_by_type, first_at = excluded.first_at, last_at = excluded.last_at,
         last_id = excluded.last_id, last_type = excluded.last_type, updated_at = excluded.updated_at`,
    );
    // This process is the profiles' only writer, so recently used profiles stay parsed in memory:
    // a hot lead costs no read and no JSON parse of its counters. The cache only takes states
    // once their transaction committed, and never mutates them: a rollback leaves it as it was.
    const cache = new RecentCache<string, CachedProfile>(CACHE_LEADS);
    const load = (tenantId: string, key: string, slot: string): CachedProfile | undefined => {
      const hit = cache.get(slot);
      if (hit) return hit;
      const row = read.get(tenantId, key) as Omit<ProfileRow, "lead_key" | "updated_at"> | undefined;
      if (!row) return undefined;
      return {
        count: row.activity_count,
        counts: JSON.parse(row.counts_by_type) as Record<string, number>,
        first: row.first_at,
        last: { at: row.last_at, id: row.last_id, type: row.last_type },
      };
    };
    /** Runs inside a transaction; the new states go into the cache once it committed. */
    const applyRows = (activities: Activity[]): { applied: number; updates: Array<[string, CachedProfile]> } => {
      // Fold the batch per lead first: one write per lead, not per activity.
      const perLead = new Map<string, { tenantId: string; key: string; items: Activity[] }>();
      prune.run(activityIdFloor(Date.now() - dedupWindowMs), Math.max(100, activities.length * PRUNE_PER_ACTIVITY));
      for (const a of activities) {
        if (mark.run(a.id, a.tenantId).changes === 0) continue;
        const key = leadKeyOf(a);
        const slot = `${a.tenantId}\u0000${key}`;
        const entry = perLead.get(slot);
        if (entry) entry.items.push(a);
        else perLead.set(slot, { tenantId: a.tenantId, key, items: [a] });
      }
      const now = new Date().toISOString();
      let applied = 0;
      const updates: Array<[string, CachedProfile]> = [];
      for (const [slot, { tenantId, key, items }] of perLead) {
        const previous = load(tenantId, key, slot);
        const counts = { ...previous?.counts };
        let first = previous?.first;
        let last = previous?.last;
        for (const a of items) {
          counts[a.type] = (counts[a.type] ?? 0) + 1;
          if (first === undefined || a.occurredAt < first) first = a.occurredAt;
          if (!last || a.occurredAt > last.at || (a.occurredAt === last.at && a.id > last.id)) {
            last = { at: a.occurredAt, id: a.id, type: a.type };
          }
        }
        applied += items.length;
        const next: CachedProfile = {
          count: (previous?.count ?? 0) + items.length,
          counts,
          first: first!,
          last: last!,
        };
        write.run(
          tenantId,
          key,
          next.count,
          JSON.stringify(counts),
          next.first,
          next.last.at,
          next.last.id,
          next.last.type,
          now,
        );
        updates.push([slot, next]);
      }
      return { applied, updates };
    };
    const remember = (updates: Array<[string, CachedProfile]>): void => {
      for (const [slot, state] of updates) cache.set(slot, state);
    };
    const apply = this.db.transaction(applyRows);
    this.applyBatch = (activities) => {
      const result = apply(activities);
      remember(result.updates);
      return result.applied;
    };
    // A consumer's partitions are woken by the same publish, so their batches arrive in the same
    // turn of the event loop: one transaction for all of them.
    this.grouped = new GroupCommit<Activity>(this.db, (activities) => {
      const { updates } = applyRows(activities);
      return () => remember(updates);
    });
  }

  /** Applies activities; returns how many were new. */
  apply(activities: Activity[]): number {
    return this.applyBatch(activities);
  }

  /**
   * Applies activities together with those of every other call made in the same turn of the event
   * loop, in one transaction; resolves once that transaction committed.
   */
  applyGrouped(activities: Activity[]): Promise<void> {
    return this.grouped.add(activities);
  }

  get(tenantId: string, leadKey: string): LeadProfile | undefined {
    const row = this.db
      .prepare("SELECT * FROM profiles WHERE tenant_id = ? AND lead_key = ?")
      .get(tenantId, leadKey) as ProfileRow | undefined;
    if (!row) return undefined;
    return {
      leadId: row.lead_key,
      activityCount: row.activity_count,
      countsByType: JSON.parse(row.counts_by_type) as Record<string, number>,
      firstActivityAt: row.first_at,
      lastActivityAt: row.last_at,
      lastActivityId: row.last_id,
      lastActivityType: row.last_type,
      updatedAt: row.updated_at,
    };
  }

  close(): void {
    this.db.close();
  }
}

/** Files written before `applied_ids` kept the same ids keyed by tenant first: move them over. */
function migrateApplied(db: SqliteDatabase): void {
  const old = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'applied'").get();
  if (!old) return;
  db.transaction(() => {
    db.exec("INSERT OR IGNORE INTO applied_ids (activity_id, tenant_id) SELECT activity_id, tenant_id FROM applied");
    db.exec("DROP TABLE applied");
  })();
}

/** Profiles kept parsed in memory (recently used ones). */
const CACHE_LEADS = 100_000;

interface CachedProfile {
  count: number;
  counts: Record<string, number>;
  first: string;
  last: { at: string; id: string; type: string };
}

interface ProfileRow {
  lead_key: string;
  activity_count: number;
  counts_by_type: string;
  first_at: string;
  last_at: string;
  last_id: string;
  last_type: string;
  updated_at: string;
}
