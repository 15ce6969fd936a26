import { join } from "node:path";
import { randomUUID } from "node:crypto";
import type { JsonValue } from "../core/activity/model";
import { GroupCommit, openSqlite, type SqliteDatabase } from "../core/sqlite";

/**
 * What to do when a previous process claimed an effect and died before recording it done:
 * `repeat` performs it again (at-least-once at the edge; pass the effect key downstream, e.g. as
 * an Idempotency-Key or Message-ID, so the receiver can collapse the rare repeat), `skip` never
 * performs it twice (at-most-once for that one effect).
 */
export type InDoubtPolicy = "repeat" | "skip";

export type EffectResult<T> =
  | { performed: true; value: T }
  | { performed: false; reason: "done"; value: T | undefined }
  | { performed: false; reason: "in_doubt" | "in_progress"; value: undefined };

interface Write {
  key: string;
  status: "pending" | "done";
  result: string | null;
}

/**
 * A durable ledger of side effects keyed by (consumer, effect key): `once(key, effect)` performs
 * `effect` only if no earlier delivery recorded it done. Writes are group-committed, so thousands
 * of effects a second cost a few fsyncs.
 */
export class EffectLedger {
  private readonly db: SqliteDatabase;
  private readonly commit: GroupCommit<Write>;
  private readonly incarnation = randomUUID();
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly read: (key: string) => { status: string; incarnation: string; result: string | null } | undefined;

  constructor(
    dataDir: string,
    private readonly consumer: string,
  ) {
    this.db = openSqlite(join(dataDir, "effects", `${consumer}.db`));
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS effects (
        consumer TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL, incarnation TEXT NOT NULL,
        result TEXT, updated_at INTEGER NOT NULL, PRIMARY KEY (consumer, key)
      ) WITHOUT ROWID;
    `);
    const select = this.db.prepare("SELECT status, incarnation, result FROM effects WHERE consumer = ? AND key = ?");
    this.read = (key) =>
      select.get(this.consumer, key) as { status: string; incarnation: string; result: string | null } | undefined;
    const upsert = this.db.prepare(
      `INSERT INTO effects (consumer, key, status, incarnation, result, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (consumer, key) DO UPDATE SET status = excluded.status, incarnation = excluded.incarnation,
         result = excluded.result, updated_at = excluded.updated_at`,
    );
    this.commit = new GroupCommit<Write>(this.db, (items) => {
      const now = Date.now();
      for (const w of items) upsert.run(this.consumer, w.key, w.status, this.incarnation, w.result, now);
    });
  }

  /** Performs `effect` unless an earlier delivery already did; resolves once the outcome is durable. */
  async once<T extends JsonValue | void>(
    key: string,
    effect: () => Promise<T>,
    options: { inDoubt?: InDoubtPolicy } = {},
  ): Promise<EffectResult<T>> {
    if (this.inFlight.has(key)) return { performed: false, reason: "in_progress", value: undefined };
    const row = this.read(key);
    if (row?.status === "done") {
      return {
        performed: false,
        reason: "done",
        value: row.result === null ? undefined : (JSON.parse(row.result) as T),
      };
    }
    const policy = options.inDoubt ?? "repeat";
    if (row?.status === "pending" && row.incarnation !== this.incarnation && policy === "skip") {
      await this.commit.add([{ key, status: "done", result: null }]);
      return { performed: false, reason: "in_doubt", value: undefined };
    }
    const run = (async () => {
      // Only `skip` needs the claim on disk before the effect; `repeat` saves that fsync.
      if (policy === "skip") await this.commit.add([{ key, status: "pending", result: null }]);
      const value = await effect();
      await this.commit.add([{ key, status: "done", result: value === undefined ? null : JSON.stringify(value) }]);
      return value;
    })();
    this.inFlight.set(key, run);
    try {
      return { performed: true, value: await run };
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** Whether an effect is recorded done. */
  isDone(key: string): boolean {
    return this.read(key)?.status === "done";
  }

  /** Forgets effects recorded before `before` (epoch ms); returns how many. */
  prune(before: number): number {
    return this.db.prepare("DELETE FROM effects WHERE consumer = ? AND updated_at < ?").run(this.consumer, before)
      .changes;
  }

  close(): void {
    this.commit.flush();
    this.db.close();
  }
}
