import { EventEmitter } from "node:events";
import { join } from "node:path";
import type { HealthStatus } from "../../core/health";
import { GroupCommit, openSqlite, type SqliteDatabase } from "../../core/sqlite";
import type {
  ActivityQueue,
  PartitionLag,
  QueueMessage,
  QueueRecord,
  SubscribeOptions,
  Subscription,
} from "./contract";
import { partitionFor } from "./partitioner";

export interface EmbeddedQueueOptions {
  /** Folder of `queue.db`. */
  dataDir: string;
  partitions?: number;
  /** Records older than this are deleted once every group has consumed them (default 7 days). */
  retentionMs?: number;
  /** Idle poll interval when no publish wakes a consumer (ms). */
  pollIntervalMs?: number;
}

interface Row {
  partition: number;
  offset: number;
  key: string;
  value: string;
  headers: string | null;
  ts: number;
}

interface Pending {
  topic: string;
  partition: number;
  record: QueueRecord;
  ts: number;
}

/**
 * The default queue: a partitioned log in SQLite on local disk. Publishes are group-committed
 * (one fsync for everything published in one event-loop turn); consumer offsets live in the same
 * database, so a restarted consumer resumes where it committed.
 */
export class EmbeddedQueue implements ActivityQueue {
  readonly type = "embedded";
  private db?: SqliteDatabase;
  private commit?: GroupCommit<Pending>;
  private readonly nextOffset = new Map<string, number>();
  private readonly wakeups = new EventEmitter();
  private readonly partitions: number;
  private readonly subscriptions = new Set<EmbeddedSubscription>();
  private retentionTimer?: NodeJS.Timeout;

  constructor(private readonly options: EmbeddedQueueOptions) {
    this.partitions = options.partitions ?? 8;
    this.wakeups.setMaxListeners(0);
  }

  async start(): Promise<void> {
    if (this.db) return;
    const db = openSqlite(join(this.options.dataDir, "queue.db"));
    db.exec(`
      CREATE TABLE IF NOT EXISTS messages (
        topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
        key TEXT NOT NULL, value TEXT NOT NULL, headers TEXT, ts INTEGER NOT NULL,
        PRIMARY KEY (topic, partition, offset)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS offsets (
        grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
        PRIMARY KEY (grp, topic, partition)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
    const stored = db.prepare("SELECT value FROM meta WHERE name = 'partitions'").get() as
      { value: string } | undefined;
    if (stored === undefined) {
      db.prepare("INSERT INTO meta (name, value) VALUES ('partitions', ?)").run(String(this.partitions));
    } else if (Number(stored.value) !== this.partitions) {
      db.close();
      throw new Error(
        `queue.db was created with ${stored.value} partitions; changing it to ${this.partitions} would break per-lead order`,
      );
    }
    for (const row of db
      .prepare("SELECT topic, partition, MAX(offset) AS last FROM messages GROUP BY topic, partition")
      .all() as Array<{
      topic: string;
      partition: number;
      last: number;
    }>) {
      this.nextOffset.set(`${row.topic}\u0000${row.partition}`, row.last + 1);
    }
    const insert = db.prepare(
      "INSERT INTO messages (topic, partition, offset, key, value, headers, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.commit = new GroupCommit<Pending>(db, (items) => {
      for (const item of items) {
        const slot = `${item.topic}\u0000${item.partition}`;
        const offset = this.nextOffset.get(slot) ?? 0;
        insert.run(
          item.topic,
          item.partition,
          offset,
          item.record.key,
          item.record.value,
          item.record.headers ? JSON.stringify(item.record.headers) : null,
          item.ts,
        );
        this.nextOffset.set(slot, offset + 1);
      }
    });
    this.db = db;
    const retention = this.options.retentionMs ?? 7 * 24 * 3600 * 1000;
    this.retentionTimer = setInterval(() => this.applyRetention(retention), 60_000);
    this.retentionTimer.unref();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.commit?.flush();
    this.db?.close();
    this.db = undefined;
  }

  async publish(topic: string, records: QueueRecord[]): Promise<void> {
    const commit = this.requireOpen().commit;
    const ts = Date.now();
    const items = records.map((record) => ({
      topic,
      partition: partitionFor(record.key, this.partitions),
      record,
      ts,
    }));
    // The offsets a group commit assigns are only known after the commit, so the rollback of
    // `nextOffset` on failure has to come from the database itself.
    try {
      await commit.add(items);
    } catch (error) {
      this.reloadOffsets();
      throw error;
    }
    for (const partition of new Set(items.map((i) => i.partition))) this.wakeups.emit(`${topic}\u0000${partition}`);
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.requireOpen();
    const subscription = new EmbeddedSubscription(this, options, this.partitions, this.options.pollIntervalMs ?? 250);
    this.subscriptions.add(subscription);
    subscription.onStop(() => this.subscriptions.delete(subscription));
    subscription.run();
    return subscription;
  }

  async lag(group: string, topic: string): Promise<PartitionLag[]> {
    const out: PartitionLag[] = [];
    for (let partition = 0; partition < this.partitions; partition++) {
      const committed = this.committedOffset(group, topic, partition);
      const end = this.nextOffset.get(`${topic}\u0000${partition}`) ?? 0;
      out.push({ partition, committed: String(committed), end: String(end), lag: Math.max(0, end - committed) });
    }
    return out;
  }

  async health(): Promise<HealthStatus> {
    if (!this.db) return { ok: false, status: "down", detail: "not started" };
    try {
      this.db.prepare("SELECT 1").get();
      return { ok: true, status: "up" };
    } catch (error) {
      return { ok: false, status: "down", detail: String(error) };
    }
  }

  /** @internal */
  committedOffset(group: string, topic: string, partition: number): number {
    const row = this.requireOpen()
      .db.prepare("SELECT offset FROM offsets WHERE grp = ? AND topic = ? AND partition = ?")
      .get(group, topic, partition) as { offset: number } | undefined;
    return row?.offset ?? 0;
  }

  /** @internal */
  commitOffset(group: string, topic: string, partition: number, next: number): void {
    this.requireOpen()
      .db.prepare(
        "INSERT INTO offsets (grp, topic, partition, offset) VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, partition) DO UPDATE SET offset = excluded.offset",
      )
      .run(group, topic, partition, next);
  }

  /** @internal */
  read(topic: string, partition: number, from: number, limit: number): QueueMessage[] {
    const rows = this.requireOpen()
      .db.prepare(
        "SELECT partition, offset, key, value, headers, ts FROM messages WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?",
      )
      .all(topic, partition, from, limit) as Row[];
    return rows.map((row) => ({
      topic,
      partition: row.partition,
      offset: String(row.offset),
      key: row.key,
      value: row.value,
      ...(row.headers !== null ? { headers: JSON.parse(row.headers) as Record<string, string> } : {}),
      timestamp: row.ts,
    }));
  }

  /** @internal */
  endOffset(topic: string, partition: number): number {
    return this.nextOffset.get(`${topic}\u0000${partition}`) ?? 0;
  }

  /** @internal */
  onWakeup(topic: string, partition: number, listener: () => void): () => void {
    const event = `${topic}\u0000${partition}`;
    this.wakeups.on(event, listener);
    return () => this.wakeups.off(event, listener);
  }

  private reloadOffsets(): void {
    const db = this.requireOpen().db;
    this.nextOffset.clear();
    for (const row of db
      .prepare("SELECT topic, partition, MAX(offset) AS last FROM messages GROUP BY topic, partition")
      .all() as Array<{
      topic: string;
      partition: number;
      last: number;
    }>) {
      this.nextOffset.set(`${row.topic}\u0000${row.partition}`, row.last + 1);
    }
  }

  private applyRetention(retentionMs: number): void {
    if (!this.db) return;
    // Keep anything a group has not consumed yet, whatever its age.
    this.db
      .prepare(
        `DELETE FROM messages WHERE ts < ? AND offset < COALESCE(
           (SELECT MIN(o.offset) FROM offsets o WHERE o.topic = messages.topic AND o.partition = messages.partition), 0)`,
      )
      .run(Date.now() - retentionMs);
  }

  private requireOpen(): { db: SqliteDatabase; commit: GroupCommit<Pending> } {
    if (!this.db || !this.commit) throw new Error("embedded queue is not started");
    return { db: this.db, commit: this.commit };
  }
}

/** One consumer-group member that owns every partition (the embedded queue runs in one process). */
class EmbeddedSubscription implements Subscription {
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private readonly stopListeners: Array<() => void> = [];
  private readonly wakers = new Set<() => void>();

  constructor(
    private readonly queue: EmbeddedQueue,
    private readonly options: SubscribeOptions,
    private readonly partitions: number,
    private readonly pollIntervalMs: number,
  ) {}

  run(): void {
    for (let partition = 0; partition < this.partitions; partition++) this.loops.push(this.loop(partition));
  }

  onStop(listener: () => void): void {
    this.stopListeners.push(listener);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const wake of this.wakers) wake();
    await Promise.all(this.loops);
    for (const listener of this.stopListeners) listener();
  }

  private async loop(partition: number): Promise<void> {
    const { topic, group, handler } = this.options;
    const maxBatch = this.options.maxBatch ?? 500;
    let next = this.queue.committedOffset(group, topic, partition);
    if (next === 0 && this.options.fromBeginning === false) next = this.queue.endOffset(topic, partition);
    let failures = 0;
    while (!this.stopped) {
      const batch = this.queue.read(topic, partition, next, maxBatch);
      if (batch.length === 0) {
        await this.idle(topic, partition, this.pollIntervalMs);
        continue;
      }
      try {
        await handler(batch);
        failures = 0;
        next = Number(batch[batch.length - 1]!.offset) + 1;
        this.queue.commitOffset(group, topic, partition, next);
      } catch {
        failures++;
        await this.idle(topic, partition, Math.min(30_000, 100 * 2 ** Math.min(failures, 9)), false);
      }
    }
  }

  private idle(topic: string, partition: number, ms: number, wakeOnPublish = true): Promise<void> {
    return new Promise((resolve) => {
      let unsubscribe = (): void => undefined;
      const done = (): void => {
        clearTimeout(timer);
        unsubscribe();
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (wakeOnPublish) unsubscribe = this.queue.onWakeup(topic, partition, done);
      this.wakers.add(done);
    });
  }
}
