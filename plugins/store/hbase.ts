/**
 * The HBase store: the production system of record, spoken to through HBase's REST gateway
 * (JSON: row keys, columns and values base64 in a CellSet). See README.md, section "HBase", for
 * the table layout, the row keys, salting, and how to read an activity with curl.
 *
 * Tables (prefix configurable, `tablePrefix`; one column family `a`, VERSIONS=1, GZ by default):
 *
 *   <prefix>activities    salt(tenant,id) | tenant \0 | inv(id)                       by id, by arrival
 *   <prefix>lead_history  salt(tenant,lead) | tenant \0 | lead \0 | rev(occurredAt) | inv(id)
 *   <prefix>client_ids    salt(tenant,clientId) | tenant \0 | clientId               first writer wins
 *
 * `salt` is two lowercase hex digits (FNV-1a of the key's identity, modulo `saltBuckets`), so one
 * tenant's writes spread over every bucket (region) instead of hammering one. `inv(id)` maps each
 * ULID character c to the character 31 - c, so ascending keys are descending ids (newest arrival
 * first); `rev(occurredAt)` is 8.64e15 - occurredAt as 17 decimal digits (newest first). Strings
 * inside keys are UTF-8 with \0 and \1 escaped (\1\1, \1\2), so `\0` ends a component unambiguously
 * and one tenant's prefix never matches another's. Every key is valid UTF-8 with ASCII fixed parts,
 * which REST's query parameters (`startrow`, `row`) need.
 *
 * Columns: `a:j` the activity's JSON (`activityJson`, schema version inside) in `activities`; `a:t`
 * its type (for a server-side SingleColumnValueFilter) in `activities` and `lead_history`, whose rows
 * are index entries (the key holds lead, occurredAt and id): a lead's page is one scan plus one
 * multiget of its ids on `activities`; `a:i` the bound activity id in `client_ids`.
 *
 * Writes: `put` encodes its rows as protobuf CellSets and hands them to one `PutBatcher` per table
 * (group commit: at most `maxPutsInFlight` multi-row PUTs per table, callers arriving meanwhile
 * are sent together in the next one); a caller resolves only when its own rows' PUTs succeeded.
 *
 * Reads are stateless REST scans (`GET /<table>/*?startrow=&endrow=&limit=`, one round trip, no
 * server-side scanner to expire or leak); a page token is the keyset cursor of the last item
 * (`page-token.ts`), from which the next page's start row is rebuilt. `list` scans every salt bucket
 * of the tenant in parallel (`limit + 1` rows each) and merges them newest first.
 *
 * Why a thin node:http client (keep-alive agent) rather than the `hbase` npm package (0.6), or
 * `fetch` (which streams a Buffer body through a ReadableStream: more CPU per request): that package has no types,
 * encodes keys as UTF-8 strings, has neither check-and-put (`?check=put`) nor stateless scans, and
 * no timeout unless asked; here every request has a deadline (`timeoutMs`), is retried only because
 * every operation of this store is idempotent, and rejects with `UnavailableError` (intake: 503).
 */
import http from "node:http";
import https from "node:https";
import { activityIdFloor, activityIdTime, isActivityId } from "../../core/activity/ids";
import { leadKeyOf, type Activity } from "../../core/activity/model";
import { activityJson } from "../../core/activity/serialize";
import { ConfigError, HubError, UnavailableError, ValidationError, type FieldError } from "../../core/errors";
import type { HealthStatus } from "../../core/health";
import type { ActivityPage, ActivityQuery, ActivityStore, ClientIdClaim } from "./contract";
import { decodeCursor, encodeCursor } from "./page-token";

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

export const HBASE_COMPRESSIONS = ["NONE", "GZ", "SNAPPY", "LZ4", "ZSTD"] as const;
export type HBaseCompression = (typeof HBASE_COMPRESSIONS)[number];

export interface HBaseStoreOptions {
  /** HBase REST gateway, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Prefix of the three table names; `ns:` in front puts them in a namespace (created if absent). */
  tablePrefix: string;
  /** Salt buckets (1-256); fixed once the tables exist (recorded on them, checked at start). */
  saltBuckets: number;
  /** Deadline of one store operation against REST, retries included (ms). */
  timeoutMs: number;
  /** Column family compression at table creation (SNAPPY/LZ4/ZSTD need native codecs on the servers). */
  compression: HBaseCompression;
  /** Rows per multi-row PUT request (concurrent `put` calls are coalesced up to this many). */
  maxRowsPerRequest: number;
  /** Multi-row PUTs in flight per table; further `put` calls wait and are sent together. */
  maxPutsInFlight: number;
}

export const HBASE_STORE_DEFAULTS: Omit<HBaseStoreOptions, "url"> = {
  tablePrefix: "hub_",
  saltBuckets: 16,
  timeoutMs: 5_000,
  compression: "GZ",
  maxRowsPerRequest: 1_000,
  maxPutsInFlight: 2,
};

/** Turns registry options into typed options, failing with field-level errors (`store.options.*`). */
export function hbaseStoreOptions(raw: Record<string, unknown>): HBaseStoreOptions {
  const errors: FieldError[] = [];
  const fail = (name: string, message: string): void => {
    errors.push({ field: `store.options.${name}`, code: "invalid_option", message });
  };
  const known = new Set([
    "url",
    "tablePrefix",
    "saltBuckets",
    "timeoutMs",
    "compression",
    "maxRowsPerRequest",
    "maxPutsInFlight",
  ]);
  for (const name of Object.keys(raw)) if (!known.has(name)) fail(name, "is not an option of the hbase store");

  let url = "";
  if (typeof raw.url !== "string") fail("url", "is required: the HBase REST URL, e.g. http://127.0.0.1:8080");
  else {
    try {
      const parsed = new URL(raw.url);
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") fail("url", "must be an http(s) URL");
      url = raw.url.replace(/\/+$/, "");
    } catch {
      fail("url", "must be an http(s) URL");
    }
  }
  const tablePrefix = raw.tablePrefix ?? HBASE_STORE_DEFAULTS.tablePrefix;
  if (typeof tablePrefix !== "string" || !/^([A-Za-z0-9_]+:)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$|^$/.test(tablePrefix))
    fail("tablePrefix", "must be letters, digits, _ . - (optionally after a namespace `ns:`)");
  const integer = (name: string, def: number, min: number, max: number): number => {
    const value = raw[name] ?? def;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      fail(name, `must be an integer from ${min} to ${max}`);
      return def;
    }
    return value;
  };
  const saltBuckets = integer("saltBuckets", HBASE_STORE_DEFAULTS.saltBuckets, 1, 256);
  const timeoutMs = integer("timeoutMs", HBASE_STORE_DEFAULTS.timeoutMs, 100, 120_000);
  const maxRowsPerRequest = integer("maxRowsPerRequest", HBASE_STORE_DEFAULTS.maxRowsPerRequest, 1, 10_000);
  const maxPutsInFlight = integer("maxPutsInFlight", HBASE_STORE_DEFAULTS.maxPutsInFlight, 1, 64);
  const compression = raw.compression ?? HBASE_STORE_DEFAULTS.compression;
  if (typeof compression !== "string" || !(HBASE_COMPRESSIONS as readonly string[]).includes(compression))
    fail("compression", `must be one of ${HBASE_COMPRESSIONS.join(", ")}`);

  if (errors.length > 0) throw new ConfigError("Invalid hbase store options", errors);
  return {
    url,
    tablePrefix: tablePrefix as string,
    saltBuckets,
    timeoutMs,
    compression: compression as HBaseCompression,
    maxRowsPerRequest,
    maxPutsInFlight,
  };
}

// ---------------------------------------------------------------------------------------------
// Row keys
// ---------------------------------------------------------------------------------------------

const FAMILY = "a";
const COL_JSON = "a:j";
const COL_TYPE = "a:t";
const COL_ID = "a:i";
const SALT_ATTRIBUTE = "HUB_SALT_BUCKETS";

const ULID = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const INVERT = new Map<string, string>([...ULID].map((c, i) => [c, ULID[31 - i]!]));
/** Larger than any `Date` in ms (8.64e15), so `REV_BASE - occurredAt` is never negative. */
const REV_BASE = 8_640_000_000_000_000n;

/** `inv(id)`: order-reversing, its own inverse. */
export function invertId(id: string): string {
  let out = "";
  for (const c of id) out += INVERT.get(c) ?? c;
  return out;
}

/** `rev(occurredAt)`: 17 digits, larger for older instants. */
export function reverseTime(ms: number): string {
  return (REV_BASE - BigInt(ms)).toString().padStart(17, "0");
}

/** A string as a key component: UTF-8 with \0 → \1\1 and \1 → \1\2, then the \0 terminator. */
function component(value: string): Buffer {
  const bytes = Buffer.from(value, "utf8");
  if (!bytes.includes(0) && !bytes.includes(1)) return Buffer.concat([bytes, ZERO]);
  const out: number[] = [];
  for (const b of bytes) {
    if (b === 0) out.push(1, 1);
    else if (b === 1) out.push(1, 2);
    else out.push(b);
  }
  out.push(0);
  return Buffer.from(out);
}
const ZERO = Buffer.from([0]);

/** FNV-1a over the parts (each followed by \0), modulo the buckets, as two hex digits. */
export function saltOf(buckets: number, ...parts: string[]): string {
  let h = 0x811c9dc5;
  for (const part of parts) {
    for (const b of Buffer.from(part, "utf8")) h = Math.imul(h ^ b, 0x01000193);
    h = Math.imul(h, 0x01000193);
  }
  return ((h >>> 0) % buckets).toString(16).padStart(2, "0");
}

/** The row key after its last byte: the first key of the range of keys that start with it, exclusive end of that range. */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.alloc(0);
}

/** The smallest key greater than `key` (start row that skips exactly `key`). */
function after(key: Buffer): Buffer {
  return Buffer.concat([key, ZERO]);
}

function maxBuffer(a: Buffer, b: Buffer): Buffer {
  return Buffer.compare(a, b) >= 0 ? a : b;
}
function minBuffer(a: Buffer, b: Buffer): Buffer {
  return Buffer.compare(a, b) <= 0 ? a : b;
}

export class HBaseKeys {
  constructor(readonly buckets: number) {}

  tenantBucket(salt: string, tenantId: string): Buffer {
    return Buffer.concat([Buffer.from(salt, "ascii"), component(tenantId)]);
  }

  activity(tenantId: string, id: string): Buffer {
    return Buffer.concat([this.tenantBucket(saltOf(this.buckets, tenantId, id), tenantId), Buffer.from(invertId(id))]);
  }

  lead(tenantId: string, leadKey: string): Buffer {
    return Buffer.concat([this.tenantBucket(saltOf(this.buckets, tenantId, leadKey), tenantId), component(leadKey)]);
  }

  leadEntry(tenantId: string, leadKey: string, occurredAt: number, id: string): Buffer {
    return Buffer.concat([this.lead(tenantId, leadKey), Buffer.from(reverseTime(occurredAt) + invertId(id))]);
  }

  clientId(tenantId: string, clientId: string): Buffer {
    return Buffer.concat([this.tenantBucket(saltOf(this.buckets, tenantId, clientId), tenantId), component(clientId)]);
  }

  salts(): string[] {
    return Array.from({ length: this.buckets }, (_, i) => i.toString(16).padStart(2, "0"));
  }
}

// ---------------------------------------------------------------------------------------------
// A thin HBase REST/JSON client
// ---------------------------------------------------------------------------------------------

interface RestCell {
  column: string;
  $: string;
  timestamp?: number;
}
interface RestRow {
  key: string;
  Cell: RestCell[];
}
interface CellSet {
  Row?: RestRow[];
}

/** A row read back: key bytes and column → value (UTF-8). */
export interface HBaseRow {
  key: Buffer;
  cells: Map<string, string>;
}

/** Percent-encodes every byte outside the unreserved set (keys are bytes, not JS strings), for `row=`, `startrow=`, `endrow=`. */
export function percent(bytes: Buffer): string {
  let out = "";
  for (const b of bytes) {
    if (
      (b >= 0x30 && b <= 0x39) ||
      (b >= 0x41 && b <= 0x5a) ||
      (b >= 0x61 && b <= 0x7a) ||
      b === 0x2d ||
      b === 0x2e ||
      b === 0x5f ||
      b === 0x7e
    )
      out += String.fromCharCode(b);
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const b64 = (value: Buffer | string): string => Buffer.from(value).toString("base64");

/** A row to put: key and column → value. */
export interface PutRow {
  key: Buffer;
  cells: Array<[column: string, value: string]>;
}

function varintSize(n: number): number {
  let size = 1;
  while (n > 0x7f) {
    n >>>= 7;
    size++;
  }
  return size;
}

function writeVarint(out: Buffer, pos: number, n: number): number {
  while (n > 0x7f) {
    out[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[pos++] = n;
  return pos;
}

/** Size of a length-delimited protobuf field (one-byte tag) holding `length` bytes. */
const fieldSize = (length: number): number => 1 + varintSize(length) + length;

/**
 * HBase REST's CellSet protobuf (CellSetMessage.proto): CellSet{ repeated Row rows = 1 },
 * Row{ bytes key = 1; repeated Cell values = 2 }, Cell{ bytes column = 2; bytes data = 4 }.
 * Sizes first, then one allocation written in place (no per-field buffers). Because `rows` is a
 * repeated top-level field, the concatenation of two encoded CellSets is the CellSet of both.
 */
export function encodeCellSet(rows: PutRow[]): Buffer {
  const sizes: number[] = []; // per row: row length, then per cell: column, value, cell lengths
  let total = 0;
  for (const row of rows) {
    const at = sizes.length;
    sizes.push(0);
    let rowLength = fieldSize(row.key.length);
    for (const [column, value] of row.cells) {
      const columnLength = Buffer.byteLength(column, "utf8");
      const valueLength = Buffer.byteLength(value, "utf8");
      const cellLength = fieldSize(columnLength) + fieldSize(valueLength);
      sizes.push(columnLength, valueLength, cellLength);
      rowLength += fieldSize(cellLength);
    }
    sizes[at] = rowLength;
    total += fieldSize(rowLength);
  }
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  let s = 0;
  for (const row of rows) {
    out[pos++] = 0x0a; // CellSet.rows
    pos = writeVarint(out, pos, sizes[s++]!);
    out[pos++] = 0x0a; // Row.key
    pos = writeVarint(out, pos, row.key.length);
    pos += row.key.copy(out, pos);
    for (const [column, value] of row.cells) {
      const columnLength = sizes[s++]!;
      const valueLength = sizes[s++]!;
      out[pos++] = 0x12; // Row.values
      pos = writeVarint(out, pos, sizes[s++]!);
      out[pos++] = 0x12; // Cell.column
      pos = writeVarint(out, pos, columnLength);
      pos += out.write(column, pos, columnLength, "utf8");
      out[pos++] = 0x22; // Cell.data
      pos = writeVarint(out, pos, valueLength);
      pos += out.write(value, pos, valueLength, "utf8");
    }
  }
  return out;
}

function decodeRows(set: CellSet | null): HBaseRow[] {
  return (set?.Row ?? []).map((row) => ({
    key: Buffer.from(row.key, "base64"),
    cells: new Map(
      row.Cell.map((c) => [
        Buffer.from(c.column, "base64").toString("utf8"),
        Buffer.from(c.$, "base64").toString("utf8"),
      ]),
    ),
  }));
}

class RestStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface RestResponse {
  status: number;
  text: string;
}

/**
 * One HTTP exchange over a keep-alive agent (node:http: a Buffer body is written as is, no stream
 * wrapping as with `fetch`); rejects on connection errors and when `signal` aborts.
 */
function exchange(
  url: URL,
  agent: http.Agent,
  method: string,
  headers: Record<string, string | number>,
  payload: Buffer | string | undefined,
  signal: AbortSignal,
): Promise<RestResponse> {
  return new Promise<RestResponse>((resolve, reject) => {
    const send = url.protocol === "https:" ? https.request : http.request;
    const req = send(url, { method, headers, agent, signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
      res.on("aborted", () => reject(new Error("response aborted")));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

export class HBaseRest {
  private agent: http.Agent;

  constructor(
    readonly url: string,
    private readonly timeoutMs: number,
  ) {
    this.agent = this.newAgent();
  }

  private newAgent(): http.Agent {
    // Idle sockets are closed before Jetty's 30 s idle timeout; a socket the server closed anyway
    // fails the request with ECONNRESET, which is retried like any connection error.
    const options = { keepAlive: true, maxSockets: 64, maxFreeSockets: 64, timeout: 20_000 };
    return this.url.startsWith("https:") ? new https.Agent(options) : new http.Agent(options);
  }

  /** Closes pooled connections; later requests open new ones. */
  close(): void {
    this.agent.destroy();
    this.agent = this.newAgent();
  }

  /**
   * One idempotent request: retried on connection errors, timeouts and 5xx with a short backoff,
   * at most 4 attempts, all before `deadline` (default: `timeoutMs` from now). `ok` statuses
   * resolve; any other 4xx rejects at once.
   */
  async request(
    method: string,
    path: string,
    body: unknown,
    ok: readonly number[],
    deadline = Date.now() + this.timeoutMs,
  ): Promise<RestResponse> {
    const payload = body === undefined || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const contentType = Buffer.isBuffer(body) ? "application/x-protobuf" : "application/json";
    let lastError = "";
    for (let attempt = 0; attempt < 4; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      try {
        const headers: Record<string, string | number> = { Accept: "application/json" };
        if (payload !== undefined) {
          headers["Content-Type"] = contentType;
          headers["Content-Length"] = Buffer.byteLength(payload);
        }
        const response = await exchange(
          new URL(this.url + path),
          this.agent,
          method,
          headers,
          payload,
          AbortSignal.timeout(remaining),
        );
        const text = response.text;
        if (ok.includes(response.status)) return response;
        lastError = `HTTP ${response.status} ${text.replace(/\s+/g, " ").slice(0, 200)}`;
        if (response.status < 500) throw new RestStatusError(response.status, `${method} ${path}: ${lastError}`);
      } catch (error) {
        if (error instanceof RestStatusError) throw error;
        const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
        lastError = `${error instanceof Error ? error.message : String(error)}${cause}`;
      }
      const pause = Math.min(50 * 2 ** attempt, deadline - Date.now());
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
    }
    throw new UnavailableError(`HBase REST ${method} ${path.split("?")[0]} failed: ${lastError || "timed out"}`);
  }

  async json<T>(
    method: string,
    path: string,
    body: unknown,
    ok: readonly number[],
  ): Promise<{ status: number; body: T | null }> {
    const response = await this.request(method, path, body, ok);
    // Only a 200 carries JSON; 204/404 and friends carry nothing or plain text.
    const parsed = response.status === 200 && response.text.length > 0 ? (JSON.parse(response.text) as T) : null;
    return { status: response.status, body: parsed };
  }

  /**
   * Multi-row put (`PUT /<table>/false-row-key` with a CellSet), sent as protobuf: raw bytes, no
   * base64 and no JSON parsing on the gateway.
   */
  async put(table: string, cellSet: Buffer, deadline?: number): Promise<void> {
    await this.request("PUT", `/${table}/false-row-key`, cellSet, [200], deadline);
  }

  /** Put if `column` is absent on the row (`?check=put`, empty expected value); false if it was present. */
  async putIfAbsent(table: string, key: Buffer, column: string, value: string): Promise<boolean> {
    const row = {
      key: b64(key),
      Cell: [
        { column: b64(column), $: b64(value) },
        { column: b64(column), $: "" },
      ],
    };
    const { status } = await this.request("PUT", `/${table}/check-row-key?check=put`, { Row: [row] }, [200, 304]);
    return status === 200;
  }

  /** Rows that exist among `keys` (`GET /<table>/multiget?row=…`). */
  async multiGet(table: string, keys: Buffer[]): Promise<HBaseRow[]> {
    if (keys.length === 0) return [];
    const query = keys.map((k) => `row=${percent(k)}`).join("&");
    const { status, body } = await this.json<CellSet>("GET", `/${table}/multiget?${query}`, undefined, [200, 404]);
    return status === 404 ? [] : decodeRows(body);
  }

  /** Stateless scan of [start, end), at most `limit` rows, with an optional filter (HBase filter language). */
  async scan(table: string, start: Buffer, end: Buffer, limit: number, filter?: string): Promise<HBaseRow[]> {
    if (end.length > 0 && Buffer.compare(start, end) >= 0) return [];
    let path = `/${table}/*?startrow=${percent(start)}&limit=${limit}`;
    if (end.length > 0) path += `&endrow=${percent(end)}`;
    if (filter !== undefined) path += `&filter_b64=${b64(filter)}`; // read undecoded by REST: raw standard base64
    const { status, body } = await this.json<CellSet>("GET", path, undefined, [200, 204, 404]);
    return status === 200 ? decodeRows(body) : [];
  }
}

/** Rows of one `put` call waiting for their table's multi-row PUT. */
interface PendingPut {
  cellSet: Buffer;
  rows: number;
  deadline: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for one table: at most `maxInFlight` multi-row PUTs at a time; rows of `put` calls
 * arriving meanwhile queue up and go out together (up to `maxRows` per PUT) as soon as a PUT
 * completes. Each multi-row PUT is one RPC and one WAL sync on the region server, so under
 * concurrent callers fewer, larger PUTs do the same work for much less. A lone caller is sent at
 * once (no added latency). Each caller settles with its own PUT: resolved only after HBase
 * acknowledged it, rejected if it failed or if its rows could not be sent before their deadline
 * (`timeoutMs` after the call, which also bounds the PUT itself).
 */
export class PutBatcher {
  private readonly queue: PendingPut[] = [];
  private inFlight = 0;

  constructor(
    private readonly send: (cellSet: Buffer, deadline: number) => Promise<void>,
    private readonly maxRows: number,
    private readonly maxInFlight: number,
    private readonly timeoutMs: number,
    private readonly describe: string,
  ) {}

  /** Queues an encoded CellSet of `rows` rows; resolves when HBase has acknowledged it. */
  add(cellSet: Buffer, rows: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ cellSet, rows, deadline: Date.now() + this.timeoutMs, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const now = Date.now();
      const batch: PendingPut[] = [];
      let rows = 0;
      while (this.queue.length > 0) {
        const next = this.queue[0]!;
        if (next.deadline <= now) {
          this.queue.shift();
          next.reject(new UnavailableError(`HBase REST PUT ${this.describe}: no free request before the deadline`));
          continue;
        }
        if (batch.length > 0 && rows + next.rows > this.maxRows) break;
        this.queue.shift();
        batch.push(next);
        rows += next.rows;
      }
      if (batch.length === 0) return;
      const body = batch.length === 1 ? batch[0]!.cellSet : Buffer.concat(batch.map((p) => p.cellSet));
      const deadline = batch.reduce((min, p) => Math.min(min, p.deadline), Infinity);
      this.inFlight++;
      this.send(body, deadline).then(
        () => this.settle(batch, undefined),
        (error: unknown) => this.settle(batch, error ?? new UnavailableError(`HBase REST PUT ${this.describe} failed`)),
      );
    }
  }

  private settle(batch: PendingPut[], error: unknown): void {
    this.inFlight--;
    for (const p of batch) {
      if (error === undefined) p.resolve();
      else p.reject(error);
    }
    this.pump();
  }
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

function occurredMs(activity: Activity): number {
  const ms = Date.parse(activity.occurredAt);
  if (!Number.isFinite(ms)) {
    throw new ValidationError("occurredAt is not an instant", [
      { field: "occurredAt", code: "invalid_instant", message: "is not an ISO-8601 instant" },
    ]);
  }
  return ms;
}

function checkLimit(query: ActivityQuery): number {
  if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > 1000) {
    throw new ValidationError("limit must be 1-1000", [
      { field: "limit", code: "out_of_range", message: "must be an integer from 1 to 1000" },
    ]);
  }
  return query.limit;
}

/** The filter-language expression keeping rows whose `a:t` is one of `types` (undefined: no filter). */
export function typesFilter(types: string[] | undefined): string | undefined {
  if (types === undefined || types.length === 0) return undefined;
  return [...new Set(types)]
    .map((t) => `SingleColumnValueFilter('a','t',=,'binary:${t.replace(/'/g, "''")}',true,true)`)
    .join(" OR ");
}

function parseActivity(row: HBaseRow, tenantId: string): Activity | undefined {
  const json = row.cells.get(COL_JSON);
  if (json === undefined) return undefined;
  const activity = JSON.parse(json) as Activity;
  return activity.tenantId === tenantId ? activity : undefined;
}

export class HBaseStore implements ActivityStore {
  readonly type = "hbase";
  readonly tables: { activities: string; leadHistory: string; clientIds: string };
  private readonly rest: HBaseRest;
  private readonly keys: HBaseKeys;
  private readonly putActivities: PutBatcher;
  private readonly putLeadHistory: PutBatcher;
  private running = false;

  constructor(readonly options: HBaseStoreOptions) {
    this.rest = new HBaseRest(options.url, options.timeoutMs);
    this.keys = new HBaseKeys(options.saltBuckets);
    const p = options.tablePrefix;
    this.tables = { activities: `${p}activities`, leadHistory: `${p}lead_history`, clientIds: `${p}client_ids` };
    const batcher = (table: string): PutBatcher =>
      new PutBatcher(
        (cellSet, deadline) => this.rest.put(table, cellSet, deadline),
        options.maxRowsPerRequest,
        options.maxPutsInFlight,
        options.timeoutMs,
        table,
      );
    this.putActivities = batcher(this.tables.activities);
    this.putLeadHistory = batcher(this.tables.leadHistory);
  }

  /** Creates the namespace and tables when absent (idempotent); checks the salt buckets of existing ones. */
  async start(): Promise<void> {
    const colon = this.options.tablePrefix.indexOf(":");
    if (colon > 0) {
      const ns = this.options.tablePrefix.slice(0, colon);
      const { status } = await this.rest.request("GET", `/namespaces/${ns}`, undefined, [200, 404]);
      if (status === 404) await this.rest.request("POST", `/namespaces/${ns}`, undefined, [200, 201, 409]);
    }
    for (const table of Object.values(this.tables)) await this.ensureTable(table);
    this.running = true;
  }

  private async ensureTable(table: string): Promise<void> {
    const path = `/${encodeURIComponent(table)}/schema`;
    const existing = await this.rest.json<Record<string, unknown>>("GET", path, undefined, [200, 404]);
    if (existing.status === 200) {
      const recorded = existing.body?.[SALT_ATTRIBUTE];
      if (recorded !== undefined && String(recorded) !== String(this.options.saltBuckets)) {
        throw new ConfigError(`HBase table ${table} was created with ${String(recorded)} salt buckets`, [
          {
            field: "store.options.saltBuckets",
            code: "salt_mismatch",
            message: `must be ${String(recorded)}, as recorded on table ${table}; changing it needs a rewrite of the data`,
          },
        ]);
      }
      return;
    }
    const schema = {
      name: table,
      [SALT_ATTRIBUTE]: String(this.options.saltBuckets),
      ColumnSchema: [
        {
          name: FAMILY,
          VERSIONS: "1",
          COMPRESSION: this.options.compression,
          BLOOMFILTER: "ROW",
          DATA_BLOCK_ENCODING: "FAST_DIFF",
        },
      ],
    };
    await this.rest.request("PUT", path, schema, [200, 201]);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.rest.close();
  }

  /** Drops this store's tables (tests). */
  async dropTables(): Promise<void> {
    for (const table of Object.values(this.tables)) {
      await this.rest.request("DELETE", `/${encodeURIComponent(table)}/schema`, undefined, [200, 404]);
    }
  }

  private ensureRunning(): void {
    if (!this.running) throw new UnavailableError("The HBase store is not started");
  }

  async claimClientIds(tenantId: string, claims: ClientIdClaim[]): Promise<string[]> {
    this.ensureRunning();
    // The first claim of each client id in this batch is the one that competes; later ones share its answer.
    const first = new Map<string, string>();
    for (const claim of claims) if (!first.has(claim.clientId)) first.set(claim.clientId, claim.proposedId);
    const entries = [...first.entries()];
    const bound = new Map<string, string>();
    const lost: string[] = [];
    await inParallel(entries, 16, async ([clientId, proposedId]) => {
      const won = await this.rest.putIfAbsent(
        this.tables.clientIds,
        this.keys.clientId(tenantId, clientId),
        COL_ID,
        proposedId,
      );
      if (won) bound.set(clientId, proposedId);
      else lost.push(clientId);
    });
    for (let i = 0; i < lost.length; i += 50) {
      const chunk = lost.slice(i, i + 50);
      const rows = await this.rest.multiGet(
        this.tables.clientIds,
        chunk.map((c) => this.keys.clientId(tenantId, c)),
      );
      const byKey = new Map(rows.map((r) => [r.key.toString("binary"), r.cells.get(COL_ID)]));
      for (const clientId of chunk) {
        const id = byKey.get(this.keys.clientId(tenantId, clientId).toString("binary"));
        if (id === undefined) throw new UnavailableError(`client id ${clientId} was claimed but cannot be read back`);
        bound.set(clientId, id);
      }
    }
    return claims.map((c) => bound.get(c.clientId)!);
  }

  async put(activities: Activity[], json?: readonly string[]): Promise<void> {
    this.ensureRunning();
    if (activities.length === 0) return;
    const byId: PutRow[] = [];
    const byLead: PutRow[] = [];
    for (let i = 0; i < activities.length; i++) {
      const a = activities[i]!;
      if (!isActivityId(a.id)) {
        throw new ValidationError("id is not an activity id", [
          { field: "id", code: "invalid_id", message: "must be an activity id (ULID)" },
        ]);
      }
      byId.push({
        key: this.keys.activity(a.tenantId, a.id),
        cells: [
          [COL_JSON, json?.[i] ?? activityJson(a)],
          [COL_TYPE, a.type],
        ],
      });
      // An index entry: the key holds lead, occurredAt and id; the JSON is read from `activities`.
      byLead.push({
        key: this.keys.leadEntry(a.tenantId, leadKeyOf(a), occurredMs(a), a.id),
        cells: [[COL_TYPE, a.type]],
      });
    }
    const size = this.options.maxRowsPerRequest;
    const writes: Array<Promise<void>> = [];
    for (let i = 0; i < byId.length; i += size) {
      writes.push(this.putActivities.add(encodeCellSet(byId.slice(i, i + size)), Math.min(size, byId.length - i)));
      writes.push(this.putLeadHistory.add(encodeCellSet(byLead.slice(i, i + size)), Math.min(size, byId.length - i)));
    }
    await Promise.all(writes);
  }

  async get(tenantId: string, id: string): Promise<Activity | undefined> {
    this.ensureRunning();
    if (!isActivityId(id)) return undefined;
    const [row] = await this.rest.multiGet(this.tables.activities, [this.keys.activity(tenantId, id)]);
    return row === undefined ? undefined : parseActivity(row, tenantId);
  }

  async leadHistory(tenantId: string, leadKey: string, query: ActivityQuery): Promise<ActivityPage> {
    this.ensureRunning();
    const limit = checkLimit(query);
    const cursor = query.pageToken === undefined ? undefined : decodeCursor(query.pageToken);
    const prefix = this.keys.lead(tenantId, leadKey);
    let start = prefix;
    let end = prefixEnd(prefix);
    // occurredAt < until  <=>  rev > rev(until)
    if (query.until !== undefined)
      start = maxBuffer(start, prefixEnd(Buffer.concat([prefix, Buffer.from(reverseTime(query.until))])));
    // occurredAt >= since  <=>  rev <= rev(since)
    if (query.since !== undefined)
      end = minBuffer(end, prefixEnd(Buffer.concat([prefix, Buffer.from(reverseTime(query.since))])));
    if (cursor !== undefined)
      start = maxBuffer(start, after(this.keys.leadEntry(tenantId, leadKey, cursor.occurredAt, cursor.id)));
    const rows = await this.rest.scan(this.tables.leadHistory, start, end, limit + 1, typesFilter(query.types));
    const items = await this.resolveLeadEntries(tenantId, rows);
    const page = items.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page,
      ...(rows.length > limit && last !== undefined
        ? { nextPageToken: encodeCursor({ occurredAt: Date.parse(last.occurredAt), id: last.id }) }
        : {}),
    };
  }

  /**
   * The activities of lead-history rows, in row order: an index row (no `a:j`; the id is the key's
   * last 26 bytes, `inv(id)`) is resolved with multigets on `activities`, 50 keys each, in
   * parallel; rows written with the JSON inline (before index rows) are read as they are. An entry
   * whose activity cannot be read (its `activities` PUT failed; the caller was refused and retries)
   * is left out.
   */
  private async resolveLeadEntries(tenantId: string, rows: HBaseRow[]): Promise<Activity[]> {
    const ids = rows.filter((r) => !r.cells.has(COL_JSON)).map((r) => invertId(r.key.subarray(-26).toString("latin1")));
    const byId = new Map<string, Activity>();
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += 50) chunks.push(ids.slice(i, i + 50));
    await inParallel(chunks, 8, async (chunk) => {
      const found = await this.rest.multiGet(
        this.tables.activities,
        chunk.map((id) => this.keys.activity(tenantId, id)),
      );
      for (const row of found) {
        const activity = parseActivity(row, tenantId);
        if (activity !== undefined) byId.set(activity.id, activity);
      }
    });
    return rows.flatMap((r) => {
      if (r.cells.has(COL_JSON)) return parseActivity(r, tenantId) ?? [];
      return byId.get(invertId(r.key.subarray(-26).toString("latin1"))) ?? [];
    });
  }

  async list(tenantId: string, query: ActivityQuery): Promise<ActivityPage> {
    this.ensureRunning();
    const limit = checkLimit(query);
    const cursor = query.pageToken === undefined ? undefined : decodeCursor(query.pageToken);
    const filter = typesFilter(query.types);
    // Keys ascend as ids descend: `until` bounds the start, `since` the end, the cursor skips past the last id.
    const buckets = this.keys.salts().map((salt) => {
      const prefix = this.keys.tenantBucket(salt, tenantId);
      let start = prefix;
      let end = prefixEnd(prefix);
      if (query.until !== undefined)
        start = maxBuffer(start, after(Buffer.concat([prefix, Buffer.from(invertId(activityIdFloor(query.until)))])));
      if (query.since !== undefined)
        end = minBuffer(end, after(Buffer.concat([prefix, Buffer.from(invertId(activityIdFloor(query.since)))])));
      if (cursor !== undefined)
        start = maxBuffer(start, after(Buffer.concat([prefix, Buffer.from(invertId(cursor.id))])));
      return { start, end, items: [] as Activity[], exhausted: false, lastId: "" };
    });
    // Each bucket holds about 1/n of the tenant: ask every bucket for a share of the page (twice the
    // fair share), then refill only the buckets that may hold items above the page's cut, with
    // doubling reads. An item is final once no unfinished bucket could still hold a newer one.
    let take = Math.min(limit + 1, Math.ceil((2 * (limit + 1)) / buckets.length) + 1);
    let pending = buckets;
    let merged: Activity[] = [];
    let safe = 0;
    for (let round = 0; round < 16 && pending.length > 0; round++) {
      const want = take;
      await Promise.all(
        pending.map(async (b) => {
          const rows = await this.rest.scan(this.tables.activities, b.start, b.end, want, filter);
          for (const row of rows) {
            const activity = parseActivity(row, tenantId);
            if (activity !== undefined) b.items.push(activity);
          }
          const lastRow = rows[rows.length - 1];
          if (rows.length < want || lastRow === undefined) b.exhausted = true;
          else {
            b.start = after(lastRow.key);
            b.lastId = b.items[b.items.length - 1]?.id ?? b.lastId;
          }
        }),
      );
      merged = buckets.flatMap((b) => b.items).sort((x, y) => (x.id < y.id ? 1 : x.id > y.id ? -1 : 0));
      const open = buckets.filter((b) => !b.exhausted);
      const boundary = open.reduce((max, b) => (b.lastId > max ? b.lastId : max), "");
      safe = open.length === 0 ? merged.length : merged.filter((a) => a.id >= boundary).length;
      if (safe > limit || open.length === 0) break;
      const cut = merged[limit]?.id ?? "";
      pending = open.filter((b) => b.lastId >= cut);
      take = Math.min(limit + 1, take * 2);
    }
    const page = merged.slice(0, Math.min(limit, safe));
    const last = page[page.length - 1];
    const more = merged.length > page.length || buckets.some((b) => !b.exhausted);
    return {
      items: page,
      ...(more && last !== undefined
        ? { nextPageToken: encodeCursor({ occurredAt: activityIdTime(last.id), id: last.id }) }
        : {}),
    };
  }

  async existing(tenantId: string, ids: string[]): Promise<Set<string>> {
    this.ensureRunning();
    const valid = [...new Set(ids.filter(isActivityId))];
    const found = new Set<string>();
    const chunks: string[][] = [];
    for (let i = 0; i < valid.length; i += 50) chunks.push(valid.slice(i, i + 50));
    await inParallel(chunks, 8, async (chunk) => {
      const rows = await this.rest.multiGet(
        this.tables.activities,
        chunk.map((id) => this.keys.activity(tenantId, id)),
      );
      for (const row of rows) {
        const activity = parseActivity(row, tenantId);
        if (activity !== undefined) found.add(activity.id);
      }
    });
    return new Set(ids.filter((id) => found.has(id)));
  }

  async health(): Promise<HealthStatus> {
    try {
      const { body } = await this.rest.json<{ Version?: string }>("GET", "/version/cluster", undefined, [200]);
      return { ok: true, status: "up", detail: `HBase ${body?.Version ?? "?"} via ${this.options.url}` };
    } catch (error) {
      return {
        ok: false,
        status: "down",
        detail: error instanceof HubError || error instanceof Error ? error.message : String(error),
      };
    }
  }
}

/** Runs `fn` over `items` with at most `concurrency` in flight; rejects with the first failure. */
async function inParallel<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  });
  await Promise.all(workers);
}
