import { Worker, type MessagePort } from "node:worker_threads";
import { groupWriterSource } from "../../core/group-writer";
import { SEGMENT_FILES_SOURCE } from "./segment-files";

/**
 * The embedded store's log writer: a `worker_threads` Worker that appends one segment per group
 * commit to the segment files (`segment-files.ts`) and acks after the fsync, so the main thread
 * never blocks in an fsync: it builds the next group while this one syncs. It owns the only
 * writing connection to `store-log.db`, which keeps the client-id claims (one writer per file:
 * nobody busy-waits on its lock). Same loading scheme as the indexer (see `indexer.ts`).
 *
 * On start it migrates a `segments` table of earlier versions into segment files, cuts a torn
 * tail off the last file, posts `recovered` for each segment after `loadAfter` (the main thread
 * puts them back into the memstore) and `opened` with the highest seq in the log, then `ready`.
 *
 * Once a segment is committed, the writer also hands it to the indexer over a port of their own
 * (`SegmentHandoff`), so the indexer need not read back from the log what was just written to it.
 */

export interface LogWriterConfig {
  /** Absolute path of the better-sqlite3 module. */
  sqlite: string;
  /** `store-log.db`: client ids (and, in earlier versions, the segments). */
  logPath: string;
  /** The segment files' folder. */
  segmentDir: string;
  /** A new segment file starts once the current one holds this many bytes. */
  segmentFileBytes: number;
  /** Segments after this seq are posted back as `recovered` on start (none: `Infinity`). */
  loadAfter: number;
  /** The store's indexed_upto: segments of an earlier version's table after it are migrated. */
  indexedUpto: number;
}

/**
 * Main thread to worker. `append`: the segment encoded as its record (`encodeSegment`, its
 * ArrayBuffer transferred). `indexer`: the port to hand committed segments to (replaces any
 * earlier one).
 */
export type LogWriterCommand =
  { type: "append"; seq: number; record: Uint8Array } | { type: "indexer"; port: MessagePort } | { type: "stop" };

/**
 * A `GroupWriter.request`: binds client ids to the proposed activity ids unless bound already
 * (one fsync'd transaction); answered with the bound ids, in order.
 */
export type LogWriterClaim = { type: "claim"; tenantId: string; claims: Array<[clientId: string, proposedId: string]> };

/** Worker to main thread: the group protocol of `core/group-writer.ts`, plus what it recovered on start. */
export type LogWriterEvent =
  | { type: "ready" }
  | { type: "recovered"; seq: number; body: string; keys: string | null }
  | { type: "opened"; maxSeq: number }
  /** `result`: where the record went (`SegmentPlace`). */
  | { type: "written"; result: SegmentPlace }
  | { type: "writeFailed"; message: string };

const WORKER_SOURCE = groupWriterSource(String.raw`
${SEGMENT_FILES_SOURCE}
const db = new Database(cfg.logPath);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = FULL");
db.pragma("busy_timeout = 5000");
// The indexer checkpoints the log every second; this is only a safety net if it is down.
db.pragma("wal_autocheckpoint = 50000");
const segments = new SegmentWriter(cfg.segmentDir, cfg.segmentFileBytes);
migrateSegmentTable();
const maxSeq = segments.recover(cfg.loadAfter, (segment) =>
  parentPort.postMessage({ type: "recovered", seq: segment.seq, ...segmentText(segment.payload) }),
);
parentPort.postMessage({ type: "opened", maxSeq });

// Earlier versions kept segments in a table: the un-indexed ones move to a file (synced) first.
function migrateSegmentTable() {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'segments'").get();
  if (table === undefined) return;
  const columns = db.prepare("SELECT name FROM pragma_table_info('segments')").pluck().all();
  const rows = db
    .prepare("SELECT seq, body, " + (columns.includes("keys") ? "keys" : "NULL AS keys") + " FROM segments WHERE seq > ? ORDER BY seq")
    .all(cfg.indexedUpto);
  // A migration cut short by a crash left some of them in files already.
  const migrated = segments.recover(Infinity, () => undefined);
  for (const row of rows) if (row.seq > migrated) segments.append(row.seq, row.keys, row.body);
  segments.close();
  db.exec("DROP TABLE segments");
}
const claimInsert = db.prepare("INSERT OR IGNORE INTO client_ids (tenant_id, client_id, id) VALUES (?, ?, ?)");
const claimSelect = db.prepare("SELECT id FROM client_ids WHERE tenant_id = ? AND client_id = ?").pluck();
/** Where the last record went ({ file, at }): for its handoff, and the ack's result (the memstore reads by it). */
let placed = null;
function write(m) {
  placed = segments.appendRecord(m.seq, Buffer.from(m.record.buffer, m.record.byteOffset, m.record.byteLength));
  return placed;
}
let indexer = null;
// After the ack: the segment is durable, the indexer may apply it. The record's bytes move on to
// the indexer (transferred, not copied); this thread is done with them.
function afterWrite(m) {
  if (indexer !== null)
    indexer.postMessage({ seq: m.seq, record: m.record, file: placed.file, at: placed.at }, [m.record.buffer]);
}
const claim = db.transaction((m) =>
  m.claims.map(([clientId, proposedId]) => {
    claimInsert.run(m.tenantId, clientId, proposedId);
    return claimSelect.get(m.tenantId, clientId);
  }),
);
function handle(m) {
  if (m.type === "indexer") {
    if (indexer !== null) indexer.close();
    indexer = m.port;
    return;
  }
  if (m.type === "claim") return claim(m);
}
`);

/** Where the log writer appended a segment: the file (its first seq) and the record's byte offset in it. */
export interface SegmentPlace {
  file: number;
  at: number;
}

export function startLogWriter(config: LogWriterConfig): Worker {
  return new Worker(WORKER_SOURCE, { eval: true, workerData: config, execArgv: [] });
}
