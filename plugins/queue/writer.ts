import { Worker } from "node:worker_threads";
import { groupWriterSource } from "../../core/group-writer";

/**
 * The embedded queue's writer: a `worker_threads` Worker owning the connection that appends
 * record batches to `queue.db`, with `synchronous=FULL`, behind a `GroupWriter`
 * (`core/group-writer.ts`). The batch text (keys and values joined) is built here too, off the
 * event loop.
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

export type QueueWriterCommand = { type: "append"; batches: WriterBatch[] } | { type: "stop" };

const WORKER_SOURCE = groupWriterSource(String.raw`
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
const write = db.transaction((m) => {
  for (const b of m.batches) {
    insert.run(
      b.topic, b.partition, b.base, b.base + b.keys.length - 1, b.ts,
      b.keys.join(""), lengths(b.keys), b.values.join(""), lengths(b.values),
      b.headers === null ? null : JSON.stringify(b.headers),
    );
  }
});
`);

export function startQueueWriter(config: QueueWriterConfig): Worker {
  return new Worker(WORKER_SOURCE, { eval: true, workerData: config, execArgv: [] });
}
