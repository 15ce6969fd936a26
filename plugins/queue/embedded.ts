import { EventEmitter } from "node:events";
import { join } from "node:path";
import type { HealthStatus } from "../../core/health";
import type { Statement } from "better-sqlite3";
import { deepFreeze } from "../../core/deep-freeze";
import { GroupWriter } from "../../core/group-writer";
import { openSqlite, SQLITE_MODULE, type SqliteDatabase } from "../../core/sqlite";
import { TransferBuffer } from "../../core/transfer-buffer";
import type {
  ActivityQueue,
  PartitionLag,
  QueueMessage,
  QueueRecord,
  ReplayOptions,
  SubscribeOptions,
  Subscription,
} from "./contract";
import { partitionFor } from "./partitioner";
import { startQueueWriter, type QueueWriterCommand, type QueueWriterRequest, type WriterBatch } from "./writer";

export interface EmbeddedQueueOptions {
  /** Folder of `queue.db`. */
  dataDir: string;
  partitions?: number;
  /** Records older than this are deleted once every group has consumed them (default 7 days). */
  retentionMs?: number;
  /** How often expired records are looked for (ms, default 60,000). */
  retentionIntervalMs?: number;
  /** Batches deleted per request to the writer thread at most (default 10,000; tests). */
  retentionChunk?: number;
  /** Idle poll interval when no publish wakes a consumer (ms). */
  pollIntervalMs?: number;
  /**
   * After a publish wakes an idle consumer, it waits this long to collect a larger batch (ms,
   * default 100): what Kafka's `fetch.max.wait.ms` bounds. A consumer with a backlog reads on at once.
   */
  lingerMs?: number;
}

interface BatchRow {
  base_offset: number;
  ts: number;
  keys: string;
  key_lengths: string;
  vals: string;
  value_lengths: string;
  headers: string | null;
}

/** The records of one publish that go to one partition: written as one row. */
interface PendingBatch {
  topic: string;
  partition: number;
  /** The records as published; emptied once they are encoded for the writer (see `held`). */
  records: QueueRecord[];
  ts: number;
  /** The offset after this batch, assigned when it is sent to the writer. */
  end?: number;
  /** Set when it is sent: the records as the in-memory tail holds them, and their text's length. */
  held?: TailRecord[];
  chars?: number;
}

/**
 * A record in a partition's in-memory tail. One that carries `decoded` is held without its text
 * (`value` is made again from `decoded` if a consumer reads it): consumers in this process use
 * the object, and ~1 KB of text per activity held for a few hundred milliseconds would be copied
 * by every young-generation GC it survives.
 */
interface TailRecord {
  key: string;
  value: string | undefined;
  headers: Record<string, string> | undefined;
  decoded: unknown;
}

/**
 * A message read from the tail: `value` is the record's text, or made from `decoded` when read
 * (an accessor, so a spread copy of the message has no `value`; `JSON.stringify` has, via `toJSON`).
 */
class TailMessage implements QueueMessage {
  readonly key: string;
  readonly headers: Record<string, string> | undefined;
  readonly decoded: unknown;
  private readonly text: string | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: string,
    record: TailRecord,
    readonly timestamp: number,
  ) {
    this.key = record.key;
    this.headers = record.headers;
    this.decoded = record.decoded;
    this.text = record.value;
  }

  get value(): string {
    return this.text ?? JSON.stringify(this.decoded);
  }

  toJSON(): Omit<QueueMessage, "decoded"> {
    const { topic, partition, offset, key, value, headers, timestamp } = this;
    return headers === undefined
      ? { topic, partition, offset, key, value, timestamp }
      : { topic, partition, offset, key, value, headers, timestamp };
  }
}

/** Recently published batches of one partition, contiguous up to its durable end. */
interface Tail {
  entries: Array<{ base: number; records: TailRecord[]; ts: number; bytes: number }>;
  /** Offset after the last entry. */
  end: number;
  bytes: number;
}

/** Bytes of record values kept in memory per partition for consumers reading at the head. */
const TAIL_BYTES = 4 * 1024 * 1024;
/** How long committed consumer offsets may wait in memory before they are written (ms). */
const OFFSET_FLUSH_MS = 200;

/**
 * A record's headers as JSON, remembered per headers object: publishers that share one frozen
 * object between records (the intake does, per tenant and type) have it serialised once.
 */
const headersText = new WeakMap<Record<string, string>, string>();
function headersJson(headers: Record<string, string>): string {
  let text = headersText.get(headers);
  if (text === undefined) {
    text = JSON.stringify(headers);
    if (Object.isFrozen(headers)) headersText.set(headers, text);
  }
  return text;
}

function split(joined: string, lengths: string): string[] {
  const out: string[] = [];
  let at = 0;
  for (const length of lengths.split(",")) {
    const n = Number(length);
    out.push(joined.slice(at, at + n));
    at += n;
  }
  return out;
}

/**
 * The record batches. A rowid table on purpose: a batch row is as large as the batch (hundreds of
 * KB for a batch of 500 activities) and spills to overflow pages. In a WITHOUT ROWID table the
 * row is the B-tree key, and every comparison of a seek (each insert) reads a spilled key whole,
 * overflow pages included. Here the key (topic, partition, base_offset) lives in a small index,
 * rows append at the rowid's right edge, and the large columns come last, so reading the small
 * ones never touches overflow pages.
 */
const BATCHES_TABLE = (name: string): string => `
  CREATE TABLE IF NOT EXISTS ${name} (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, base_offset INTEGER NOT NULL, last_offset INTEGER NOT NULL,
    ts INTEGER NOT NULL, key_lengths TEXT NOT NULL, value_lengths TEXT NOT NULL, headers TEXT,
    keys TEXT NOT NULL, vals TEXT NOT NULL,
    PRIMARY KEY (topic, partition, base_offset)
  )`;

const BATCH_COLUMNS = "topic, partition, base_offset, last_offset, ts, key_lengths, value_lengths, headers, keys, vals";

/** Files written before `batches` became a rowid table are rewritten once, in one transaction. */
function migrateBatches(db: SqliteDatabase): void {
  const sql = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'batches'").pluck().get() as
    string | undefined;
  if (sql === undefined || !/WITHOUT\s+ROWID/i.test(sql)) return;
  db.transaction(() => {
    db.exec(`${BATCHES_TABLE("batches_rowid")};
      INSERT INTO batches_rowid (${BATCH_COLUMNS})
        SELECT ${BATCH_COLUMNS} FROM batches ORDER BY topic, partition, base_offset;
      DROP TABLE batches;
      ALTER TABLE batches_rowid RENAME TO batches;`);
  })();
}

/**
 * The default queue: a partitioned log in SQLite on local disk, stored as record batches (one
 * row per publish and partition, as Kafka's log does), so a publish of 500 records costs a few
 * row writes. Publishes made while a group is being written form the next group; a writer thread
 * (`writer.ts`) commits each group with an fsync, and publishes resolve after it.
 *
 * Consumer offsets live in the same file. They are written by the writer thread too (one writer
 * per file: the event loop never waits for SQLite's write lock), at most every OFFSET_FLUSH_MS and
 * without an fsync of their own: after a process crash a group re-reads what it committed in that
 * last interval, after a power loss a little more, which at-least-once delivery allows. So are
 * retention deletes.
 */
export class EmbeddedQueue implements ActivityQueue {
  readonly type = "embedded";
  private db?: SqliteDatabase;
  /** The writer thread and the group commit in front of it. */
  private writer?: GroupWriter<PendingBatch, PendingBatch[]>;
  /** Where a group's values are encoded for the writer thread. */
  private readonly encodeBuffer = new TransferBuffer();
  /** Next offset to assign, per topic and partition (includes commits whose fsync is under way). */
  private readonly nextOffset = new Map<string, number>();
  /** End of what is durable, per topic and partition: consumers never read past it. */
  private readonly durableEnd = new Map<string, number>();
  /**
   * The durable head of each partition, in memory: consumers keeping up (the usual case) read
   * what was just published from here, not back from SQLite.
   */
  private readonly tails = new Map<string, Tail>();
  /** Consumer offsets committed and not yet written, written together (see commitOffset). */
  private offsetFlushFailures = 0;
  private lastOffsetFlushError: string | undefined;
  private readonly pendingOffsets = new Map<
    string,
    { group: string; topic: string; partition: number; next: number }
  >();
  private offsetFlushTimer?: NodeJS.Timeout;
  /** The offset flush with the writer thread, if any (one at a time). */
  private offsetFlush?: Promise<number>;
  private retentionRunning = false;
  private readonly retentionChunk: number;
  private readonly wakeups = new EventEmitter();
  private readonly partitions: number;
  private readonly subscriptions = new Set<EmbeddedSubscription>();
  private retentionTimer?: NodeJS.Timeout;
  /** Prepared statements by SQL, per connection: consumers run the same few queries constantly. */
  private readonly statements = new WeakMap<SqliteDatabase, Map<string, Statement>>();

  constructor(private readonly options: EmbeddedQueueOptions) {
    this.partitions = options.partitions ?? 8;
    this.retentionChunk = options.retentionChunk ?? 10_000;
    this.wakeups.setMaxListeners(0);
  }

  async start(): Promise<void> {
    if (this.db) return;
    const path = join(this.options.dataDir, "queue.db");
    const db = openSqlite(path);
    migrateBatches(db);
    db.exec(`
      ${BATCHES_TABLE("batches")};
      CREATE TABLE IF NOT EXISTS offsets (
        grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
        PRIMARY KEY (grp, topic, partition)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
    const stored = db.prepare("SELECT value FROM meta WHERE name = 'partitions'").pluck().get() as string | undefined;
    if (stored === undefined) {
      db.prepare("INSERT INTO meta (name, value) VALUES ('partitions', ?)").run(String(this.partitions));
    } else if (Number(stored) !== this.partitions) {
      db.close();
      throw new Error(
        `queue.db was created with ${stored} partitions; changing it to ${this.partitions} would break per-lead order`,
      );
    }
    this.db = db;
    this.reloadOffsets();
    this.writer = this.groupWriter();
    await this.writer.start();
    const retention = this.options.retentionMs ?? 7 * 24 * 3600 * 1000;
    this.retentionTimer = setInterval(() => {
      // A failed run (the writer is down) is repeated by the next interval.
      this.applyRetention(Date.now() - retention).catch(() => undefined);
    }, this.options.retentionIntervalMs ?? 60_000);
    this.retentionTimer.unref();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    // Publishes already made, and offsets already committed, are written before the writer stops.
    await this.writer?.drain();
    await this.flushOffsets().catch(() => undefined);
    await this.writer?.stop();
    this.writer = undefined;
    this.db?.close();
    this.db = undefined;
  }

  async publish(topic: string, records: QueueRecord[]): Promise<void> {
    const writer = this.writer;
    if (!writer) throw new Error("embedded queue is not started");
    const ts = Date.now();
    const byPartition = new Map<number, QueueRecord[]>();
    for (const record of records) {
      const partition = partitionFor(record.key, this.partitions);
      const list = byPartition.get(partition);
      if (list) list.push(record);
      else byPartition.set(partition, [record]);
    }
    return writer.add([...byPartition].map(([partition, list]) => ({ topic, partition, records: list, ts })));
  }

  /**
   * Publishes go through a writer thread, one group at a time. Offsets are assigned when a group
   * is sent, in publish order; they become readable once the writer reports it written.
   */
  private groupWriter(): GroupWriter<PendingBatch, PendingBatch[]> {
    return new GroupWriter<PendingBatch, PendingBatch[]>({
      name: "the embedded queue's writer",
      spawn: () =>
        startQueueWriter({ sqlite: SQLITE_MODULE, path: this.db!.name, retentionChunk: this.retentionChunk }),
      send: (batches) => {
        const out: WriterBatch[] = [];
        let chars = 0;
        for (const batch of batches) for (const r of batch.records) chars += r.value.length;
        const bytes = this.encodeBuffer;
        bytes.begin(chars);
        for (const batch of batches) {
          const slot = `${batch.topic}\u0000${batch.partition}`;
          const base = this.nextOffset.get(slot) ?? 0;
          const records = batch.records;
          batch.end = base + records.length;
          this.nextOffset.set(slot, batch.end);
          const start = bytes.length;
          let valueLengths = "";
          let keys = "";
          let keyLengths = "";
          let headers = "";
          let anyHeaders = false;
          const held: TailRecord[] = [];
          let heldChars = 0;
          for (let i = 0; i < records.length; i++) {
            const r = records[i]!;
            const sep = i === 0 ? "" : ",";
            bytes.text(r.value);
            valueLengths += sep + String(r.value.length);
            keys += r.key;
            keyLengths += sep + String(r.key.length);
            anyHeaders ||= r.headers !== undefined;
            headers += sep + (r.headers === undefined ? "null" : headersJson(r.headers));
            heldChars += r.value.length;
            held.push({
              key: r.key,
              value: r.decoded === undefined ? r.value : undefined,
              headers: r.headers,
              decoded: r.decoded,
            });
          }
          // From here on the batch holds no record's text (see TailRecord): the publisher's
          // records die with its request, not with the commit.
          batch.held = held;
          batch.chars = heldChars;
          batch.records = [];
          out.push({
            topic: batch.topic,
            partition: batch.partition,
            base,
            ts: batch.ts,
            count: records.length,
            keys,
            keyLengths,
            values: [start, bytes.length],
            valueLengths,
            headers: anyHeaders ? `[${headers}]` : null,
          });
        }
        const values = bytes.finish();
        const message: QueueWriterCommand = { type: "append", batches: out, values };
        return { message, group: batches, transfer: [values.buffer as ArrayBuffer] };
      },
      onWritten: (batches) => {
        for (const batch of batches) {
          const slot = `${batch.topic}\u0000${batch.partition}`;
          this.remember(slot, batch);
          if (batch.end! > (this.durableEnd.get(slot) ?? 0)) this.durableEnd.set(slot, batch.end!);
          this.wakeups.emit(slot);
        }
      },
      // Rolled back, or the writer died with it: the file says which offsets are taken.
      onLost: () => this.reloadOffsets(),
    });
  }

  /** An `offsets` or `retention` request to the writer thread: the rows it changed, once written. */
  private request(request: QueueWriterRequest): Promise<number> {
    if (!this.writer) return Promise.reject(new Error("embedded queue is not started"));
    return this.writer.request<number>(request);
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.requireOpen();
    const subscription = new EmbeddedSubscription(
      this,
      options,
      this.partitions,
      this.options.pollIntervalMs ?? 250,
      this.options.lingerMs ?? 100,
    );
    this.subscriptions.add(subscription);
    subscription.onStop(() => this.subscriptions.delete(subscription));
    subscription.run();
    return subscription;
  }

  async lag(group: string, topic: string): Promise<PartitionLag[]> {
    const out: PartitionLag[] = [];
    for (let partition = 0; partition < this.partitions; partition++) {
      const committed = this.committedOffset(group, topic, partition);
      const end = this.endOffset(topic, partition);
      out.push({ partition, committed: String(committed), end: String(end), lag: Math.max(0, end - committed) });
    }
    return out;
  }

  async replay(topic: string, options: ReplayOptions): Promise<number> {
    this.requireOpen();
    const maxBatch = Math.max(1, options.maxBatch ?? 500);
    const until = options.until ?? Infinity;
    let delivered = 0;
    for (let partition = 0; partition < this.partitions; partition++) {
      const end = this.endOffset(topic, partition);
      let from = this.offsetAt(topic, partition, options.since, end);
      while (from < end) {
        const read = this.read(topic, partition, from, maxBatch);
        const batch: QueueMessage[] = [];
        let done = read.length === 0;
        for (const message of read) {
          if (Number(message.offset) >= end || message.timestamp >= until) {
            done = true;
            break;
          }
          batch.push(message);
        }
        if (batch.length > 0) {
          await options.handler(batch);
          delivered += batch.length;
          from = Number(batch[batch.length - 1]!.offset) + 1;
        }
        if (done) break;
      }
    }
    return delivered;
  }

  /**
   * The first offset of the first batch accepted at `since` or later (`end` if none): a binary
   * search over the partition's batches, whose timestamps grow with their offsets.
   */
  private offsetAt(topic: string, partition: number, since: number, end: number): number {
    const holding = this.statement(
      `SELECT base_offset, last_offset, ts FROM batches
         WHERE topic = @topic AND partition = @partition AND base_offset <= @offset
         ORDER BY base_offset DESC LIMIT 1`,
    );
    const first = this.statement(
      "SELECT base_offset FROM batches WHERE topic = @topic AND partition = @partition ORDER BY base_offset LIMIT 1",
    )
      .pluck()
      .get({ topic, partition }) as number | undefined;
    let lo = first ?? end;
    let hi = end;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const row = holding.get({ topic, partition, offset: mid }) as
        { base_offset: number; last_offset: number; ts: number } | undefined;
      if (row === undefined) break;
      if (row.ts < since) lo = row.last_offset + 1;
      else hi = row.base_offset;
    }
    return Math.min(lo, end);
  }

  async health(): Promise<HealthStatus> {
    if (!this.db) return { ok: false, status: "down", detail: "not started" };
    try {
      this.db.prepare("SELECT 1").get();
      if (this.offsetFlushFailures > 0)
        return {
          ok: true,
          status: "up",
          detail: `${this.offsetFlushFailures} offset flushes retried; last: ${this.lastOffsetFlushError}`,
        };
      return { ok: true, status: "up" };
    } catch (error) {
      return { ok: false, status: "down", detail: String(error) };
    }
  }

  /** @internal */
  committedOffset(group: string, topic: string, partition: number): number {
    const pending = this.pendingOffsets.get(`${group}\u0000${topic}\u0000${partition}`);
    if (pending) return pending.next;
    const offset = this.statement("SELECT offset FROM offsets WHERE grp = ? AND topic = ? AND partition = ?")
      .pluck()
      .get(group, topic, partition) as number | undefined;
    return offset ?? 0;
  }

  /** @internal */
  commitOffset(group: string, topic: string, partition: number, next: number): void {
    // Commits of every group and partition made within OFFSET_FLUSH_MS share one transaction, as
    // Kafka's auto-commit interval does: each group and partition commits after every batch, and
    // under a stream of small publishes that would be a transaction per event-loop turn. Offsets
    // are read from here until written; after a crash at most the last interval's batches are
    // delivered again (at-least-once).
    this.pendingOffsets.set(`${group}\u0000${topic}\u0000${partition}`, { group, topic, partition, next });
    this.scheduleOffsetFlush();
  }

  private scheduleOffsetFlush(): void {
    if (this.offsetFlushTimer || this.offsetFlush || !this.writer) return;
    this.offsetFlushTimer = setTimeout(() => {
      this.flushOffsets().catch((error: unknown) => {
        // The writer is down or could not write them: the offsets stay in memory, where reads
        // find them, and the next interval writes them.
        this.offsetFlushFailures++;
        this.lastOffsetFlushError = String(error);
      });
    }, OFFSET_FLUSH_MS);
    this.offsetFlushTimer.unref();
  }

  /**
   * Has the writer thread write the pending offsets in one transaction. An offset stays pending
   * (and is what reads return) until written, or until a newer commit replaces it.
   */
  private async flushOffsets(): Promise<void> {
    clearTimeout(this.offsetFlushTimer);
    this.offsetFlushTimer = undefined;
    while (this.offsetFlush) await this.offsetFlush.catch(() => undefined);
    if (this.pendingOffsets.size === 0) return;
    const sent = [...this.pendingOffsets];
    const flush = this.request({
      type: "offsets",
      rows: sent.map(([, o]) => [o.group, o.topic, o.partition, o.next]),
    });
    this.offsetFlush = flush;
    try {
      await flush;
      for (const [slot, o] of sent) if (this.pendingOffsets.get(slot) === o) this.pendingOffsets.delete(slot);
    } finally {
      this.offsetFlush = undefined;
      if (this.pendingOffsets.size > 0) this.scheduleOffsetFlush();
    }
  }

  /**
   * Deletes the batches older than `before` that every group has consumed, a chunk per request:
   * publishes are written between the chunks.
   */
  private async applyRetention(before: number): Promise<void> {
    if (this.retentionRunning) return;
    this.retentionRunning = true;
    try {
      while ((await this.request({ type: "retention", before })) === this.retentionChunk && this.writer);
    } finally {
      this.retentionRunning = false;
    }
  }

  /** Appends a durable batch to its partition's tail; a gap (after a failed commit) restarts the tail. */
  private remember(slot: string, batch: PendingBatch): void {
    const records = batch.held!;
    const base = batch.end! - records.length;
    let tail = this.tails.get(slot);
    if (!tail || tail.end !== base) {
      tail = { entries: [], end: base, bytes: 0 };
      this.tails.set(slot, tail);
    }
    for (const r of records) deepFreeze(r.decoded);
    const bytes = batch.chars!;
    tail.entries.push({ base, records, ts: batch.ts, bytes });
    tail.end = batch.end!;
    tail.bytes += bytes;
    while (tail.bytes > TAIL_BYTES && tail.entries.length > 1) tail.bytes -= tail.entries.shift()!.bytes;
  }

  /** Reads from the in-memory tail, or undefined when `from` is older than what it holds. */
  private readTail(topic: string, partition: number, from: number, limit: number): QueueMessage[] | undefined {
    const tail = this.tails.get(`${topic}\u0000${partition}`);
    const entries = tail?.entries;
    if (!entries || entries.length === 0 || from < entries[0]!.base) return undefined;
    const end = Math.min(tail!.end, this.endOffset(topic, partition));
    // Binary search for the entry holding `from`.
    let lo = 0;
    let hi = entries.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (entries[mid]!.base <= from) lo = mid;
      else hi = mid - 1;
    }
    const out: QueueMessage[] = [];
    for (let e = lo; e < entries.length && out.length < limit; e++) {
      const entry = entries[e]!;
      for (let i = Math.max(0, from - entry.base); i < entry.records.length && out.length < limit; i++) {
        const offset = entry.base + i;
        if (offset >= end) return out;
        out.push(new TailMessage(topic, partition, String(offset), entry.records[i]!, entry.ts));
      }
    }
    return out;
  }

  /** @internal Reads up to `limit` messages of a partition from offset `from` on. */
  read(topic: string, partition: number, from: number, limit: number): QueueMessage[] {
    const cached = this.readTail(topic, partition, from, limit);
    if (cached) return cached;
    const rows = this.statement(
      `SELECT base_offset, ts, keys, key_lengths, vals, value_lengths, headers FROM batches
         WHERE topic = @topic AND partition = @partition AND base_offset >= COALESCE(
           (SELECT base_offset FROM batches WHERE topic = @topic AND partition = @partition AND base_offset <= @from
            ORDER BY base_offset DESC LIMIT 1), 0)
         ORDER BY base_offset LIMIT @limit`,
    ).iterate({ topic, partition, from, limit }) as IterableIterator<BatchRow>;
    const out: QueueMessage[] = [];
    const end = this.endOffset(topic, partition);
    // Rows hold whole published batches: stop fetching (and decoding) rows once `limit` is reached.
    for (const row of rows) {
      const keys = split(row.keys, row.key_lengths);
      const values = split(row.vals, row.value_lengths);
      const headers =
        row.headers === null ? undefined : (JSON.parse(row.headers) as Array<Record<string, string> | null>);
      const count = Math.min(keys.length, end - row.base_offset);
      for (let i = Math.max(0, from - row.base_offset); i < count && out.length < limit; i++) {
        const h = headers?.[i];
        out.push({
          topic,
          partition,
          offset: String(row.base_offset + i),
          key: keys[i]!,
          value: values[i]!,
          ...(h ? { headers: h } : {}),
          timestamp: row.ts,
        });
      }
      if (out.length >= limit) break;
    }
    return out;
  }

  /** @internal */
  endOffset(topic: string, partition: number): number {
    return this.durableEnd.get(`${topic}\u0000${partition}`) ?? 0;
  }

  /** @internal */
  onWakeup(topic: string, partition: number, listener: () => void): () => void {
    const event = `${topic}\u0000${partition}`;
    this.wakeups.on(event, listener);
    return () => this.wakeups.off(event, listener);
  }

  private reloadOffsets(): void {
    this.nextOffset.clear();
    this.tails.clear();
    const rows = this.db!.prepare(
      "SELECT topic, partition, MAX(last_offset) AS last FROM batches GROUP BY topic, partition",
    ).all() as Array<{
      topic: string;
      partition: number;
      last: number;
    }>;
    this.durableEnd.clear();
    for (const row of rows) {
      this.nextOffset.set(`${row.topic}\u0000${row.partition}`, row.last + 1);
      this.durableEnd.set(`${row.topic}\u0000${row.partition}`, row.last + 1);
    }
  }

  private statement(sql: string): Statement {
    const db = this.requireOpen();
    let cache = this.statements.get(db);
    if (!cache) this.statements.set(db, (cache = new Map()));
    let statement = cache.get(sql);
    if (!statement) cache.set(sql, (statement = db.prepare(sql)));
    return statement;
  }

  private requireOpen(): SqliteDatabase {
    if (!this.db) throw new Error("embedded queue is not started");
    return this.db;
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
    private readonly lingerMs: number,
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
      let batch: QueueMessage[] = [];
      try {
        if (next < this.queue.endOffset(topic, partition)) batch = this.queue.read(topic, partition, next, maxBatch);
        if (batch.length === 0) {
          await this.idle(topic, partition, this.pollIntervalMs);
          // Woken by a publish: linger a moment so a stream of small publishes is handled in a
          // few larger batches (as Kafka's fetch.max.wait does) instead of one handler call each.
          if (!this.stopped && this.lingerMs > 0) await this.idle(topic, partition, this.lingerMs, false);
          continue;
        }
        await handler(batch);
        failures = 0;
        next = Number(batch[batch.length - 1]!.offset) + 1;
        this.queue.commitOffset(group, topic, partition, next);
      } catch {
        // A failed handler (or read) gets the same records again after a back-off.
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
