/**
 * The embedded store: the default system of record, SQLite on local disk, built like an LSM
 * store (HBase's WAL + memstore + flush, with SQLite B-trees as the "store files"). README.md has
 * the full design and the measurements.
 *
 * Why: with one indexed table, every activity cost two random B-tree inserts on the main thread
 * inside the fsync'd group commit (PK ~6-11 µs, lead index (tenant, lead, occurredAt, id) ~25-35
 * µs per row as the index outgrows the cache), and the main thread also sat in the fsync (~2.5-3.5
 * ms per commit on this disk). bench:store, same run: 13.7-19.9 µs of main thread per activity
 * before, 3.8-6.5 after.
 *
 * Write path (`put`): everything put during one event-loop turn becomes ONE record of the
 * append-only segment files (`segment-files.ts`: seq, the activities' JSON lines and their index
 * fields), written and fdatasync'd by the log-writer worker (`log-writer.ts`, behind
 * `core/group-writer.ts`); one segment is in flight while the next group forms. The put resolves
 * after that fsync (durable) and after the activities joined the memstore (readable).
 *
 * Indexer (`indexer.ts`, worker thread, own connections): applies segments in seq order into the
 * indexed `activities` table of `store.db`, INSERT OR IGNORE (first write of an id wins): a row
 * holds the index fields and where the activity's line is in the segment files, which keep the
 * bodies (rows written by earlier versions hold the body itself). Up to
 * 50k activities per transaction, each table's rows in its key order, lingering `indexLingerMs`
 * between small chunks; takes the segments the log writer hands over after each commit and reads
 * back from the log only those it missed; records `indexed_upto` in the same transaction
 * (synchronous=NORMAL: after a crash it redoes work from the segments); fsyncs its progress about
 * once a second and reports it; checkpoints the WAL of `store-log.db`.
 *
 * `store.db` and `store-log.db` (client ids) are two files: SQLite has one writer per database
 * file and a blocked writer busy-waits.
 *
 * Reads (`get`, `leadHistory`, `list`, `existing`) merge the indexed table (one read transaction,
 * so one snapshot) with the memstore: same filters, order, limits and keyset tokens as the SQL; a
 * memstore entry whose id the table holds is dropped (the table's version was written first).
 * The bodies of a page's rows are read from the segment files (`SegmentReader`, positioned
 * reads, the page cache's). Progress releases memstore segments. On start, un-indexed segments
 * are loaded back into the memstore.
 *
 * Backpressure: the memstore is bounded (`maxMemstoreActivities`, default 300k); a `put` that does
 * not fit waits for the indexer up to `backpressureTimeoutMs` (default 5 s), then rejects with
 * UnavailableError (the intake answers 503). `claimClientIds` runs on the log writer too (one
 * writer per file), as one fsync'd transaction.
 */
import { join } from "node:path";
import { MessageChannel, type Worker } from "node:worker_threads";
import type { Activity } from "../../core/activity/model";
import { activityIdFloor } from "../../core/activity/ids";
import { activityJson } from "../../core/activity/serialize";
import { UnavailableError } from "../../core/errors";
import { GroupWriter, stopWorker } from "../../core/group-writer";
import type { HealthStatus } from "../../core/health";
import { openSqlite, SQLITE_MODULE, type SqliteDatabase } from "../../core/sqlite";
import { TransferBuffer } from "../../core/transfer-buffer";
import type { ActivityPage, ActivityQuery, ActivityStore, ClientIdClaim } from "./contract";
import { segmentKeys, startIndexer, type IndexerCommand, type IndexerEvent } from "./indexer";
import {
  startLogWriter,
  type LogWriterClaim,
  type LogWriterCommand,
  type LogWriterEvent,
  type SegmentPlace,
} from "./log-writer";
import { Memstore, type MemEntry } from "./memstore";
import { encodeSegment, SEGMENT_DIR, SegmentReader } from "./segment-files";
import { decodeCursor, encodeCursor, type Cursor } from "./page-token";

export interface EmbeddedStoreOptions {
  /** Folder of `store.db` (indexed), `store-log/` (segment files) and `store-log.db` (client ids). */
  dataDir: string;
  /** Activities appended but not yet indexed that may be held in memory (default 300,000). */
  maxMemstoreActivities?: number;
  /** How long a `put` may wait for room in the memstore before it rejects (default 5,000 ms). */
  backpressureTimeoutMs?: number;
  /** Activities per indexing transaction (default 50,000). */
  indexChunkActivities?: number;
  /** Insert each indexing chunk in key order: activities by id, lead-index rows by lead (default true). */
  indexSorted?: boolean;
  /** The lead index's recent tier is merged into the main one at this many rows (default 500,000). */
  indexMergeRows?: number;
  /** How often the indexer fsyncs its progress and checkpoints the log (default 1,000 ms). */
  indexerSyncIntervalMs?: number;
  /**
   * After a chunk smaller than `indexChunkActivities`, how long the indexer lets segments gather
   * before the next one (default 1,000 ms): a transaction's cost is mostly the lead-index pages it
   * rewrites, so a few big chunks cost far less per activity than many small ones.
   */
  indexLingerMs?: number;
  /** A new segment file starts once the current one holds this many bytes (default 64 MB; tests). */
  segmentFileBytes?: number;
  /** Start with the indexer paused (tests): everything stays in the memstore until resumed. */
  indexerPaused?: boolean;
}

/**
 * A row of a read, from the table or the memstore: its body, or (table rows written since bodies
 * stay in the segment files) where the body is: `file`, `pos`, `len` (see `bodiesOf`).
 */
interface Row {
  body: string;
  at: number;
  id: string;
  file?: number | null;
  pos?: number | null;
  len?: number | null;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** An activity waiting for the next segment, with its JSON text if the caller made it. */
interface Pending {
  activity: Activity;
  json: string | undefined;
}

/**
 * A segment sent to the log writer: once written, the memstore holds its activities by place
 * (`starts`: each line's offset in the record), not their text.
 */
interface Segment {
  seq: number;
  starts: Uint32Array;
  keys: string;
}

interface Blocked extends Waiter {
  items: Pending[];
  timer: NodeJS.Timeout;
}

const byLeadOrder = (x: Row, y: Row): number => y.at - x.at || (x.id < y.id ? 1 : x.id > y.id ? -1 : 0);
const byIdOrder = (x: Row, y: Row): number => (x.id < y.id ? 1 : x.id > y.id ? -1 : 0);

export class EmbeddedStore implements ActivityStore {
  readonly type = "embedded";
  private db?: SqliteDatabase;
  private statements?: ReturnType<EmbeddedStore["prepare"]>;
  /** The log writer thread and the group commit in front of it. */
  private writer?: GroupWriter<Pending, Segment>;
  /** Where the main thread encodes each segment for the log writer. */
  private readonly encodeBuffer = new TransferBuffer();
  private memstore = new Memstore();
  /** Reads bodies out of the segment files. */
  private bodies?: SegmentReader;
  private nextSeq = 1;
  private blocked: Blocked[] = [];
  private indexedUpto = 0;
  /** Segments after this seq the log writer posts back as it starts (see `start`). */
  private loadAfter = Infinity;
  private worker?: Worker;
  private indexerError?: string;
  private respawnTimer?: NodeJS.Timeout;
  private stopping = false;
  private progressWaiters: Array<Waiter & { target: number }> = [];
  private pauseWaiters: Array<() => void> = [];
  /** The running indexer's segment counts: handed over by the log writer, read back from the log. */
  private indexerSegments = { handedOver: 0, readBack: 0 };
  /** False once the indexer reported it found nothing to do, until it is woken. */
  private indexerAwake = true;
  private readonly maxMemstore: number;
  private readonly backpressureTimeoutMs: number;

  constructor(private readonly options: EmbeddedStoreOptions) {
    this.maxMemstore = options.maxMemstoreActivities ?? 300_000;
    this.backpressureTimeoutMs = options.backpressureTimeoutMs ?? 5_000;
  }

  async start(): Promise<void> {
    if (this.db) return;
    // 16 KiB pages: the indexer's inserts cost less than with 4 KiB pages (~20 % with the ~1 KB
    // rows of the versions that kept bodies here).
    const db = openSqlite(join(this.options.dataDir, "store.db"), { pageSize: 16_384 });
    const log = openSqlite(join(this.options.dataDir, "store-log.db"));
    try {
      db.exec(`
        CREATE TABLE IF NOT EXISTS activities (
          tenant_id TEXT NOT NULL, id TEXT NOT NULL, lead_key TEXT NOT NULL, type TEXT NOT NULL,
          occurred_at INTEGER NOT NULL, body TEXT NOT NULL,
          body_file INTEGER, body_at INTEGER, body_len INTEGER,
          PRIMARY KEY (tenant_id, id)
        ) WITHOUT ROWID;
        ${LEAD_INDEX_TABLE("lead_index")};
        ${LEAD_INDEX_TABLE("lead_index_recent")};
        CREATE TABLE IF NOT EXISTS indexer_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      `);
      log.exec(`
        CREATE TABLE IF NOT EXISTS client_ids (
          tenant_id TEXT NOT NULL, client_id TEXT NOT NULL, id TEXT NOT NULL,
          PRIMARY KEY (tenant_id, client_id)
        ) WITHOUT ROWID;
      `);
      migrateClientIds(db, log);
      migrateLeadIndex(db);
      migrateBodyPositions(db);
      this.indexedUpto =
        (db.prepare("SELECT value FROM indexer_state WHERE name = 'indexed_upto'").pluck().get() as
          number | undefined) ?? 0;
      this.memstore = new Memstore();
      this.nextSeq = this.indexedUpto + 1;
      log.close();
      this.db = db;
      this.statements = this.prepare(db);
      this.bodies = new SegmentReader(join(this.options.dataDir, SEGMENT_DIR));
      // The writer opens the segment files and posts back the un-indexed segments (into the
      // memstore) and the highest seq, before it is ready; a respawned writer only the seq.
      this.loadAfter = this.indexedUpto;
      this.writer = this.logWriter();
      await this.writer.start();
      this.loadAfter = Infinity;
      await this.spawnIndexer(this.options.indexerPaused ?? false);
    } catch (error) {
      if (log.open) log.close();
      this.db = undefined;
      this.statements = undefined;
      const writer = this.writer;
      this.writer = undefined;
      await writer?.stop();
      db.close();
      throw error;
    }
  }

  async stop(): Promise<void> {
    if (!this.db) return;
    this.stopping = true;
    for (const b of this.blocked.splice(0)) {
      clearTimeout(b.timer);
      b.reject(new UnavailableError("The store is stopping"));
    }
    // Let accepted puts finish: the segment being committed, then what is pending.
    await this.writer?.drain();
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    await Promise.all([stopWorker(this.worker), this.writer?.stop()]);
    this.worker = undefined;
    this.writer = undefined;
    for (const w of this.progressWaiters.splice(0)) w.reject(new Error("the store stopped"));
    for (const w of this.pauseWaiters.splice(0)) w();
    this.db.close();
    this.db = undefined;
    this.statements = undefined;
    this.bodies?.close();
    this.bodies = undefined;
    this.memstore = new Memstore();
    this.stopping = false;
  }

  claimClientIds(tenantId: string, claims: ClientIdClaim[]): Promise<string[]> {
    this.open();
    const writer = this.writer;
    if (!writer?.current) return Promise.reject(new UnavailableError("The store's log writer is down"));
    if (claims.length === 0) return Promise.resolve([]);
    return writer.request<string[]>({
      type: "claim",
      tenantId,
      claims: claims.map((c): [string, string] => [c.clientId, c.proposedId]),
    } satisfies LogWriterClaim);
  }

  put(activities: Activity[], json?: readonly string[]): Promise<void> {
    if (!this.db || this.stopping) return Promise.reject(new Error("embedded store is not started"));
    if (activities.length === 0) return Promise.resolve();
    const items = activities.map((activity, i): Pending => ({ activity, json: json?.[i] }));
    if (this.blocked.length === 0 && this.hasRoom(items.length)) return this.append(items);
    return new Promise<void>((resolve, reject) => {
      const entry: Blocked = {
        items,
        resolve,
        reject,
        timer: setTimeout(() => {
          const at = this.blocked.indexOf(entry);
          if (at >= 0) this.blocked.splice(at, 1);
          reject(
            new UnavailableError(
              `The store's indexer is behind (${this.memstore.size} activities not indexed); retry later`,
            ),
          );
          this.admitBlocked();
        }, this.backpressureTimeoutMs),
      };
      this.blocked.push(entry);
    });
  }

  async get(tenantId: string, id: string): Promise<Activity | undefined> {
    // The table's version, when there is one, was written first.
    const row = this.open().getRow.get(tenantId, id) as Row | undefined;
    const entry = row === undefined ? this.memstore.get(tenantId, id) : undefined;
    const found = row ?? (entry === undefined ? undefined : memRow(entry));
    return found === undefined ? undefined : (JSON.parse(this.bodiesOf([found])[0]!) as Activity);
  }

  async leadHistory(tenantId: string, leadKey: string, query: ActivityQuery): Promise<ActivityPage> {
    const clauses = ["tenant_id = ?", "lead_key = ?"];
    const args: Array<string | number> = [tenantId, leadKey];
    if (query.since !== undefined) {
      clauses.push("occurred_at >= ?");
      args.push(query.since);
    }
    if (query.until !== undefined) {
      clauses.push("occurred_at < ?");
      args.push(query.until);
    }
    const cursor = query.pageToken === undefined ? undefined : decodeCursor(query.pageToken);
    if (cursor !== undefined) {
      clauses.push("(occurred_at < ? OR (occurred_at = ? AND id < ?))");
      args.push(cursor.occurredAt, cursor.occurredAt, cursor.id);
    }
    const types = typeSet(query);
    const { since, until } = query;
    const matches = (e: MemEntry): boolean =>
      (since === undefined || e.occurredAt >= since) &&
      (until === undefined || e.occurredAt < until) &&
      (cursor === undefined ||
        e.occurredAt < cursor.occurredAt ||
        (e.occurredAt === cursor.occurredAt && e.id < cursor.id)) &&
      (types === undefined || types.has(e.type));
    addTypes(query, clauses, args);
    return this.page(
      tenantId,
      (want) => this.leadIndexPage(tenantId, clauses, args, want),
      query,
      this.memstore.forLead(tenantId, leadKey),
      matches,
      byLeadOrder,
      (last) => ({ occurredAt: last.at, id: last.id }),
    );
  }

  async list(tenantId: string, query: ActivityQuery): Promise<ActivityPage> {
    const clauses = ["tenant_id = ?"];
    const args: Array<string | number> = [tenantId];
    // Ids are time-sortable by arrival, so a receivedAt window is a primary-key range.
    const from = query.since === undefined ? undefined : activityIdFloor(query.since);
    const to = query.until === undefined ? undefined : activityIdFloor(query.until);
    const cursor = query.pageToken === undefined ? undefined : decodeCursor(query.pageToken);
    if (from !== undefined) {
      clauses.push("id >= ?");
      args.push(from);
    }
    if (to !== undefined) {
      clauses.push("id < ?");
      args.push(to);
    }
    if (cursor !== undefined) {
      clauses.push("id < ?");
      args.push(cursor.id);
    }
    const types = typeSet(query);
    const matches = (e: MemEntry): boolean =>
      (from === undefined || e.id >= from) &&
      (to === undefined || e.id < to) &&
      (cursor === undefined || e.id < cursor.id) &&
      (types === undefined || types.has(e.type));
    addTypes(query, clauses, args);
    const { db } = this.open();
    return this.page(
      tenantId,
      (want) =>
        db
          .prepare(
            `SELECT ${BODY_COLUMNS}, occurred_at AS at, id FROM activities WHERE ${clauses.join(" AND ")} ORDER BY id DESC LIMIT ?`,
          )
          .all(...args, want) as Row[],
      query,
      this.memstore.forTenant(tenantId),
      matches,
      byIdOrder,
      (last) => ({ occurredAt: 0, id: last.id }),
    );
  }

  async existing(tenantId: string, ids: string[]): Promise<Set<string>> {
    const { exists } = this.open();
    return new Set(
      ids.filter((id) => this.memstore.get(tenantId, id) !== undefined || exists.get(tenantId, id) !== undefined),
    );
  }

  async health(): Promise<HealthStatus> {
    if (!this.db) return { ok: false, status: "down", detail: "not started" };
    if (!this.writer?.current) return { ok: false, status: "down", detail: "log writer down" };
    const behind = this.memstore.size;
    if (!this.worker) {
      return {
        ok: behind < this.maxMemstore,
        status: "degraded",
        detail: `indexer down (${this.indexerError ?? "restarting"}); ${behind} activities not indexed`,
      };
    }
    if (behind >= this.maxMemstore) {
      return { ok: true, status: "degraded", detail: `indexer behind: ${behind} activities not indexed` };
    }
    return { ok: true, status: "up" };
  }

  /** @internal Resolves once everything put so far is in the indexed table (tests, benchmarks). */
  whenIndexed(): Promise<void> {
    this.open();
    // The segment being committed and the group pending behind it count too.
    const target = this.nextSeq - 1 + (this.writer?.groupsAhead ?? 0);
    if (this.indexedUpto >= target) return Promise.resolve();
    return new Promise((resolve, reject) => this.progressWaiters.push({ target, resolve, reject }));
  }

  /** @internal Pauses the indexer after its current chunk; puts keep landing in the memstore. */
  pauseIndexer(): Promise<void> {
    this.open();
    if (!this.worker) return Promise.resolve();
    const paused = new Promise<void>((resolve) => this.pauseWaiters.push(resolve));
    this.worker.postMessage({ type: "pause" });
    return paused;
  }

  /** @internal */
  resumeIndexer(): void {
    this.worker?.postMessage({ type: "resume" });
  }

  /** @internal Segments the running indexer applied from the log writer's handoff / read back from the log. */
  get indexerStats(): { handedOver: number; readBack: number } {
    return { ...this.indexerSegments };
  }

  /** @internal Activities held in the memstore (appended, not yet indexed). */
  get unindexed(): number {
    return this.memstore.size;
  }

  private hasRoom(n: number): boolean {
    const used = this.memstore.size + (this.writer?.backlog ?? 0);
    return used === 0 || used + n <= this.maxMemstore;
  }

  private admitBlocked(): void {
    while (this.blocked.length > 0 && this.hasRoom(this.blocked[0]!.items.length)) {
      const b = this.blocked.shift()!;
      clearTimeout(b.timer);
      this.append(b.items).then(b.resolve, b.reject);
    }
  }

  /** Queues activities for the next segment. */
  private append(items: Pending[]): Promise<void> {
    if (!this.writer) return Promise.reject(new Error("embedded store is not started"));
    return this.writer.add(items);
  }

  /**
   * The log writer: what is put during one event-loop turn becomes one segment (one row, one
   * fsync in the writer thread); one segment is in flight at a time, puts arriving meanwhile form
   * the next. A segment's seq is taken when it is sent and counted once it is written.
   */
  private logWriter(): GroupWriter<Pending, Segment> {
    return new GroupWriter<Pending, Segment>({
      name: "the store's log writer",
      spawn: () => {
        const writer = startLogWriter({
          sqlite: SQLITE_MODULE,
          logPath: join(this.options.dataDir, "store-log.db"),
          segmentDir: join(this.options.dataDir, SEGMENT_DIR),
          segmentFileBytes: this.options.segmentFileBytes ?? 64 * 1024 * 1024,
          loadAfter: this.loadAfter,
          indexedUpto: this.indexedUpto,
        });
        if (this.worker) linkLogToIndexer(writer, this.worker);
        return writer;
      },
      send: (items) => {
        const seq = this.nextSeq;
        const lines = items.map((p) => p.json ?? activityJson(p.activity));
        const keys = segmentKeys(items.map((p) => p.activity));
        const starts = new Uint32Array(lines.length + 1);
        const record = encodeSegment(keys, lines, this.encodeBuffer, starts);
        const message: LogWriterCommand = { type: "append", seq, record };
        return { message, group: { seq, starts, keys }, transfer: [record.buffer as ArrayBuffer] };
      },
      onWritten: (segment, result) => {
        this.nextSeq = segment.seq + 1;
        const { file, at } = result as SegmentPlace;
        // Readable before anyone hears it is durable.
        this.memstore.add(segment.seq, { file, at, starts: segment.starts }, segment.keys);
        this.wakeIndexer();
      },
      // A lost segment's seq is free again (it is only counted once written); room freed up.
      onLost: () => this.admitBlocked(),
      onMessage: (event) => {
        const reply = event as LogWriterEvent;
        if (reply.type === "recovered") return this.memstore.add(reply.seq, reply.body.split("\n"), reply.keys);
        // Whether a segment lost with a writer that died was written or not, the log says which seq comes next.
        if (reply.type === "opened") {
          this.nextSeq = Math.max(this.nextSeq, reply.maxSeq + 1, this.indexedUpto + 1);
          return;
        }
      },
    });
  }

  private spawnIndexer(paused: boolean): Promise<void> {
    this.indexerAwake = true; // a new indexer looks for segments as it starts
    const worker = startIndexer({
      sqlite: SQLITE_MODULE,
      storePath: join(this.options.dataDir, "store.db"),
      logPath: join(this.options.dataDir, "store-log.db"),
      segmentDir: join(this.options.dataDir, SEGMENT_DIR),
      writtenUpto: this.nextSeq - 1,
      chunkActivities: this.options.indexChunkActivities ?? 50_000,
      cacheKb: 131_072,
      syncIntervalMs: this.options.indexerSyncIntervalMs ?? 1_000,
      lingerMs: this.options.indexLingerMs ?? 1_000,
      sort: this.options.indexSorted ?? true,
      mergeRows: this.options.indexMergeRows ?? 500_000,
      paused,
    });
    this.worker = worker;
    const writer = this.writer?.current;
    if (writer) linkLogToIndexer(writer, worker);
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on("message", (event: IndexerEvent) => {
        if (event.type === "ready") {
          ready = true;
          this.indexerError = undefined;
          resolve();
        }
        this.onIndexer(event);
      });
      worker.on("error", (error) => {
        this.indexerError = String(error);
        if (!ready) reject(error);
      });
      worker.on("exit", (code) => {
        if (this.worker !== worker) return;
        this.worker = undefined;
        for (const w of this.pauseWaiters.splice(0)) w();
        if (!ready) reject(new Error(`store indexer exited with ${code} before it was ready`));
        else if (!this.stopping && this.db) {
          this.indexerError ??= `exited with ${code}`;
          // Reads and puts go on from the memstore meanwhile; backpressure bounds it.
          this.respawnTimer = setTimeout(() => {
            this.respawnTimer = undefined;
            if (this.db && !this.stopping && !this.worker) this.spawnIndexer(false).catch(() => undefined);
          }, 1_000);
          this.respawnTimer.unref();
        }
      });
    });
  }

  /**
   * Tells the indexer a new segment is durable, unless it is busy: a busy indexer looks for more
   * segments after each chunk by itself. One message per idle period, not one per segment.
   */
  private wakeIndexer(): void {
    if (this.indexerAwake || !this.worker) return;
    this.indexerAwake = true;
    this.worker.postMessage({ type: "wake" });
  }

  private onIndexer(event: IndexerEvent): void {
    switch (event.type) {
      case "ready":
      case "progress":
        this.indexerSegments = { handedOver: event.handedOver, readBack: event.readBack };
        if (event.indexedUpto > this.indexedUpto) {
          this.indexedUpto = event.indexedUpto;
          this.memstore.releaseUpto(event.indexedUpto);
          this.admitBlocked();
          const waiting = this.progressWaiters;
          this.progressWaiters = waiting.filter((w) => w.target > this.indexedUpto);
          for (const w of waiting) if (w.target <= this.indexedUpto) w.resolve();
        }
        break;
      case "paused":
        for (const w of this.pauseWaiters.splice(0)) w();
        break;
      case "idle":
        this.indexerAwake = false;
        // A segment may have become durable after the indexer last looked.
        if (this.nextSeq - 1 > event.indexedUpto) this.wakeIndexer();
        break;
      case "error":
        this.indexerError = event.message;
        break;
    }
  }

  /**
   * One page: the table's best `limit + 1` rows and the memstore's, merged in `order`. All table
   * reads run in one transaction, so the page and the "is it already in the table" checks see one
   * snapshot; the memstore cannot change meanwhile (same thread).
   */
  private page(
    tenantId: string,
    readTable: (want: number) => Row[],
    query: ActivityQuery,
    memEntries: Iterable<MemEntry>,
    matches: (e: MemEntry) => boolean,
    compare: (x: Row, y: Row) => number,
    cursorOf: (last: Row) => Cursor,
  ): Promise<ActivityPage> {
    const { db, exists } = this.open();
    const want = query.limit + 1;
    const rows = db.transaction((): Row[] => {
      const fromTable = readTable(want);
      const candidates: Row[] = [];
      for (const e of memEntries) if (matches(e)) candidates.push(memRow(e));
      if (candidates.length === 0) return fromTable;
      candidates.sort(compare);
      const fromMemstore: Row[] = [];
      for (const c of candidates) {
        if (fromMemstore.length >= want) break;
        // Already in the table (an earlier write of the id, or indexed since): the table's wins.
        if (exists.get(tenantId, c.id) === undefined) fromMemstore.push(c);
      }
      return mergeSorted(fromTable, fromMemstore, compare, want);
    })();
    const items = this.bodiesOf(rows.slice(0, query.limit)).map((body) => JSON.parse(body) as Activity);
    const last = rows[query.limit - 1];
    return Promise.resolve(
      rows.length > query.limit && last !== undefined
        ? { items, nextPageToken: encodeCursor(cursorOf(last)) }
        : { items },
    );
  }

  /**
   * A lead's best `want` rows from the lead index: each tier read in its key order (newest first)
   * and merged, then the bodies by primary key. Runs inside page()'s read transaction.
   */
  private leadIndexPage(tenantId: string, clauses: string[], args: Array<string | number>, want: number): Row[] {
    const { db, getRow } = this.open();
    const tier = (table: string): Row[] =>
      db
        .prepare(
          `SELECT occurred_at AS at, id FROM ${table} WHERE ${clauses.join(" AND ")} ORDER BY occurred_at DESC, id DESC LIMIT ?`,
        )
        .all(...args, want) as Row[];
    const merged = mergeSorted(tier("lead_index"), tier("lead_index_recent"), byLeadOrder, want);
    const out: Row[] = [];
    for (const row of merged) {
      const found = getRow.get(tenantId, row.id) as Row | undefined;
      if (found !== undefined) out.push({ ...found, at: row.at, id: row.id });
    }
    return out;
  }

  /**
   * The rows' bodies, in order: a row's own (memstore, or a table row from before), else read
   * from the segment files, nearby lines together (`SegmentReader.read`).
   */
  private bodiesOf(rows: Row[]): string[] {
    const out = rows.map((r) => r.body);
    const places: Array<{ file: number; at: number; length: number }> = [];
    const slots: number[] = [];
    rows.forEach((r, i) => {
      if (r.file === null || r.file === undefined) return;
      places.push({ file: r.file, at: r.pos!, length: r.len! });
      slots.push(i);
    });
    if (places.length === 0) return out;
    if (!this.bodies) throw new Error("embedded store is not started");
    this.bodies.read(places).forEach((body, k) => (out[slots[k]!] = body));
    return out;
  }

  private prepare(db: SqliteDatabase) {
    return {
      db,
      getRow: db.prepare(`SELECT ${BODY_COLUMNS} FROM activities WHERE tenant_id = ? AND id = ?`),
      exists: db.prepare("SELECT 1 FROM activities WHERE tenant_id = ? AND id = ?").pluck(),
    };
  }

  private open(): NonNullable<EmbeddedStore["statements"]> {
    if (!this.statements) throw new Error("embedded store is not started");
    return this.statements;
  }
}

/** A memstore entry as a row of a read: its text, or where the log holds it. */
function memRow(e: MemEntry): Row {
  return { body: e.json ?? "", at: e.occurredAt, id: e.id, file: e.file, pos: e.pos, len: e.len };
}

/** The columns a read takes for a row's body (see `Row`). */
const BODY_COLUMNS = "body, body_file AS file, body_at AS pos, body_len AS len";

function addTypes(query: ActivityQuery, clauses: string[], args: Array<string | number>): void {
  if (query.types !== undefined && query.types.length > 0) {
    clauses.push(`type IN (${query.types.map(() => "?").join(", ")})`);
    args.push(...query.types);
  }
}

/**
 * The lead index, in two tiers of one layout: the indexer inserts into `lead_index_recent`, small
 * enough to stay in the page cache, and merges it into `lead_index` in key order once it holds
 * `indexMergeRows` rows. Inserted directly into one big B-tree, each chunk of activities touched a
 * page per lead (one insertion point per lead), so the indexer's cost per activity grew with the
 * store: 18 µs per row at the start, 43 µs at 3M rows, measured apart from the hub with 5,000
 * leads; a merge touches those pages once for many rows.
 */
const LEAD_INDEX_TABLE = (name: string): string => `
  CREATE TABLE IF NOT EXISTS ${name} (
    tenant_id TEXT NOT NULL, lead_key TEXT NOT NULL, occurred_at INTEGER NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL,
    PRIMARY KEY (tenant_id, lead_key, occurred_at, id)
  ) WITHOUT ROWID`;

/** Files from before the lead index tables had an index on `activities`: moved over once. */
function migrateLeadIndex(db: SqliteDatabase): void {
  const old = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'activities_by_lead'").get();
  if (!old) return;
  db.transaction(() => {
    db.exec(`INSERT OR IGNORE INTO lead_index (tenant_id, lead_key, occurred_at, id, type)
      SELECT tenant_id, lead_key, occurred_at, id, type FROM activities ORDER BY tenant_id, lead_key, occurred_at, id;
      DROP INDEX activities_by_lead;`);
  })();
}

function typeSet(query: ActivityQuery): Set<string> | undefined {
  return query.types !== undefined && query.types.length > 0 ? new Set(query.types) : undefined;
}

function mergeSorted(a: Row[], b: Row[], compare: (x: Row, y: Row) => number, max: number): Row[] {
  const out: Row[] = [];
  let i = 0;
  let j = 0;
  while (out.length < max && (i < a.length || j < b.length)) {
    if (j >= b.length || (i < a.length && compare(a[i]!, b[j]!) <= 0)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

/**
 * Gives the log writer and the indexer a port of their own, over which committed segments go
 * straight to the indexer; called whenever either of them is (re)started while the other runs.
 */
function linkLogToIndexer(writer: Worker, indexer: Worker): void {
  const { port1, port2 } = new MessageChannel();
  writer.postMessage({ type: "indexer", port: port1 } satisfies LogWriterCommand, [port1]);
  indexer.postMessage({ type: "segments", port: port2 } satisfies IndexerCommand, [port2]);
}

/** Files from before the bodies stayed in the segment files: rows get the position columns, empty. */
function migrateBodyPositions(db: SqliteDatabase): void {
  const columns = db.prepare("SELECT name FROM pragma_table_info('activities')").pluck().all() as string[];
  if (columns.includes("body_file")) return;
  db.transaction(() => {
    for (const column of ["body_file", "body_at", "body_len"])
      db.exec(`ALTER TABLE activities ADD COLUMN ${column} INTEGER`);
  })();
}

/** Client ids used to live in store.db, which only the indexer writes now: move them to the log. */
function migrateClientIds(db: SqliteDatabase, log: SqliteDatabase): void {
  const old = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'client_ids'").get();
  if (old === undefined) return;
  const insert = log.prepare("INSERT OR IGNORE INTO client_ids (tenant_id, client_id, id) VALUES (?, ?, ?)");
  const rows = db.prepare("SELECT tenant_id, client_id, id FROM client_ids").raw().all() as Array<
    [string, string, string]
  >;
  log.transaction(() => {
    for (const row of rows) insert.run(...row);
  })();
  db.exec("DROP TABLE client_ids");
}
