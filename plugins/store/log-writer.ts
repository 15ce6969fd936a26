import { Worker, type MessagePort } from "node:worker_threads";
import { groupWriterSource } from "../../core/group-writer";

/**
 * The embedded store's log writer: a `worker_threads` Worker owning the only writing connection
 * to `store-log.db`. It appends one segment row per group commit with synchronous=FULL and acks
 * after the commit (the fsync), so the main thread never blocks in an fsync: it builds the next
 * group while this one syncs. Client-id claims run here too, so the log has a single writer and
 * nobody busy-waits on its lock. Same loading scheme as the indexer (see `indexer.ts`).
 *
 * Once a segment is committed, the writer also hands it to the indexer over a port of their own
 * (`SegmentHandoff`), so the indexer need not read back from the log what was just written to it.
 */

export interface LogWriterConfig {
  /** Absolute path of the better-sqlite3 module. */
  sqlite: string;
  logPath: string;
}

/**
 * Main thread to worker. `append`: `lines` are the activities' JSON, `keys` their index fields
 * (`segmentKeys`); `trimTo`: also delete segments up to this seq (indexed and fsync'd).
 * `indexer`: the port to hand committed segments to (replaces any earlier one).
 */
export type LogWriterCommand =
  | { type: "append"; seq: number; lines: string[]; keys: string; trimTo?: number }
  | { type: "indexer"; port: MessagePort }
  | { type: "claim"; req: number; tenantId: string; claims: Array<[clientId: string, proposedId: string]> }
  | { type: "stop" };

/** Worker to main thread: the group protocol of `core/group-writer.ts`, plus claim replies. */
export type LogWriterEvent =
  | { type: "ready" }
  | { type: "written" }
  | { type: "writeFailed"; message: string }
  | { type: "claimed"; req: number; ids: string[] }
  | { type: "claimFailed"; req: number; message: string };

const WORKER_SOURCE = groupWriterSource(String.raw`
const db = new Database(cfg.logPath);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = FULL");
db.pragma("busy_timeout = 5000");
// The indexer checkpoints the log every second; this is only a safety net if it is down.
db.pragma("wal_autocheckpoint = 50000");
const insertSegment = db.prepare("INSERT INTO segments (seq, size, body, keys) VALUES (?, ?, ?, ?)");
const trim = db.prepare("DELETE FROM segments WHERE seq <= ?");
const claimInsert = db.prepare("INSERT OR IGNORE INTO client_ids (tenant_id, client_id, id) VALUES (?, ?, ?)");
const claimSelect = db.prepare("SELECT id FROM client_ids WHERE tenant_id = ? AND client_id = ?").pluck();
const append = db.transaction((m) => {
  insertSegment.run(m.seq, m.lines.length, m.body, m.keys);
  if (m.trimTo !== undefined) trim.run(m.trimTo);
});
function write(m) {
  // Joined here, off the event loop: a segment's body is one activity's JSON per line.
  m.body = m.lines.join("\n");
  append(m);
}
let indexer = null;
// After the ack: the segment is durable, the indexer may apply it.
function afterWrite(m) {
  if (indexer !== null) indexer.postMessage({ seq: m.seq, body: m.body, keys: m.keys });
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
  if (m.type !== "claim") return;
  try {
    parentPort.postMessage({ type: "claimed", req: m.req, ids: claim(m) });
  } catch (error) {
    parentPort.postMessage({ type: "claimFailed", req: m.req, message: String(error) });
  }
}
`);

export function startLogWriter(config: LogWriterConfig): Worker {
  return new Worker(WORKER_SOURCE, { eval: true, workerData: config, execArgv: [] });
}
