import { join } from "node:path";
import { openSqlite, type SqliteDatabase } from "../../core/sqlite";

/** A `change_score` activity not yet reflected in a connector's CRM. */
export interface ScoreDelta {
  readonly activityId: string;
  readonly leadId: string;
  readonly delta: number;
}

/**
 * Absolute lead scores per connector instance, folded from `change_score` deltas. CRMs take an
 * absolute score, the hub records deltas; folding each activity id once makes a redelivered batch
 * produce the same absolute value (an idempotent write), and `commit` runs only after the CRM
 * accepted the batch.
 */
export class ScoreLedger {
  private readonly db: SqliteDatabase;

  constructor(dataDir: string) {
    this.db = openSqlite(join(dataDir, "crm-connector-scores.db"));
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS scores (
        instance_id TEXT NOT NULL, lead_id TEXT NOT NULL, score REAL NOT NULL,
        PRIMARY KEY (instance_id, lead_id)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS applied (
        instance_id TEXT NOT NULL, activity_id TEXT NOT NULL, PRIMARY KEY (instance_id, activity_id)
      ) WITHOUT ROWID;
    `);
  }

  /** New absolute scores of the leads these deltas touch (already-folded activities are ignored). */
  compute(instanceId: string, deltas: readonly ScoreDelta[]): { scores: Map<string, number>; fresh: ScoreDelta[] } {
    const isApplied = this.db.prepare("SELECT 1 FROM applied WHERE instance_id = ? AND activity_id = ?");
    const current = this.db.prepare("SELECT score FROM scores WHERE instance_id = ? AND lead_id = ?").pluck();
    const scores = new Map<string, number>();
    const fresh: ScoreDelta[] = [];
    const seen = new Set<string>();
    for (const d of deltas) {
      if (seen.has(d.activityId) || isApplied.get(instanceId, d.activityId) !== undefined) continue;
      seen.add(d.activityId);
      fresh.push(d);
      const base = scores.get(d.leadId) ?? (current.get(instanceId, d.leadId) as number | undefined) ?? 0;
      scores.set(d.leadId, base + d.delta);
    }
    return { scores, fresh };
  }

  commit(instanceId: string, fresh: readonly ScoreDelta[], scores: ReadonlyMap<string, number>): void {
    const mark = this.db.prepare("INSERT OR IGNORE INTO applied (instance_id, activity_id) VALUES (?, ?)");
    const put = this.db.prepare(
      "INSERT INTO scores (instance_id, lead_id, score) VALUES (?, ?, ?) ON CONFLICT (instance_id, lead_id) DO UPDATE SET score = excluded.score",
    );
    this.db.transaction(() => {
      for (const d of fresh) mark.run(instanceId, d.activityId);
      for (const [leadId, score] of scores) put.run(instanceId, leadId, score);
    })();
  }

  forget(instanceId: string): void {
    this.db.prepare("DELETE FROM scores WHERE instance_id = ?").run(instanceId);
    this.db.prepare("DELETE FROM applied WHERE instance_id = ?").run(instanceId);
  }

  close(): void {
    this.db.close();
  }
}
