import { join } from "node:path";
import { randomUUID } from "node:crypto";
import type { JsonValue } from "../core/activity/model";
import { GroupCommit, openSqlite, WalSync, type SqliteDatabase } from "../core/sqlite";

/**
 * What to do with an effect left in doubt: a previous attempt claimed it (`skip` without a commit
 * point) or passed its commit point, and died (or failed) before recording the outcome. `repeat`
 * performs it again (at-least-once at the edge; pass the effect key downstream, e.g. as an
 * Idempotency-Key or Message-ID, so the receiver can collapse the rare repeat), `skip` never
 * performs it twice (at-most-once for that one effect).
 */
export type InDoubtPolicy = "repeat" | "skip";

export type EffectResult<T> =
  | { performed: true; value: T }
  | { performed: false; reason: "done"; value: T | undefined }
  | { performed: false; reason: "in_doubt" | "in_progress"; value: undefined };

/**
 * Marks the effect as past its commit point; call it right before the irrevocable instant (the
 * last byte that makes the receiver act). The mark is written to the WAL synchronously, so it
 * survives a process crash at once; it is fsync'd together with the effect's outcome. After a
 * power loss that took the mark before that fsync, the effect counts as not performed.
 */
export type CommitPoint = () => Promise<void>;

export interface EffectOptions {
  /** What to do if an earlier attempt left the effect in doubt (default `repeat`). */
  inDoubt?: InDoubtPolicy;
  /**
   * The effect calls `commit()` right before its irrevocable instant. No claim is written before
   * the effect then, even with `inDoubt: "skip"`: only a written commit mark makes it in doubt,
   * a crash before it means the receiver never acted and the effect is simply performed again.
   */
  commitPoint?: boolean;
}

/**
 * Thrown by an effect when the receiver definitely did not act on it, even after the commit point
 * (an SMTP 4xx/5xx reply to the end of DATA, an HTTP status it refused with): the ledger clears
 * its commit mark (or claim), so the next attempt performs the effect again. Any other error
 * after the commit point leaves the effect in doubt.
 */
export class EffectNotPerformed extends Error {
  override readonly name = "EffectNotPerformed";
}

/**
 * Row states: `pending` (claimed before an effect without commit point, `skip` only),
 * `committing` (past the commit point, outcome not yet recorded), `done`, `in_doubt` (settled
 * without performing it again: never performed again), `not_performed` (the receiver refused;
 * same as no row).
 */
type Status = "pending" | "committing" | "done" | "in_doubt" | "not_performed";

interface Write {
  key: string;
  status: Status;
  result: string | null;
}

/**
 * A durable ledger of side effects keyed by (consumer, effect key): `once(key, effect)` performs
 * `effect` only if no earlier delivery recorded it done. Writes are group-committed, so thousands
 * of effects a second cost a few fsyncs.
 */
export class EffectLedger {
  private readonly db: SqliteDatabase;
  private readonly writes: GroupCommit<Write>;
  private readonly walSync: WalSync;
  private readonly markCommitting: (key: string) => void;
  private readonly incarnation = randomUUID();
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly read: (key: string) => { status: Status; incarnation: string; result: string | null } | undefined;

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
      select.get(this.consumer, key) as { status: Status; incarnation: string; result: string | null } | undefined;
    const upsert = this.db.prepare(
      `INSERT INTO effects (consumer, key, status, incarnation, result, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (consumer, key) DO UPDATE SET status = excluded.status, incarnation = excluded.incarnation,
         result = excluded.result, updated_at = excluded.updated_at`,
    );
    this.walSync = new WalSync(this.db);
    this.writes = new GroupCommit<Write>(
      this.db,
      (items) => {
        const now = Date.now();
        for (const w of items) upsert.run(this.consumer, w.key, w.status, this.incarnation, w.result, now);
      },
      20_000,
      this.walSync,
    );
    this.markCommitting = (key) => upsert.run(this.consumer, key, "committing", this.incarnation, null, Date.now());
  }

  /**
   * Performs `effect` unless an earlier delivery already did; resolves once the outcome is durable.
   * `effect` gets `commit` (see {@link CommitPoint}); effects that ignore it behave as before.
   * A row left `committing` by any earlier attempt that is not running now (another process, or
   * this one after a failure) is in doubt: `skip` settles it without performing it, `repeat`
   * performs it again. Rejects with the effect's error.
   */
  async once<T extends JsonValue | void>(
    key: string,
    effect: (commit: CommitPoint) => Promise<T>,
    options: EffectOptions = {},
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
    if (row?.status === "in_doubt") return { performed: false, reason: "in_doubt", value: undefined };
    const policy = options.inDoubt ?? "repeat";
    const inDoubt = row?.status === "committing" || (row?.status === "pending" && row.incarnation !== this.incarnation);
    if (inDoubt && policy === "skip") {
      await this.writes.add([{ key, status: "in_doubt", result: null }]);
      return { performed: false, reason: "in_doubt", value: undefined };
    }
    const run = this.perform(key, effect, policy === "skip" && options.commitPoint !== true);
    this.inFlight.set(key, run);
    try {
      return { performed: true, value: await run };
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async perform<T extends JsonValue | void>(
    key: string,
    effect: (commit: CommitPoint) => Promise<T>,
    claim: boolean,
  ): Promise<T> {
    // Without a commit point, only `skip` needs the claim on disk before the effect; `repeat` saves that fsync.
    if (claim) await this.writes.add([{ key, status: "pending", result: null }]);
    let marked: Promise<void> | undefined;
    let settled = false;
    const commit: CommitPoint = () => {
      if (settled) return Promise.reject(new Error(`commit() of effect '${key}' called after it settled`));
      // The mark is a synchronous WAL write: a process crash from here on finds it (the OS holds
      // the page), so the final bytes can leave at once instead of after an fsync; the fsync of
      // the outcome below makes it durable against power loss too.
      if (marked === undefined) {
        this.markCommitting(key);
        marked = Promise.resolve();
      }
      return marked;
    };
    let value: T;
    try {
      value = await effect(commit);
    } catch (error) {
      settled = true;
      if (error instanceof EffectNotPerformed && (claim || marked !== undefined)) {
        // The receiver refused: clear the mark once it is down, so the next attempt performs it again.
        await marked?.catch(() => undefined);
        await this.writes.add([{ key, status: "not_performed", result: null }]);
      }
      throw error;
    }
    settled = true;
    await this.writes.add([{ key, status: "done", result: value === undefined ? null : JSON.stringify(value) }]);
    return value;
  }

  /** Whether an effect is settled: recorded done, or left in doubt and settled as such (`skip`). */
  isDone(key: string): boolean {
    const status = this.read(key)?.status;
    return status === "done" || status === "in_doubt";
  }

  /** Forgets effects recorded before `before` (epoch ms); returns how many. */
  prune(before: number): number {
    return this.db.prepare("DELETE FROM effects WHERE consumer = ? AND updated_at < ?").run(this.consumer, before)
      .changes;
  }

  close(): void {
    this.writes.flushSync();
    this.walSync.close();
    this.db.close();
  }
}
