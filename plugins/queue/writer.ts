import { Worker } from "node:worker_threads";
import { groupWriterSource } from "../../core/group-writer";

/**
 * The embedded queue's writer: a `worker_threads` Worker owning the only connection that writes
 * `queue.db`. It appends record batches with `synchronous=FULL`, behind a `GroupWriter`
 * (`core/group-writer.ts`). A group's values arrive as one transferred buffer of UTF-8 bytes
 * (`core/transfer-buffer.ts`) that goes into SQLite as it is, and the keys and headers as the
 * column texts the main thread made, one string each per batch. Consumer
 * offsets and retention deletes are written here as well, between groups: one writer per file,
 * so no connection ever waits for SQLite's write lock, and the event loop never does.
 */

export interface QueueWriterConfig {
  /** Absolute path of the better-sqlite3 module. */
  sqlite: string;
  path: string;
  /** Batches deleted per `retention` request at most; the main thread repeats while it deletes that many. */
  retentionChunk: number;
}

/** One partition's records of a group, at the offsets the main thread assigned. */
export interface WriterBatch {
  topic: string;
  partition: number;
  base: number;
  ts: number;
  /** Records in the batch. */
  count: number;
  /** The keys back to back (`keys`) and their lengths in UTF-16 code units, comma-separated (`key_lengths`). */
  keys: string;
  keyLengths: string;
  /** Where its values are in the group's `values` bytes: [start, end). */
  values: [start: number, end: number];
  /** The values' lengths in UTF-16 code units, comma-separated (`value_lengths`). */
  valueLengths: string;
  /** The `headers` column: a JSON array with each record's headers (or null), or null when no record has any. */
  headers: string | null;
}

/**
 * Main thread to worker: a group (`append`: its batches, and every batch's values back to back as
 * UTF-8, its ArrayBuffer transferred), `stop`, or a `GroupWriter.request` (`QueueWriterRequest`).
 */
export type QueueWriterCommand = { type: "append"; batches: WriterBatch[]; values: Uint8Array } | { type: "stop" };

/**
 * Requests (`GroupWriter.request`), answered with the number of rows changed. `offsets`: consumer
 * offsets to store (`[group, topic, partition, next]`); `retention`: delete batches older than
 * `before` that every group has consumed.
 */
export type QueueWriterRequest =
  | { type: "offsets"; rows: Array<[group: string, topic: string, partition: number, next: number]> }
  | { type: "retention"; before: number };

const WORKER_SOURCE = groupWriterSource(String.raw`
const db = new Database(cfg.path, { fileMustExist: true });
db.pragma("journal_mode = WAL");
db.pragma("synchronous = FULL");
db.pragma("busy_timeout = 5000");
// The process's background checkpointer keeps the WAL short; this is the safety net.
db.pragma("wal_autocheckpoint = 20000");
// vals is bound as the values' UTF-8 bytes and stored as TEXT, as it always was.
const insert = db.prepare(
  "INSERT INTO batches (topic, partition, base_offset, last_offset, ts, keys, key_lengths, vals, value_lengths, headers) " +
    "VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS TEXT), ?, ?)",
);
const write = db.transaction((m) => {
  const values = Buffer.from(m.values.buffer, m.values.byteOffset, m.values.byteLength);
  for (const b of m.batches) {
    insert.run(
      b.topic, b.partition, b.base, b.base + b.count - 1, b.ts,
      b.keys, b.keyLengths, values.subarray(b.values[0], b.values[1]), b.valueLengths, b.headers,
    );
  }
});
const upsertOffset = db.prepare(
  "INSERT INTO offsets (grp, topic, partition, offset) VALUES (?, ?, ?, ?) " +
    "ON CONFLICT (grp, topic, partition) DO UPDATE SET offset = excluded.offset",
);
const storeOffsets = db.transaction((rows) => {
  for (const [group, topic, partition, next] of rows) upsertOffset.run(group, topic, partition, next);
});
// Keeps anything a group has not consumed yet, whatever its age; at most cfg.retentionChunk batches
// a request, so a long backlog of expired batches never holds up the next group for long.
const expire = db.prepare(
  "DELETE FROM batches WHERE rowid IN (SELECT rowid FROM batches WHERE ts < ? AND last_offset < COALESCE(" +
    "(SELECT MIN(o.offset) FROM offsets o WHERE o.topic = batches.topic AND o.partition = batches.partition), 0) LIMIT " + cfg.retentionChunk + ")",
);
function handle(m) {
  if (m.type === "retention") return expire.run(m.before).changes;
  if (m.type !== "offsets") return 0;
  // Not fsync'd on their own: the next group's commit syncs them with it. After a power loss a
  // group may re-read the last batches it consumed, which at-least-once delivery allows.
  db.pragma("synchronous = NORMAL");
  try {
    storeOffsets(m.rows);
  } finally {
    db.pragma("synchronous = FULL");
  }
  return m.rows.length;
}
`);

export function startQueueWriter(config: QueueWriterConfig): Worker {
  return new Worker(WORKER_SOURCE, { eval: true, workerData: config, execArgv: [] });
}
