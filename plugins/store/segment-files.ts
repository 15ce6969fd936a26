import type { TransferBuffer } from "../../core/transfer-buffer";

import { closeSync, openSync, readSync } from "node:fs";
import { join } from "node:path";

/** Bytes before a record's payload: payload length (u32), CRC-32 (u32), seq (u64). */
const SEGMENT_HEADER = 16;
/** A segment file's name: its first seq in this many digits, then `.seg`. */
const SEGMENT_NAME_DIGITS = 20;

/**
 * The embedded store's log as segment files: append-only files of framed, checksummed records,
 * one record per segment (a group commit), in `store-log/` under the data directory. The log
 * writer appends and fsyncs (`fdatasync`); the indexer reads back what it did not get handed
 * over. The files are also where the activities' bodies stay: `store.db` holds each activity's
 * index fields and the position of its line in these files (`SegmentReader` reads it back), so a
 * body is written to disk once, not again into SQLite's WAL and at each checkpoint into the
 * database file. Nothing deletes the files: they are the system of record's data.
 *
 * Why files and not a SQLite table: a segment is written once and never updated, which is a log,
 * not a B-tree. In a table every segment went through SQLite's WAL and again into the database
 * file at each checkpoint, as overflow pages, and the ~600 KB body was copied into SQLite twice
 * on the way. Under `bench:ingest`'s batches of 500 with all plugins, the log writer thread went
 * from 7.2-7.5 to 3.9 µs of CPU per activity, and the checkpointer thread from 4.0-4.4 to 3.6-3.8.
 *
 * File `<first seq, 20 digits>.seg`; a record is a 16-byte header (payload length u32, CRC-32 of
 * the payload u32, seq u64, little-endian) and the payload (index-fields length u32, or
 * 0xFFFFFFFF for none; the index fields' JSON; the body: one activity JSON per line). A new file
 * starts once the current one holds `segmentFileBytes` (64 MB); it is created, and the folder fsync'd,
 * before its first record is written. Only the tail of the last file can be torn (the writer
 * syncs each record before it acks it, and a file before it rotates): on open it is cut at the
 * last intact record. A damaged record anywhere after the indexed part stops the store from
 * starting; the checksums of records already indexed are not checked again when a body is read.
 *
 * CommonJS source evaluated inside the log writer's and the indexer's workers, like their own
 * bodies (see `indexer.ts`), so both read the one format from the one implementation.
 */
export const SEGMENT_FILES_SOURCE = String.raw`
const segFs = require("node:fs");
const segPath = require("node:path");
const SEGMENT_HEADER = ${SEGMENT_HEADER};
const NO_KEYS = 0xffffffff;
const segCrc32 = require("node:zlib").crc32 || crc32Table();

// zlib.crc32 is native from Node 20.15 / 22.2 on; older runtimes get this table-driven one.
function crc32Table() {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return (buf) => {
    let c = -1;
    for (let i = 0; i < buf.length; i++) c = table[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
    return (c ^ -1) >>> 0;
  };
}

/** The segment files of a folder, oldest first: { first (seq), path }. */
function listSegmentFiles(dir) {
  let names;
  try {
    names = segFs.readdirSync(dir);
  } catch (error) {
    if (error.code === "ENOENT") return [];
    throw error;
  }
  return names
    .filter((n) => /^\d{${SEGMENT_NAME_DIGITS}}\.seg$/.test(n))
    .sort()
    .map((n) => ({ first: Number(n.slice(0, ${SEGMENT_NAME_DIGITS})), path: segPath.join(dir, n) }));
}

/** Bytes a read takes from a file at a time: a read back stops soon after its last segment. */
const READ_BLOCK = 4 * 1024 * 1024;

/**
 * Calls onRecord({ seq, payload, at }) for each intact record of a file from byte startAt on
 * (payload: the record's bytes after its header, a Buffer; at: where the record starts), in
 * order, until it returns false; returns { end, complete }: the byte offset after the last record
 * read, and whether the file held nothing after it. Reads in blocks, so stopping early reads
 * little of a 64 MB file.
 */
function readSegmentFile(path, onRecord, startAt = 0) {
  let fd;
  try {
    fd = segFs.openSync(path, "r");
  } catch (error) {
    // Listed, then gone (removed by hand): nothing to read in it.
    if (error.code === "ENOENT") return { end: 0, complete: true };
    throw error;
  }
  try {
    const size = segFs.fstatSync(fd).size;
    let buf = Buffer.alloc(0);
    let bufAt = startAt;
    let at = startAt;
    // Makes buf hold the file's bytes [at, at + n); false when the file ends before.
    const ensure = (n) => {
      if (at + n <= bufAt + buf.length) return true;
      if (at + n > size) return false;
      const length = Math.min(Math.max(n, READ_BLOCK), size - at);
      buf = Buffer.allocUnsafe(length);
      for (let got = 0; got < length; ) {
        const read = segFs.readSync(fd, buf, got, length - got, at + got);
        if (read === 0) return false;
        got += read;
      }
      bufAt = at;
      return true;
    };
    while (ensure(SEGMENT_HEADER)) {
      const length = buf.readUInt32LE(at - bufAt);
      if (length < 4 || !ensure(SEGMENT_HEADER + length)) break;
      const o = at - bufAt;
      const payload = buf.subarray(o + SEGMENT_HEADER, o + SEGMENT_HEADER + length);
      if (segCrc32(payload) !== buf.readUInt32LE(o + 4)) break;
      const seq = Number(buf.readBigUInt64LE(o + 8));
      const recordAt = at;
      at += SEGMENT_HEADER + length;
      if (onRecord({ seq, payload, at: recordAt }) === false) break;
    }
    return { end: at, complete: at === size };
  } finally {
    segFs.closeSync(fd);
  }
}

/** A record payload's index fields (their JSON, or null in logs from before them) and where its lines start. */
function segmentHead(payload) {
  const keysLength = payload.readUInt32LE(0);
  if (keysLength === NO_KEYS) return { keys: null, bodyAt: 4 };
  return { keys: payload.toString("utf8", 4, 4 + keysLength), bodyAt: 4 + keysLength };
}

/** A record's payload as text: { keys (the index fields' JSON, or null), body (the lines) }. */
function segmentText(payload) {
  const { keys, bodyAt } = segmentHead(payload);
  return { keys, body: payload.toString("utf8", bodyAt) };
}

/**
 * Calls add(segment) for the segments after seq upto, in seq order, until it returns false;
 * segment: { seq, payload, at, file } (file: the first seq of the file holding it, its name).
 * Segments are read from the file holding upto + 1 on; a torn or unsynced tail ends the read.
 * cursor (an object the caller keeps between calls) remembers where the last read stopped, so
 * a read back in chunks continues there instead of reading its file again from the start.
 */
function readSegmentsAfter(dir, upto, add, cursor = {}) {
  const files = listSegmentFiles(dir);
  let from = 0;
  for (let i = 0; i < files.length; i++) if (files[i].first <= upto + 1) from = i;
  let more = true;
  for (let i = from; i < files.length && more; i++) {
    const path = files[i].path;
    // The cursor's record is at most the first one wanted: everything before it is not.
    const startAt = cursor.path === path && cursor.seq <= upto + 1 ? cursor.at : 0;
    readSegmentFile(
      path,
      (segment) => {
        cursor.path = path;
        cursor.seq = segment.seq;
        cursor.at = segment.at;
        if (segment.seq <= upto) return true;
        segment.file = files[i].first;
        more = add(segment) !== false;
        return more;
      },
      startAt,
    );
  }
}

/** The writing side: one per folder, in the log writer's thread. */
class SegmentWriter {
  /** fileBytes: a new file starts once the current one holds this much. */
  constructor(dir, fileBytes) {
    this.dir = dir;
    this.fileBytes = fileBytes;
    // A new folder's entry must survive a power loss too, as each new file's does (rotate).
    if (segFs.mkdirSync(dir, { recursive: true }) !== undefined) syncFolder(segPath.dirname(dir));
    this.files = listSegmentFiles(dir);
    this.fd = null;
    this.size = 0;
  }

  /**
   * Checks every file, cuts a torn tail off the last one, and calls onSegment for each segment
   * after seq loadAfter; returns the highest seq in the log (0 if empty).
   */
  recover(loadAfter, onSegment) {
    let maxSeq = 0;
    this.files.forEach((file, i) => {
      const last = i === this.files.length - 1;
      const next = this.files[i + 1];
      // A file whose successor starts at or below loadAfter + 1 holds nothing to load.
      const skip = !last && next.first <= loadAfter + 1;
      if (skip && !last) return;
      const { end, complete } = readSegmentFile(file.path, (segment) => {
        if (segment.seq > maxSeq) maxSeq = segment.seq;
        if (segment.seq > loadAfter) onSegment(segment);
        return true;
      });
      if (complete) return;
      if (!last) throw new Error("store log file " + file.path + " is damaged at byte " + end);
      const fd = segFs.openSync(file.path, "r+");
      try {
        segFs.ftruncateSync(fd, end);
        segFs.fsyncSync(fd);
      } finally {
        segFs.closeSync(fd);
      }
    });
    if (this.files.length > 0) {
      const last = this.files[this.files.length - 1];
      if (maxSeq === 0) maxSeq = last.first - 1;
      this.fd = segFs.openSync(last.path, "a");
      this.size = segFs.fstatSync(this.fd).size;
    }
    return maxSeq;
  }

  /**
   * Appends one segment given as its index fields (JSON, or null) and its text (the lines joined)
   * and syncs it: the records of an earlier version's table, laid out as encodeSegment lays out a
   * group (segment-files.ts).
   */
  append(seq, keys, body) {
    const head = Buffer.alloc(SEGMENT_HEADER + 4);
    const keyBytes = keys === null ? Buffer.alloc(0) : Buffer.from(keys, "utf8");
    head.writeUInt32LE(keys === null ? NO_KEYS : keyBytes.length, SEGMENT_HEADER);
    this.appendRecord(seq, Buffer.concat([head, keyBytes, Buffer.from(body, "utf8")]));
  }

  /**
   * Appends one record and syncs it; returns once it is on disk, with where it is: { file (the
   * file's first seq), at (the record's byte offset in it) }. record: a Buffer holding the
   * payload after SEGMENT_HEADER bytes left for the header, which is filled in here (payload
   * length, CRC-32, seq).
   */
  appendRecord(seq, record) {
    if (this.fd === null || this.size >= this.fileBytes) this.rotate(seq);
    const at = this.size;
    const total = record.length;
    record.writeUInt32LE(total - SEGMENT_HEADER, 0);
    record.writeUInt32LE(segCrc32(record.subarray(SEGMENT_HEADER)), 4);
    record.writeBigUInt64LE(BigInt(seq), 8);
    try {
      let written = 0;
      while (written < total) written += segFs.writeSync(this.fd, record, written, total - written);
      segFs.fdatasyncSync(this.fd);
    } catch (error) {
      // Reported as not written: nothing of it may stay, or the records after it would be unreadable.
      segFs.ftruncateSync(this.fd, this.size);
      throw error;
    }
    this.size += total;
    return { file: this.files[this.files.length - 1].first, at };
  }

  close() {
    if (this.fd !== null) segFs.closeSync(this.fd);
    this.fd = null;
  }

  rotate(seq) {
    if (this.fd !== null) segFs.closeSync(this.fd);
    const path = segPath.join(this.dir, String(seq).padStart(${SEGMENT_NAME_DIGITS}, "0") + ".seg");
    this.fd = segFs.openSync(path, "a");
    this.size = segFs.fstatSync(this.fd).size;
    this.files.push({ first: seq, path });
    // The new file's name must survive a power loss before anything in it is acknowledged.
    syncFolder(this.dir);
  }
}

function syncFolder(dir) {
  const fd = segFs.openSync(dir, "r");
  try {
    segFs.fsyncSync(fd);
  } finally {
    segFs.closeSync(fd);
  }
}
`;

/** The folder of the segment files, under the store's data directory. */
export const SEGMENT_DIR = "store-log";

/**
 * A group's segment as the log writer appends it (`SegmentWriter.appendRecord`): SEGMENT_HEADER
 * bytes left for the header, then the payload (index fields' length u32, the index fields' JSON,
 * the lines joined by newlines), in a Buffer transferred to the log writer and on to the indexer
 * (`core/transfer-buffer.ts`): neither thread decodes the lines into strings of its own.
 * `starts`, when given (`lines.length + 1` slots), receives each line's byte offset in the
 * record, and one past the end plus one (see `LinePlaces` in `memstore.ts`).
 */
export function encodeSegment(
  keys: string,
  lines: readonly string[],
  out: TransferBuffer,
  starts?: Uint32Array,
): Buffer {
  let chars = keys.length + lines.length;
  for (const line of lines) chars += line.length;
  out.begin(SEGMENT_HEADER + 4 + chars);
  out.skip(SEGMENT_HEADER);
  const keysAt = out.length;
  out.skip(4);
  out.uint32(out.text(keys), keysAt);
  for (let i = 0; i < lines.length; i++) {
    if (i > 0) out.byte(0x0a);
    if (starts !== undefined) starts[i] = out.length;
    out.text(lines[i]!);
  }
  // As if a newline followed the last line too: line i ends one byte before starts[i + 1].
  if (starts !== undefined) starts[lines.length] = out.length + 1;
  return out.finish();
}

/**
 * Reads activities' lines out of the segment files by position (`store.db`'s `body_file`,
 * `body_at`, `body_len`), on the thread that answers the store's reads. Keeps up to `maxOpen`
 * files open, least recently used closed first; the files are never deleted, so an open
 * descriptor stays valid.
 */
export class SegmentReader {
  private readonly fds = new Map<number, number>();
  private scratch = Buffer.allocUnsafe(64 * 1024);

  constructor(
    private readonly dir: string,
    private readonly maxOpen = 64,
  ) {}

  /**
   * The lines at these places (`length` bytes at byte `at` of the file whose first seq is
   * `file`), as text, in the order asked. Lines of one file at most
   * `READ_GAP` bytes apart are read together, one positioned read per run of them (a page of a
   * tenant's list lies in a few runs: its lines were written together): a read costs a system
   * call, more than copying a few KB.
   */
  read(places: ReadonlyArray<{ file: number; at: number; length: number }>): string[] {
    const out = new Array<string>(places.length);
    const order = places.map((_, i) => i);
    order.sort((x, y) => places[x]!.file - places[y]!.file || places[x]!.at - places[y]!.at);
    for (let i = 0; i < order.length;) {
      const first = places[order[i]!]!;
      let end = first.at + first.length;
      let j = i + 1;
      for (; j < order.length; j++) {
        const next = places[order[j]!]!;
        if (next.file !== first.file || next.at - end > READ_GAP || next.at + next.length - first.at > READ_SPAN) break;
        end = Math.max(end, next.at + next.length);
      }
      const bytes = this.span(first.file, first.at, end - first.at);
      for (let k = i; k < j; k++) {
        const place = places[order[k]!]!;
        out[order[k]!] = bytes.toString("utf8", place.at - first.at, place.at - first.at + place.length);
      }
      i = j;
    }
    return out;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  /**
   * The bytes at `at`, in the reader's own buffer (valid until the next read; callers decode
   * them at once): a fresh megabyte per page would be faulted in page by page every time.
   */
  private span(file: number, at: number, length: number): Buffer {
    const fd = this.open(file);
    if (this.scratch.length < length) this.scratch = Buffer.allocUnsafe(Math.max(length, this.scratch.length * 2));
    const bytes = this.scratch.subarray(0, length);
    for (let got = 0; got < length;) {
      const n = readSync(fd, bytes, got, length - got, at + got);
      if (n === 0) throw new Error(`store log file ${segmentFileName(file)} ends before byte ${at + length}`);
      got += n;
    }
    return bytes;
  }

  private open(file: number): number {
    let fd = this.fds.get(file);
    if (fd !== undefined) {
      // Most recently used last.
      this.fds.delete(file);
      this.fds.set(file, fd);
      return fd;
    }
    fd = openSync(join(this.dir, segmentFileName(file)), "r");
    this.fds.set(file, fd);
    if (this.fds.size > this.maxOpen) {
      const [oldest, oldestFd] = this.fds.entries().next().value as [number, number];
      this.fds.delete(oldest);
      closeSync(oldestFd);
    }
    return fd;
  }
}

/** `read` reads lines of one file together when at most this many bytes lie between them... */
const READ_GAP = 16 * 1024;
/** ...and the run spans at most this many bytes. */
const READ_SPAN = 1024 * 1024;

function segmentFileName(first: number): string {
  return `${String(first).padStart(SEGMENT_NAME_DIGITS, "0")}.seg`;
}
