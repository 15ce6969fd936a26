import type { Activity } from "../../core/activity/model";
import { segmentKeyOf, type SegmentKey } from "./indexer";

/**
 * One activity held in memory until the indexer has written its segment into the indexed table.
 * Its JSON text (reads parse it, so callers never share the memstore's objects) is `json`, or,
 * for segments this process wrote, `len` bytes at byte `pos` of the segment file whose first seq
 * is `file`: the text of a written segment is not kept in memory at all.
 */
export interface MemEntry {
  seq: number;
  tenantId: string;
  id: string;
  leadKey: string;
  type: string;
  occurredAt: number;
  json: string | null;
  file: number | null;
  pos: number;
  len: number;
}

/**
 * Where a written segment's lines are: line `i` is the bytes from `at + starts[i]` to
 * `at + starts[i + 1] - 1` (a newline follows each line but the last) of the segment file whose
 * first seq is `file`. `at` is the record's offset in the file, `starts` relative to the record.
 */
export interface LinePlaces {
  file: number;
  at: number;
  starts: Uint32Array;
}

/** An entry with its map keys, computed once (string keys hash once, then V8 caches the hash). */
interface Held extends MemEntry {
  idKey: string;
  leadSlot: string;
}

/**
 * An array used as a FIFO: push at the back, release from the front, iterate in between. A
 * released slot is cleared at once: until the array is compacted, it would otherwise keep what
 * it held (a whole segment's lines) reachable.
 */
class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head] = undefined;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i]!;
  }
}

interface Segment {
  seq: number;
  /** Every activity of the segment, duplicates included: what backpressure counts. */
  count: number;
  /** The activities' JSON (segments recovered on start), or where the log holds it. */
  lines: readonly string[] | LinePlaces;
  /** Their index fields as the log holds them (`segmentKeys`), or null: parse the lines. */
  keys: string | null;
  /** The entries this segment owns (first-written versions only), once it is indexed. */
  entries?: Held[];
}

const key = (a: string, b: string): string => `${a}\u0000${b}`;

/**
 * The memstore: activities whose segment is durable but not yet in the indexed table, by segment
 * seq. Holds only the first-written version of an id (a later duplicate is ignored, as the
 * indexer's INSERT OR IGNORE will ignore it), indexed by id, by lead and by tenant. Segments are
 * released oldest first when the indexer reports progress, so every per-lead and per-tenant list
 * releases from its front.
 *
 * The indexes are built on the first read after a segment arrives, not when it arrives: most
 * segments of a write-heavy hub are indexed by the store's indexer and released before anyone
 * reads them, and the event loop then never builds entries, keys and map slots for them. A read
 * indexes every segment that came before it, in seq order, so what it sees is what eager
 * indexing would have shown.
 */
export class Memstore {
  private readonly byId = new Map<string, Held>();
  private readonly byLead = new Map<string, Fifo<Held>>();
  private readonly byTenant = new Map<string, Fifo<Held>>();
  private readonly segments = new Fifo<Segment>();
  /** Segments not indexed yet: the newest ones, in seq order. */
  private readonly unindexed = new Fifo<Segment>();
  private activities = 0;

  /** Activities held, duplicates included (the backpressure measure). */
  get size(): number {
    return this.activities;
  }

  /** Segments held. */
  get segmentCount(): number {
    return this.segments.length;
  }

  /**
   * Adds a segment: `lines[i]` is an activity's JSON, or `lines` says where the log holds them;
   * `keys` is the segment's `segmentKeys` (null only for text from a log that predates them).
   */
  add(seq: number, lines: readonly string[] | LinePlaces, keys: string | null): void {
    const count = "starts" in lines ? lines.starts.length - 1 : lines.length;
    if (keys === null && "starts" in lines) throw new Error("memstore: a segment held by place needs its keys");
    const segment: Segment = { seq, count, lines, keys };
    this.segments.push(segment);
    this.unindexed.push(segment);
    this.activities += count;
  }

  /** Drops every segment with seq <= `upto`; returns how many activities were released. */
  releaseUpto(upto: number): number {
    let released = 0;
    for (let segment = this.segments.peek(); segment && segment.seq <= upto; segment = this.segments.peek()) {
      this.segments.shift();
      released += segment.count;
      if (segment.entries === undefined) {
        // Never read: it is the oldest unindexed segment, and nothing points at it.
        if (this.unindexed.shift() !== segment) throw new Error("memstore: segments released out of order");
        continue;
      }
      for (const entry of segment.entries) {
        this.byId.delete(entry.idKey);
        this.shiftFront(this.byLead, entry.leadSlot, entry);
        this.shiftFront(this.byTenant, entry.tenantId, entry);
      }
    }
    this.activities -= released;
    return released;
  }

  get(tenantId: string, id: string): MemEntry | undefined {
    this.indexPending();
    return this.byId.get(key(tenantId, id));
  }

  /** A lead's entries, in write order. */
  forLead(tenantId: string, leadKey: string): Iterable<MemEntry> {
    this.indexPending();
    return this.byLead.get(key(tenantId, leadKey)) ?? [];
  }

  /** A tenant's entries, in write order. */
  forTenant(tenantId: string): Iterable<MemEntry> {
    this.indexPending();
    return this.byTenant.get(tenantId) ?? [];
  }

  private indexPending(): void {
    for (let segment = this.unindexed.shift(); segment; segment = this.unindexed.shift()) this.index(segment);
  }

  private index(segment: Segment): void {
    const fields = segment.keys === null ? null : (JSON.parse(segment.keys) as SegmentKey[]);
    const entries: Held[] = [];
    const { lines } = segment;
    const places = "starts" in lines ? lines : null;
    for (let i = 0; i < segment.count; i++) {
      const json = places === null ? (lines as readonly string[])[i]! : null;
      const [tenantId, id, leadKey, type, occurredAt] = fields?.[i] ?? segmentKeyOf(JSON.parse(json!) as Activity);
      const idKey = key(tenantId, id);
      if (this.byId.has(idKey)) continue; // first write of an id wins
      const entry: Held = {
        seq: segment.seq,
        tenantId,
        id,
        leadKey,
        type,
        occurredAt: Date.parse(occurredAt),
        json,
        file: places === null ? null : places.file,
        pos: places === null ? 0 : places.at + places.starts[i]!,
        len: places === null ? 0 : places.starts[i + 1]! - 1 - places.starts[i]!,
        idKey,
        leadSlot: key(tenantId, leadKey),
      };
      this.byId.set(idKey, entry);
      entries.push(entry);
      push(this.byLead, entry.leadSlot, entry);
      push(this.byTenant, entry.tenantId, entry);
    }
    segment.entries = entries;
  }

  private shiftFront(map: Map<string, Fifo<Held>>, k: string, entry: Held): void {
    const list = map.get(k);
    if (!list || list.peek() !== entry) throw new Error("memstore: segments released out of order");
    list.shift();
    if (list.length === 0) map.delete(k);
  }
}

function push(map: Map<string, Fifo<Held>>, k: string, entry: Held): void {
  let list = map.get(k);
  if (!list) {
    list = new Fifo<Held>();
    map.set(k, list);
  }
  list.push(entry);
}
