import { Worker } from "node:worker_threads";

/**
 * The embedded queue's writer: a `worker_threads` Worker owning the connection that appends
 * record batches to `queue.db`, with `synchronous=FULL`. It acks a group after its commit (the
 * fsync), so the event loop never copies record bytes into SQLite or waits for the disk: it
 * builds the next group meanwhile. The batch text (keys and values joined) is built here too.
 */

export interface QueueWriterConfig {
  /** Absolute path of the better-sqlite3 module. */
  sqlite: string;
  path: string;
}

/** One partition's records of a group, at the offsets the main thread assigned. */
export interface WriterBatch {
  topic: string;
  partition: number;
  base: number;
  ts: number;
  keys: string[];
  values: string[];
  /** Per record, or null when no record has headers. */
  headers: Array<Record<string, string> | null> | null;
}

export type QueueWriterCommand = { type: "append"; seq: number; batches: WriterBatch[] } | { type: "stop" };

export type QueueWriterEvent =
  { type: "ready" } | { type: "appended"; seq: number } | { type: "failed"; seq: number; message: string };

const WORKER_SOURCE = String.raw`"use strict";
const { parentPort, workerData: cfg } = require("node:worker_threads");
const Database = require(cfg.sqlite);

const db = new Database(cfg.path, { fileMustExist: true });
db.pragma("journal_mode = WAL");
db.pragma("synchronous = FULL");
db.pragma("busy_timeout = 5000");
// The process's background checkpointer keeps the WAL short; this is the safety net.
db.pragma("wal_autocheckpoint = 20000");
const insert = db.prepare(
  "INSERT INTO batches (topic, partition, base_offset, last_offset, ts, keys, key_lengths, vals, value_lengths, headers) " +
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
);
const lengths = (list) => list.map((s) => s.length).join(",");
const append = db.transaction((batches) => {
  for (const b of batches) {
    insert.run(
      b.topic, b.partition, b.base, b.base + b.keys.length - 1, b.ts,
      b.keys.join(""), lengths(b.keys), b.values.join(""), lengths(b.values),
      b.headers === null ? null : JSON.stringify(b.headers),
    );
  }
});

parentPort.on("message", (m) => {
  if (m.type === "append") {
    try {
      append(m.batches);
      parentPort.postMessage({ type: "appended", seq: m.seq });
    } catch (error) {
      parentPort.postMessage({ type: "failed", seq: m.seq, message: String(error) });
    }
  } else if (m.type === "stop") {
    db.close();
    process.exit(0);
  }
});
parentPort.postMessage({ type: "ready" });
`;

export function startQueueWriter(config: QueueWriterConfig): Worker {
  return new Worker(WORKER_SOURCE, { eval: true, workerData: config, execArgv: [] });
}
