import { Worker, type MessagePort } from "node:worker_threads";
import { leadKeyOf, type Activity } from "../../core/activity/model";
import { BACKGROUND_PRIORITY_SOURCE } from "../../core/background-thread";
import { BULK_WRITES_SOURCE } from "../../core/sqlite-bulk";
import { SEGMENT_FILES_SOURCE } from "./segment-files";

/**
 * The embedded store's indexer: a `worker_threads` Worker that applies the durable segments of
 * the store's log (the segment files, `segment-files.ts`) in seq order into the indexed
 * `activities` table of `store.db`: each activity's index fields and where its line is in the
 * segment files (the body itself stays there).
 *
 * The worker body is a self-contained CommonJS script evaluated with `eval: true` and an empty
 * `execArgv`: a `.ts` worker entry does not load under either `tsx core/main.ts` or
 * `node --import tsx` (ERR_UNKNOWN_FILE_EXTENSION), and the worker needs nothing but
 * better-sqlite3, which it requires by absolute path. Keep it small; the protocol is typed here.
 */

export interface IndexerConfig {
  /** Absolute path of the better-sqlite3 module (`require.resolve("better-sqlite3")`). */
  sqlite: string;
  storePath: string;
  /** `store-log.db` (client ids): the indexer checkpoints its WAL. */
  logPath: string;
  /** The segment files' folder. */
  segmentDir: string;
  /** The highest seq written when the indexer starts: later ones are read back only once handed over. */
  writtenUpto: number;
  /** Activities per indexing transaction (at least one whole segment). */
  chunkActivities: number;
  /** Page cache of the worker's store connection, KiB. */
  cacheKb: number;
  /** How often progress is made durable (one fsync'd commit) and the log's WAL is checkpointed. */
  syncIntervalMs: number;
  /** After a chunk smaller than `chunkActivities`, the pause before the next one starts. */
  lingerMs: number;
  /** Insert each chunk in key order: activities by (tenant, id), lead-index rows by lead (locality). */
  sort: boolean;
  /** The recent tier of the lead index is merged into the main one once it holds this many rows. */
  mergeRows: number;
  paused: boolean;
}

/** Main thread to worker. `segments`: the port the log writer hands committed segments over. */
export type IndexerCommand =
  | { type: "wake" }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "stop" }
  | { type: "segments"; port: MessagePort };

/**
 * Log writer to indexer, once a segment is committed: its record as written (`encodeSegment`),
 * transferred, so the indexer neither reads the segment back nor gets a copy of its bytes, and
 * where it was written (`file`: the segment file's first seq; `at`: the record's byte offset in
 * it). A record read back from a file is applied the same way, from the same bytes.
 */
export interface SegmentHandoff {
  seq: number;
  record: Uint8Array;
  file: number;
  at: number;
}

/**
 * A segment's index fields, as the log writer stores and hands them over: a JSON array with one
 * `[tenantId, id, leadKey, type, occurredAt]` per activity, in the order of the body's lines.
 */
export function segmentKeys(activities: Activity[]): string {
  return JSON.stringify(activities.map(segmentKeyOf));
}

/** An activity's index fields in a segment's `keys`: tenant, id, lead key, type, occurredAt. */
export type SegmentKey = [tenantId: string, id: string, leadKey: string, type: string, occurredAt: string];

export function segmentKeyOf(a: Activity): SegmentKey {
  return [a.tenantId, a.id, leadKeyOf(a), a.type, a.occurredAt];
}

/**
 * Worker to main thread. `indexedUpto`: segments applied (committed; fsync'd about once a second);
 * `handedOver` / `readBack`: segments applied so far from the log writer's handoff / read back
 * from the log (after a restart, or when a handoff was missed).
 */
export type IndexerEvent =
  | { type: "ready" | "progress"; indexedUpto: number; handedOver: number; readBack: number }
  | { type: "paused"; indexedUpto: number }
  /** Found nothing to index: it waits for a `wake` (or its sync tick) before looking again. */
  | { type: "idle"; indexedUpto: number }
  | { type: "error"; message: string };

const WORKER_SOURCE = String.raw`"use strict";
const { parentPort, workerData: cfg } = require("node:worker_threads");
const Database = require(cfg.sqlite);
${BACKGROUND_PRIORITY_SOURCE}
${SEGMENT_FILES_SOURCE}
${BULK_WRITES_SOURCE}

function open(path) {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 5000");
  db.pragma("synchronous = NORMAL");
  return db;
}
// The store connection: NORMAL is enough, the segments are the durable source and progress is
// committed with the rows it covers. The log connection never writes rows; it checkpoints the
// log's WAL so the main thread does not have to.
const store = open(cfg.storePath);
store.pragma("cache_size = -" + cfg.cacheKb);
store.pragma("wal_autocheckpoint = 4000");
const log = open(cfg.logPath);
// The body stays in the segment file: the row says where (file, byte offset, byte length), and
// its body column is empty (rows from before hold the body there). Both tables are written in
// bulks (BULK_WRITES_SOURCE).
const activityRows = bulkWriter(
  store,
  "INSERT OR IGNORE INTO activities (tenant_id, id, lead_key, type, occurred_at, body, body_file, body_at, body_len) VALUES ",
  "(?, ?, ?, ?, ?, '', ?, ?, ?)",
);
const leadRows = bulkWriter(
  store,
  "INSERT OR IGNORE INTO lead_index_recent (tenant_id, lead_key, occurred_at, id, type) VALUES ",
  "(?, ?, ?, ?, ?)",
);
const saveProgress = store.prepare(
  "INSERT INTO indexer_state (name, value) VALUES ('indexed_upto', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
);
// Rows in the lead index's recent tier (see LEAD_INDEX_TABLE in embedded.ts).
let recentRows = store.prepare("SELECT count(*) FROM lead_index_recent").pluck().get();
const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
const leadOrder = (x, y) =>
  cmp(x.tenantId, y.tenantId) || cmp(x.leadKey, y.leadKey) || x.occurredAt - y.occurredAt || cmp(x.id, y.id);
const idOrder = (x, y) => cmp(x.tenantId, y.tenantId) || cmp(x.id, y.id);
// Each table in its own key order: activities by (tenant, id), so a chunk appends at the B-tree's
// right edge and fills whole pages (ids are time-sortable); the lead index by lead, so each of its
// pages is written once per chunk for all its new rows.
const apply = store.transaction((rows, upto) => {
  if (cfg.sort) rows.sort(idOrder);
  const added = [];
  // First write of an id wins: a repeated id adds nothing to the lead index either.
  writeNew(
    activityRows,
    rows.length,
    (i, out) => {
      const r = rows[i];
      out.push(r.tenantId, r.id, r.leadKey, r.type, r.occurredAt, r.file, r.at, r.length);
    },
    (i) => added.push(rows[i]),
  );
  if (cfg.sort) added.sort(leadOrder);
  writeAll(leadRows, added.length, (i, out) => {
    const r = added[i];
    out.push(r.tenantId, r.leadKey, r.occurredAt, r.id, r.type);
  });
  saveProgress.run(upto);
  return added.length;
});
// In key order, so each page of the main tier is written once per merge, for all its new rows.
const merge = store.transaction(() => {
  store.exec("INSERT OR IGNORE INTO lead_index SELECT * FROM lead_index_recent; DELETE FROM lead_index_recent;");
});
function mergeIfFull() {
  if (recentRows < cfg.mergeRows) return;
  merge();
  recentRows = 0;
}
function commit(rows, upto, durable) {
  if (durable) store.pragma("synchronous = FULL");
  try {
    recentRows += apply(rows, upto);
  } finally {
    if (durable) store.pragma("synchronous = NORMAL");
  }
}

let indexedUpto = store.prepare("SELECT value FROM indexer_state WHERE name = 'indexed_upto'").pluck().get() ?? 0;
// What the previous process indexed may not have reached the disk: one fsync'd commit first.
commit([], indexedUpto, true);
let durableUpto = indexedUpto;
let lastSync = Date.now();
let lastLogCheckpoint = Date.now();

/** Segments handed over by the log writer, by seq, until applied; bounded by HANDOFF_MAX_BYTES. */
const handedOff = new Map();
const HANDOFF_MAX_BYTES = 256 * 1024 * 1024;
let handedOffBytes = 0;
let handedOver = 0;
let readBack = 0;
/** Segments up to this seq are written: the log's content at start, then each handoff. */
let writtenUpto = cfg.writtenUpto;
/** Keeps a handed-over record as { seq, payload, at, file } (payload: the bytes after its header), like a read back one. */
function onHandoff(handoff) {
  const seq = handoff.seq;
  if (seq > writtenUpto) writtenUpto = seq;
  const record = handoff.record;
  if (seq <= indexedUpto || handedOffBytes + record.byteLength > HANDOFF_MAX_BYTES) return;
  const payload = Buffer.from(record.buffer, record.byteOffset + SEGMENT_HEADER, record.byteLength - SEGMENT_HEADER);
  handedOff.set(seq, { seq, payload, at: handoff.at, file: handoff.file });
  handedOffBytes += payload.length;
}
let handoffPort = null;
/** Where the last read back stopped (see readSegmentsAfter). */
const readCursor = {};

/** Applies the next chunk of segments: how many there were (0: none new), and whether the chunk was full. */
function indexChunk() {
  // In seq order; a later write of an id in the same chunk stays after the first through the sort
  // (Array.prototype.sort is stable), so INSERT OR IGNORE keeps the first, as across chunks.
  const rows = [];
  let upto = indexedUpto;
  let segments = 0;
  const add = (segment) => {
    const payload = segment.payload;
    // The payload's byte offset in its file: a line's offset in the payload plus this is its place.
    const payloadAt = segment.at + SEGMENT_HEADER;
    const head = segmentHead(payload);
    // Segments written before index fields were stored have none: parse the activities then.
    const keys = head.keys === null ? null : JSON.parse(head.keys);
    let at = head.bodyAt;
    for (let i = 0; at <= payload.length; i++) {
      let end = payload.indexOf(0x0a, at);
      if (end === -1) end = payload.length;
      const lineAt = at;
      at = end + 1;
      let tenantId, id, leadKey, type, occurredAt;
      if (keys !== null) [tenantId, id, leadKey, type, occurredAt] = keys[i];
      else {
        const a = JSON.parse(payload.toString("utf8", lineAt, end));
        tenantId = a.tenantId;
        id = a.id;
        leadKey = a.leadId !== undefined ? a.leadId : "anon:" + (a.anonymousId ?? "");
        type = a.type;
        occurredAt = a.occurredAt;
      }
      rows.push({
        tenantId,
        id,
        leadKey,
        type,
        occurredAt: Date.parse(occurredAt),
        file: segment.file,
        at: payloadAt + lineAt,
        length: end - lineAt,
      });
    }
    upto = segment.seq;
    segments++;
  };
  // What the log writer handed over, in seq order without gaps; then whatever the log holds after.
  for (let next = handedOff.get(upto + 1); next !== undefined; next = handedOff.get(upto + 1)) {
    add(next);
    handedOver++;
    if (rows.length >= cfg.chunkActivities) break;
  }
  // Read back only what is known to be written and was not handed over: a read scans files.
  if (rows.length < cfg.chunkActivities && writtenUpto > upto) {
    readSegmentsAfter(cfg.segmentDir, upto, (segment) => {
      // The log writer may be appending: only segments known to be written (synced) are taken.
      if (segment.seq > writtenUpto) return false;
      add(segment);
      readBack++;
      return rows.length < cfg.chunkActivities;
    }, readCursor);
  }
  for (const [seq, segment] of handedOff) {
    if (seq > upto) continue;
    handedOff.delete(seq);
    handedOffBytes -= segment.payload.length;
  }
  if (segments === 0) return { segments, full: false };
  const now = Date.now();
  const durable = now - lastSync >= cfg.syncIntervalMs;
  commit(rows, upto, durable);
  mergeIfFull();
  indexedUpto = upto;
  if (durable) {
    durableUpto = upto;
    lastSync = now;
  }
  checkpointLog(now);
  parentPort.postMessage({ type: "progress", indexedUpto, handedOver, readBack });
  lastChunkAt = Date.now();
  return { segments, full: rows.length >= cfg.chunkActivities };
}

function checkpointLog(now) {
  if (now - lastLogCheckpoint < cfg.syncIntervalMs) return;
  lastLogCheckpoint = now;
  log.pragma("wal_checkpoint(PASSIVE)");
}

/** When idle: make the last progress durable. */
function tick() {
  const now = Date.now();
  if (durableUpto < indexedUpto && now - lastSync >= cfg.syncIntervalMs) {
    commit([], indexedUpto, true);
    durableUpto = indexedUpto;
    lastSync = now;
    parentPort.postMessage({ type: "progress", indexedUpto, handedOver, readBack });
  }
  checkpointLog(now);
  schedule();
}

let paused = cfg.paused;
let stopping = false;
let scheduled = false;
let lastChunkAt = 0;
/**
 * Runs the next chunk: at once when the last one was full (a backlog), otherwise once
 * lingerMs has passed since it ended, so that segments gather into a bigger chunk.
 */
function schedule(backlog) {
  if (scheduled || paused || stopping) return;
  scheduled = true;
  const wait = backlog ? 0 : lastChunkAt + cfg.lingerMs - Date.now();
  if (wait > 0) setTimeout(run, wait);
  else setImmediate(run);
}
function run() {
  scheduled = false;
  if (paused || stopping) return;
  try {
    const chunk = indexChunk();
    if (chunk.segments > 0) schedule(chunk.full);
    else parentPort.postMessage({ type: "idle", indexedUpto });
  } catch (error) {
    parentPort.postMessage({ type: "error", message: String((error && error.stack) || error) });
    shutdown(1);
  }
}
function shutdown(code) {
  stopping = true;
  clearInterval(timer);
  try {
    log.close();
    store.close();
  } finally {
    process.exit(code);
  }
}
const timer = setInterval(() => {
  try {
    tick();
  } catch (error) {
    parentPort.postMessage({ type: "error", message: String((error && error.stack) || error) });
    shutdown(1);
  }
}, cfg.syncIntervalMs);

// Commands are handled between chunks: a stop lets the current chunk finish.
parentPort.on("message", (m) => {
  if (m.type === "wake") schedule();
  else if (m.type === "pause") {
    paused = true;
    parentPort.postMessage({ type: "paused", indexedUpto });
  } else if (m.type === "resume") {
    paused = false;
    schedule();
  } else if (m.type === "segments") {
    if (handoffPort !== null) handoffPort.close();
    handoffPort = m.port;
    handoffPort.on("message", onHandoff);
  } else if (m.type === "stop") shutdown(0);
});
parentPort.postMessage({ type: "ready", indexedUpto, handedOver, readBack });
schedule();
`;

/** Starts the indexer worker; it posts `ready` once its connections are open. */
export function startIndexer(config: IndexerConfig): Worker {
  return new Worker(WORKER_SOURCE, { eval: true, workerData: config, execArgv: [] });
}
