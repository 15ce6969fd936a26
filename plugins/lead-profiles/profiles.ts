import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import { activityIdFloor } from "../../core/activity/ids";
import type { Activity } from "../../core/activity/model";
import { leadKeyOf } from "../../core/activity/model";
import { GroupWriter } from "../../core/group-writer";
import { openSqlite, SQLITE_MODULE, type SqliteDatabase } from "../../core/sqlite";
import { startApplier, type ApplierCommand } from "./applier";

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

/**
 * Per-lead counters and last activity, kept from the queue. Applying an activity is idempotent
 * within the dedup window: a redelivered activity id is recognised and not counted twice.
 *
 * The SQLite work runs on the applier's thread (`applier.ts`); this side groups the activities
 * handed over in one turn of the event loop (a publish wakes every partition together) into one
 * transaction, and reads profiles through its own connection.
 */
export class LeadProfiles {
  private constructor(
    private readonly db: SqliteDatabase,
    private readonly applier: GroupWriter<Activity, undefined>,
  ) {}

  static async open(dataDir: string, options: LeadProfilesOptions = {}): Promise<LeadProfiles> {
    const dedupWindowMs = options.dedupWindowMs ?? 7 * 24 * 3600 * 1000;
    const db = openSqlite(join(dataDir, "lead-profiles.db"));
    try {
      db.exec(`
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
      migrateApplied(db);
      const applier = new GroupWriter<Activity, undefined>({
        name: "the lead profiles' applier",
        spawn: () => startApplier({ sqlite: SQLITE_MODULE, path: db.name, cacheLeads: CACHE_LEADS }),
        send: (activities) => {
          const rows: string[] = [];
          for (const a of activities) rows.push(a.tenantId, leadKeyOf(a), a.type, a.occurredAt, a.id);
          const message: ApplierCommand = {
            type: "append",
            rows,
            expiredBelow: activityIdFloor(Date.now() - dedupWindowMs),
          };
          return { message, group: undefined };
        },
        onWritten: () => undefined,
      });
      await applier.start();
      return new LeadProfiles(db, applier);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /**
   * Applies activities together with those of every other call made in the same turn of the event
   * loop, in one transaction; resolves once that transaction committed. Rejected if it rolled
   * back or the applier died with it (it restarts; the queue redelivers the batch).
   */
  apply(activities: readonly Activity[]): Promise<void> {
    if (activities.length === 0) return Promise.resolve();
    return this.applier.add(activities);
  }

  /** @internal The applier's thread while it runs (tests). */
  get applierThread(): Worker | undefined {
    return this.applier.current;
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

  /** Applies what was handed over, then stops the applier and closes the file. */
  async close(): Promise<void> {
    try {
      await this.applier.stop();
    } finally {
      this.db.close();
    }
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
