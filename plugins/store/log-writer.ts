import { Worker } from "node:worker_threads";

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

/** Worker to main thread. */
export type LogWriterEvent =
  | { type: "ready" }
  | { type: "appended"; seq: number }
  | { type: "claimed"; req: number; ids: string[] }
  | { type: "failed"; seq?: number; req?: number; message: string };

const WORKER_SOURCE = String.raw`"use strict";
const { parentPort, workerData: cfg } = require("node:worker_threads");
const Database = require(cfg.sqlite);

const log = new Database(cfg.logPath);
log.pragma("journal_mode = WAL");
log.pragma("synchronous = FULL");
log.pragma("busy_timeout = 5000");
// The indexer checkpoints the log every second; this is only a safety net if it is down.
log.pragma("wal_autocheckpoint = 50000");
const insertSegment = log.prepare("INSERT INTO segments (seq, size, body) VALUES (?, ?, ?)");
const trim = log.prepare("DELETE FROM segments WHERE seq <= ?");
const claimInsert = log.prepare("INSERT OR IGNORE INTO client_ids (tenant_id, client_id, id) VALUES (?, ?, ?)");
const claimSelect = log.prepare("SELECT id FROM client_ids WHERE tenant_id = ? AND client_id = ?").pluck();
const append = log.transaction((m) => {
  // Joined here, off the event loop: a segment's body is one activity's JSON per line.
  insertSegment.run(m.seq, m.lines.length, m.lines.join("\n"));
  if (m.trimTo !== undefined) trim.run(m.trimTo);
});
const claim = log.transaction((m) =>
  m.claims.map(([clientId, proposedId]) => {
    claimInsert.run(m.tenantId, clientId, proposedId);
    return claimSelect.get(m.tenantId, clientId);
  }),
);

parentPort.on("message", (m) => {
  if (m.type === "append") {
    try {
      append(m);
      parentPort.postMessage({ type: "appended", seq: m.seq });
    } catch (error) {
      parentPort.postMessage({ type: "failed", seq: m.seq, message: String(error) });
    }
  } else if (m.type === "claim") {
    try {
      parentPort.postMessage({ type: "claimed", req: m.req, ids: claim(m) });
    } catch (error) {
      parentPort.postMessage({ type: "failed", req: m.req, message: String(error) });
    }
  } else if (m.type === "stop") {
    log.close();
    process.exit(0);
  }
});
parentPort.postMessage({ type: "ready" });
`;

export function startLogWriter(config: LogWriterConfig): Worker {
  return new Worker(WORKER_SOURCE, { eval: true, workerData: config, execArgv: [] });
}
