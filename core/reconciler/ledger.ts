import { join } from "node:path";
import type { Statement } from "better-sqlite3";
import { openSqlite, type SqliteDatabase } from "../sqlite";

/** A span of arrival times (`receivedAt`, epoch ms) in which the queue and the store may disagree. */
export interface SuspectWindow {
  id: number;
  since: number;
  until: number;
  reason: "crash" | "persist_failed" | "requested";
}

export interface PersistLedgerOptions {
  dataDir: string;
  /** How often the watermark is written (ms, default 1,000). */
  heartbeatMs?: number;
  /** Clock of the ledger (tests). */
  now?: () => number;
}

/**
 * Where the queue and the store may have diverged, so the reconciler looks there and nowhere
 * else. The intake writes every batch to both in parallel; the two can disagree only about a
 * batch whose write failed on one side, or was under way when the process died. The ledger
 * records both cases as suspect windows of arrival time, in `reconciler.db`:
 *
 * - a failed write (`end(token, true)`): the window from the batch's arrival to the moment both
 *   writes settled (a timed-out write may still land later; it is widened when it does);
 * - a crash: a heartbeat writes the watermark every `heartbeatMs`, the earliest arrival time of
 *   a write still under way (or the current time). A start that finds no clean shutdown after
 *   the last heartbeat records the window from that watermark to one heartbeat past it.
 *
 * The cost in steady state is one small write per heartbeat, whatever the ingest rate.
 */
export class PersistLedger {
  private readonly db: SqliteDatabase;
  /** Written every heartbeat: prepared once. */
  private readonly setState: Statement;
  private readonly heartbeatMs: number;
  private readonly now: () => number;
  private readonly inFlight = new Map<number, number>();
  private nextToken = 1;
  private unsettled = 0;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(options: PersistLedgerOptions) {
    this.heartbeatMs = options.heartbeatMs ?? 1_000;
    this.now = options.now ?? Date.now;
    this.db = openSqlite(join(options.dataDir, "reconciler.db"));
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS ledger (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS windows (
        id INTEGER PRIMARY KEY, since INTEGER NOT NULL, until INTEGER NOT NULL, reason TEXT NOT NULL
      );
      -- Per-activity bookkeeping of an earlier reconciler, which read the whole queue each pass.
      DROP TABLE IF EXISTS seen;
      DROP TABLE IF EXISTS state;
    `);
    this.setState = this.db.prepare(
      "INSERT INTO ledger (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    );
    const state = this.readState();
    const started = this.now();
    if (state.watermark !== undefined && state.clean !== 1) {
      // Writes under way at the crash arrived after the watermark and at most about one heartbeat
      // after the last one written (the heartbeat runs ahead of the I/O of each loop turn).
      const writtenAt = state.writtenAt ?? state.watermark;
      this.record(state.watermark, Math.min(started, writtenAt + 2 * this.heartbeatMs), "crash");
    }
    this.writeState(started, 0);
    this.timer = setInterval(() => this.heartbeat(), this.heartbeatMs);
    this.timer.unref();
  }

  /** A batch that arrived at `receivedAt` is being written to queue and store; pass the token to `end`. */
  begin(receivedAt: number): number {
    const token = this.nextToken++;
    this.inFlight.set(token, receivedAt);
    return token;
  }

  /**
   * The batch's writes are over. `failed`, when one of them failed or timed out (so queue and
   * store may disagree): resolves once both writes stopped, which widens the window to then.
   */
  end(token: number, failed?: Promise<unknown>): void {
    const receivedAt = this.inFlight.get(token);
    if (receivedAt === undefined) return;
    this.inFlight.delete(token);
    if (!failed) return;
    this.record(receivedAt, this.now(), "persist_failed");
    this.unsettled++;
    void failed.finally(() => {
      this.unsettled--;
      if (!this.closed) this.record(receivedAt, this.now(), "persist_failed");
    });
  }

  /** The earliest arrival time of a write still under way, or now: everything before it settled. */
  watermark(): number {
    let min = this.now();
    for (const at of this.inFlight.values()) if (at < min) min = at;
    return min;
  }

  /** Failed writes of this process that have not settled yet: their windows may still widen. */
  get unsettledWrites(): number {
    return this.unsettled;
  }

  /** Records a window (merged with an overlapping or adjacent one of the same kind). */
  record(since: number, until: number, reason: SuspectWindow["reason"]): void {
    this.db.transaction(() => {
      const near = this.db
        .prepare("SELECT id, since, until FROM windows WHERE reason = ? AND since <= ? AND until >= ? LIMIT 1")
        .get(reason, until + this.heartbeatMs, since - this.heartbeatMs) as
        { id: number; since: number; until: number } | undefined;
      if (near)
        this.db
          .prepare("UPDATE windows SET since = ?, until = ? WHERE id = ?")
          .run(Math.min(near.since, since), Math.max(near.until, until), near.id);
      else this.db.prepare("INSERT INTO windows (since, until, reason) VALUES (?, ?, ?)").run(since, until, reason);
    })();
  }

  /** The recorded windows, oldest first. */
  windows(): SuspectWindow[] {
    return this.db.prepare("SELECT id, since, until, reason FROM windows ORDER BY since").all() as SuspectWindow[];
  }

  /** A window's part up to `checkedUntil` was checked: drops it, or what is left of it. */
  checked(window: SuspectWindow, checkedUntil: number): void {
    if (checkedUntil >= window.until) this.db.prepare("DELETE FROM windows WHERE id = ?").run(window.id);
    else this.db.prepare("UPDATE windows SET since = ? WHERE id = ?").run(checkedUntil, window.id);
  }

  /** After the last write settled (the broker drained its requests): marks a clean shutdown. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    try {
      this.writeState(this.watermark(), this.inFlight.size === 0 ? 1 : 0);
    } finally {
      this.db.close();
    }
  }

  private heartbeat(): void {
    try {
      this.writeState(this.watermark(), 0);
    } catch {
      // The next beat tries again; a crash window reaches back to the last one written.
    }
  }

  private readState(): { watermark?: number; writtenAt?: number; clean?: number } {
    const rows = this.db.prepare("SELECT name, value FROM ledger").all() as Array<{ name: string; value: number }>;
    return Object.fromEntries(rows.map((r) => [r.name, r.value]));
  }

  private writeState(watermark: number, clean: 0 | 1): void {
    this.db.transaction(() => {
      this.setState.run("watermark", watermark);
      this.setState.run("writtenAt", this.now());
      this.setState.run("clean", clean);
    })();
  }
}
