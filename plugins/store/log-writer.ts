import { Worker } from "node:worker_threads";
import { groupWriterSource } from "../../core/group-writer";

/**
 * The embedded store's log writer: a `worker_threads` Worker owning the only writing connection
 * to `store-log.db`. It appends one segment row per group commit with synchronous=FULL and acks
 * after the commit (the fsync), so the main thread never blocks in an fsync: it builds the next
 * group while this one syncs. Client-id claims run here too, so the log has a single writer and
 * nobody busy-waits on its lock. Same loading scheme as the indexer (see `indexer.ts`).
 */

export interface LogWriterConfig {
  /** Absolute path of the better-sqlite3 module. */
  sqlite: string;
  logPath: string;
}

/** Main thread to worker. `trimTo`: also delete segments up to this seq (indexed and fsync'd). */
export type LogWriterCommand =
  | { type: "append"; seq: number; lines: string[]; trimTo?: number }
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
const insertSegment = db.prepare("INSERT INTO segments (seq, size, body) VALUES (?, ?, ?)");
const trim = db.prepare("DELETE FROM segments WHERE seq <= ?");
const claimInsert = db.prepare("INSERT OR IGNORE INTO client_ids (tenant_id, client_id, id) VALUES (?, ?, ?)");
const claimSelect = db.prepare("SELECT id FROM client_ids WHERE tenant_id = ? AND client_id = ?").pluck();
const write = db.transaction((m) => {
  // Joined here, off the event loop: a segment's body is one activity's JSON per line.
  insertSegment.run(m.seq, m.lines.length, m.lines.join("\n"));
  if (m.trimTo !== undefined) trim.run(m.trimTo);
});
const claim = db.transaction((m) =>
  m.claims.map(([clientId, proposedId]) => {
    claimInsert.run(m.tenantId, clientId, proposedId);
    return claimSelect.get(m.tenantId, clientId);
  }),
);
function handle(m) {
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
