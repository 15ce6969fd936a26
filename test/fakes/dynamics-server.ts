/**
 * A fake Dynamics 365 / Dataverse environment over real HTTP on 127.0.0.1, following the Web API
 * (OData v4) closely enough for dynamics-web-api: Microsoft identity platform client-credentials
 * token endpoint, `$select/$filter/$top/$orderby` with `odata.maxpagesize` and `@odata.nextLink`,
 * change tracking (`Prefer: odata.track-changes`, `@odata.deltaLink`, `$deletedEntity`), upsert by
 * alternate key, `$batch` with change sets (atomic) and `odata.continue-on-error`, service
 * protection 429 with `Retry-After`, OData error bodies and injectable failures. Every call counts.
 *
 * Protocol references:
 * - Token: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
 * - Query/paging: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/page-results
 * - Change tracking: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems
 * - Upsert: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api
 * - $batch: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api
 * - Limits: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/api-limits
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { CallCounter, closeServer, listenLocal, readBody, send } from "./fake-http";
import { filterFields, matches, ODataError, parseFilter, type ODataValue } from "./odata";

export type DynRecord = Record<string, ODataValue>;
export type DynCallKind = "auth" | "query" | "delta" | "upsert" | "batch" | "other";

interface EntitySpec {
  entity: string;
  primaryKey: string;
  fields: Record<string, "string" | "number" | "boolean" | "datetime">;
  alternateKeys: string[][];
}

const ENTITIES: Record<string, EntitySpec> = {
  leads: {
    entity: "lead",
    primaryKey: "leadid",
    fields: {
      leadid: "string",
      firstname: "string",
      lastname: "string",
      emailaddress1: "string",
      companyname: "string",
      subject: "string",
      hub_leadid: "string",
      hub_score: "number",
      statecode: "number",
      createdon: "datetime",
      modifiedon: "datetime",
      versionnumber: "number",
    },
    alternateKeys: [["hub_leadid"], ["emailaddress1"]],
  },
  contacts: {
    entity: "contact",
    primaryKey: "contactid",
    fields: {
      contactid: "string",
      firstname: "string",
      lastname: "string",
      emailaddress1: "string",
      hub_leadid: "string",
      createdon: "datetime",
      modifiedon: "datetime",
      versionnumber: "number",
    },
    alternateKeys: [["emailaddress1"]],
  },
  accounts: {
    entity: "account",
    primaryKey: "accountid",
    fields: {
      accountid: "string",
      name: "string",
      numberofemployees: "number",
      createdon: "datetime",
      modifiedon: "datetime",
      versionnumber: "number",
    },
    alternateKeys: [],
  },
  opportunities: {
    entity: "opportunity",
    primaryKey: "opportunityid",
    fields: {
      opportunityid: "string",
      name: "string",
      estimatedvalue: "number",
      stepname: "string",
      createdon: "datetime",
      modifiedon: "datetime",
      versionnumber: "number",
    },
    alternateKeys: [],
  },
  tasks: {
    entity: "task",
    primaryKey: "activityid",
    fields: {
      activityid: "string",
      subject: "string",
      description: "string",
      scheduledend: "datetime",
      hub_activityid: "string",
      hub_leadid: "string",
      createdon: "datetime",
      modifiedon: "datetime",
      versionnumber: "number",
    },
    alternateKeys: [["hub_activityid"]],
  },
  phonecalls: {
    entity: "phonecall",
    primaryKey: "activityid",
    fields: {
      activityid: "string",
      subject: "string",
      description: "string",
      scheduledend: "datetime",
      hub_activityid: "string",
      hub_leadid: "string",
      createdon: "datetime",
      modifiedon: "datetime",
      versionnumber: "number",
    },
    alternateKeys: [["hub_activityid"]],
  },
};

const READ_ONLY = new Set(["createdon", "modifiedon", "versionnumber"]);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface FakeDynamicsOptions {
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  /** Service protection: at most this many requests per window, then 429 with Retry-After. */
  rateLimit?: { requests: number; windowMs: number };
  /** Maximum page size the server honours (Dataverse: 5,000). */
  maxPageSize?: number;
}

interface OpResult {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
}

interface Tombstone {
  id: string;
  version: number;
}

interface PageToken {
  /** Snapshot version the listing is bounded by. */
  v: number;
  /** Version of the last item already returned. */
  after: number;
  /** For delta listings: changes strictly after this version. */
  from?: number;
}

export class FakeDynamicsServer {
  readonly calls = new CallCounter();
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Operations executed inside $batch requests (each one also counts against service protection). */
  batchOperations = 0;

  private readonly tables = new Map<string, Map<string, DynRecord>>();
  private readonly altIndex = new Map<string, Map<string, string>>();
  private readonly tombstones = new Map<string, Tombstone[]>();
  private readonly removed = new Map<string, Set<string>>();
  private readonly tokens = new Set<string>();
  private readonly throttles: { remaining: number; retryAfterSeconds: number }[] = [];
  private readonly rejectors: {
    collection: string;
    test: (record: DynRecord) => { code: string; message: string } | undefined;
  }[] = [];
  private readonly window: number[] = [];
  private version = 1000;
  private undo?: UndoEntry[];
  private rateLimit?: { requests: number; windowMs: number };
  private readonly maxPageSize: number;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    options: FakeDynamicsOptions,
  ) {
    this.tenantId = options.tenantId ?? "00000000-0000-0000-0000-0000000000aa";
    this.clientId = options.clientId ?? "fake-dyn-client";
    this.clientSecret = options.clientSecret ?? "fake-dyn-secret";
    this.rateLimit = options.rateLimit;
    this.maxPageSize = options.maxPageSize ?? 5000;
    for (const collection of Object.keys(ENTITIES)) this.tables.set(collection, new Map());
  }

  static async start(options: FakeDynamicsOptions = {}): Promise<FakeDynamicsServer> {
    const holder: { fake?: FakeDynamicsServer } = {};
    const { server, url } = await listenLocal(async (req, res) => {
      if (holder.fake) await holder.fake.handle(req, res);
    });
    holder.fake = new FakeDynamicsServer(server, url, options);
    return holder.fake;
  }

  /** The URL of the token endpoint (authority + tenant). */
  get tokenUrl(): string {
    return `${this.url}/${this.tenantId}/oauth2/v2.0/token`;
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  // ---------------------------------------------------------------- data helpers for tests

  insert(collection: string, rows: readonly DynRecord[]): string[] {
    return rows.map((row) => this.write(collection, undefined, row).id);
  }

  update(collection: string, id: string, fields: DynRecord): void {
    this.write(collection, id, fields);
  }

  delete(collection: string, id: string): void {
    const table = this.table(collection);
    const record = table.get(id);
    if (!record) return;
    table.delete(id);
    this.unindex(collection, record);
    const list = this.tombstones.get(collection) ?? [];
    list.push({ id, version: ++this.version });
    this.tombstones.set(collection, list);
  }

  all(collection: string): DynRecord[] {
    return [...this.table(collection).values()];
  }

  count(collection: string): number {
    return this.table(collection).size;
  }

  findByKey(collection: string, field: string, value: string): DynRecord | undefined {
    const id = this.altIndex.get(`${collection}:${field}`)?.get(JSON.stringify([value]));
    return id ? this.table(collection).get(id) : undefined;
  }

  // ---------------------------------------------------------------- failure injection

  expireTokens(): void {
    this.tokens.clear();
  }

  /** The next `count` requests get 429 with `Retry-After: retryAfterSeconds`. */
  throttleNext(count: number, retryAfterSeconds: number): void {
    this.throttles.push({ remaining: count, retryAfterSeconds });
  }

  setRateLimit(limit: { requests: number; windowMs: number } | undefined): void {
    this.rateLimit = limit;
    this.window.length = 0;
  }

  rejectRecords(collection: string, test: (record: DynRecord) => { code: string; message: string } | undefined): void {
    this.rejectors.push({ collection, test });
  }

  removeField(collection: string, field: string): void {
    const set = this.removed.get(collection) ?? new Set<string>();
    set.add(field);
    this.removed.set(collection, set);
  }

  // ---------------------------------------------------------------- internals

  private table(collection: string): Map<string, DynRecord> {
    const table = this.tables.get(collection);
    if (!table) throw new ODataError(`Resource not found for the segment '${collection}'.`, "0x8006088a");
    return table;
  }

  private hasField(collection: string, field: string): boolean {
    return field in ENTITIES[collection].fields && !this.removed.get(collection)?.has(field);
  }

  private altKeyName(collection: string, key: string[]): string {
    return `${collection}:${key.join(",")}`;
  }

  private altKeyValue(key: string[], record: DynRecord): string {
    return JSON.stringify(key.map((field) => record[field] ?? null));
  }

  private write(collection: string, id: string | undefined, fields: DynRecord): { id: string; created: boolean } {
    const table = this.table(collection);
    const spec = ENTITIES[collection];
    const existing = id ? table.get(id) : undefined;
    const recordId = existing ? String(existing[spec.primaryKey]) : (id ?? randomUUID());
    this.undo?.push({ collection, id: recordId, previous: existing ? { ...existing } : undefined });
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    const record: DynRecord = existing ?? { [spec.primaryKey]: recordId, createdon: now };
    if (existing) this.unindex(collection, existing);
    for (const [key, value] of Object.entries(fields)) {
      if (!READ_ONLY.has(key) && key !== spec.primaryKey) record[key] = value;
    }
    record.modifiedon = now;
    record.versionnumber = ++this.version;
    table.set(recordId, record);
    this.index(collection, recordId, record);
    return { id: recordId, created: !existing };
  }

  private classify(method: string, path: string, search: string): DynCallKind {
    if (path.includes("/oauth2/")) return "auth";
    if (path.endsWith("/$batch")) return "batch";
    if (method === "GET") return search.includes("deltatoken") ? "delta" : "query";
    if (method === "PATCH") return "upsert";
    return "other";
  }

  private odataError(status: number, code: string, message: string, headers: Record<string, string> = {}): OpResult {
    return { status, headers: { "OData-Version": "4.0", ...headers }, body: { error: { code, message } } };
  }

  private throttled(): number | undefined {
    for (const throttle of this.throttles) {
      if (throttle.remaining > 0) {
        throttle.remaining--;
        return throttle.retryAfterSeconds;
      }
    }
    if (this.rateLimit) {
      const now = Date.now();
      while (this.window.length > 0 && this.window[0] <= now - this.rateLimit.windowMs) this.window.shift();
      if (this.window.length >= this.rateLimit.requests) {
        return Math.max(1, Math.ceil((this.window[0] + this.rateLimit.windowMs - now) / 1000));
      }
      this.window.push(now);
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const method = req.method ?? "GET";
    const kind = this.classify(method, url.pathname, url.search);
    this.calls.add(kind);
    const body = await readBody(req);
    if (kind === "auth") return this.token(url.pathname, body, res);

    const auth = req.headers.authorization ?? "";
    if (!this.tokens.has(auth.startsWith("Bearer ") ? auth.slice(7) : "")) {
      res.writeHead(401, {
        "WWW-Authenticate": 'Bearer error="invalid_token", error_description="The access token is expired"',
      });
      res.end();
      return;
    }
    const retryAfter = this.throttled();
    if (retryAfter !== undefined) {
      const result = this.odataError(
        429,
        "0x80072322",
        "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
        {
          "Retry-After": String(retryAfter),
        },
      );
      return this.reply(res, result);
    }
    const match = /^\/api\/data\/v(\d+\.\d+)\/(.*)$/.exec(url.pathname);
    if (!match) return this.reply(res, this.odataError(404, "0x80060888", "Resource not found"));
    const base = `${this.url}/api/data/v${match[1]}/`;
    if (match[2] === "$batch" && method === "POST") return this.batch(req, body, base, res);
    const result = this.execute(
      method,
      decodeURIComponent(match[2]),
      url.searchParams,
      headerMap(req.headers),
      body,
      base,
    );
    return this.reply(res, result);
  }

  private reply(res: ServerResponse, result: OpResult): void {
    send(res, result.status, result.body, result.headers, "application/json; odata.metadata=minimal");
  }

  private token(path: string, body: string, res: ServerResponse): void {
    if (path !== `/${this.tenantId}/oauth2/v2.0/token`) {
      return send(res, 400, { error: "invalid_tenant", error_description: "AADSTS90002: Tenant not found." });
    }
    const params = new URLSearchParams(body);
    if (params.get("grant_type") !== "client_credentials") {
      return send(res, 400, {
        error: "unsupported_grant_type",
        error_description: "AADSTS70003: grant type not supported",
      });
    }
    if (params.get("client_id") !== this.clientId || params.get("client_secret") !== this.clientSecret) {
      return send(res, 401, {
        error: "invalid_client",
        error_description: "AADSTS7000215: Invalid client secret provided.",
      });
    }
    if (!(params.get("scope") ?? "").endsWith("/.default")) {
      return send(res, 400, {
        error: "invalid_scope",
        error_description: "AADSTS70011: The provided scope is not valid.",
      });
    }
    const token = `eyJ0eXAi.${randomBytes(24).toString("base64url")}`;
    this.tokens.add(token);
    send(res, 200, { token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: token });
  }

  /** Executes one Web API request (top level or inside a $batch). */
  private execute(
    method: string,
    path: string,
    query: URLSearchParams,
    headers: Record<string, string>,
    body: string,
    base: string,
  ): OpResult {
    try {
      const keyMatch = /^([a-z_]+)\((.+)\)$/.exec(path);
      if (method === "GET" && /^[a-z_]+$/.test(path)) return this.list(path, query, headers, base);
      if (method === "PATCH" && keyMatch) return this.upsert(keyMatch[1], keyMatch[2], headers, body, base);
      if (method === "POST" && /^[a-z_]+$/.test(path)) return this.create(path, body, base);
      return this.odataError(405, "0x80060888", `Method ${method} not supported on '${path}'`);
    } catch (error) {
      if (error instanceof ODataError) return this.odataError(400, error.code, error.message);
      throw error;
    }
  }

  private checkFields(collection: string, fields: Iterable<string>): void {
    for (const field of fields) {
      if (!this.hasField(collection, field)) {
        throw new ODataError(
          `Could not find a property named '${field}' on type 'Microsoft.Dynamics.CRM.${ENTITIES[collection].entity}'.`,
          "0x80060888",
        );
      }
    }
  }

  private project(collection: string, record: DynRecord, select: string[] | undefined): Record<string, unknown> {
    const spec = ENTITIES[collection];
    const out: Record<string, unknown> = { "@odata.etag": `W/"${record.versionnumber}"` };
    const fields = select ?? Object.keys(spec.fields);
    for (const field of fields) out[field] = record[field] ?? null;
    out[spec.primaryKey] = record[spec.primaryKey];
    return out;
  }

  private list(collection: string, query: URLSearchParams, headers: Record<string, string>, base: string): OpResult {
    const table = this.table(collection);
    const select = query
      .get("$select")
      ?.split(",")
      .filter((f) => f !== "");
    if (select) this.checkFields(collection, select);
    const prefer = headers["prefer"] ?? "";
    const pageMatch = /odata\.maxpagesize=(\d+)/.exec(prefer);
    const pageSize = Math.min(this.maxPageSize, pageMatch ? Number(pageMatch[1]) : this.maxPageSize);
    const tracking = prefer.includes("odata.track-changes");
    const deltaToken = query.get("$deltatoken");
    const skipToken = query.get("$skiptoken");
    const context = `${base}$metadata#${collection}(${(select ?? []).join(",")})`;
    const linkBase = `${base}${collection}?${select ? `$select=${select.join(",")}&` : ""}`;

    if (tracking || deltaToken || (skipToken && skipToken.startsWith("ct."))) {
      if (query.get("$filter") || query.get("$orderby") || query.get("$top")) {
        throw new ODataError("Change tracking does not support $filter, $orderby or $top.", "0x80060888");
      }
      let token: PageToken;
      if (skipToken) token = JSON.parse(Buffer.from(skipToken.slice(3), "base64url").toString("utf8")) as PageToken;
      else if (deltaToken) {
        const from = Number(deltaToken.split("!")[0]);
        if (!Number.isFinite(from)) throw new ODataError("Invalid delta token", "0x80044352");
        token = { v: this.version, after: from, from };
      } else token = { v: this.version, after: 0 };
      type Item = { version: number; value: Record<string, unknown> };
      const items: Item[] = [];
      for (const record of table.values()) {
        const version = Number(record.versionnumber);
        if (version > token.after && version <= token.v)
          items.push({ version, value: this.project(collection, record, select) });
      }
      if (token.from !== undefined) {
        for (const tomb of this.tombstones.get(collection) ?? []) {
          if (tomb.version > token.after && tomb.version <= token.v) {
            items.push({
              version: tomb.version,
              value: {
                "@odata.context": `${base}$metadata#${collection}/$deletedEntity`,
                id: tomb.id,
                reason: "deleted",
              },
            });
          }
        }
      }
      items.sort((a, b) => a.version - b.version);
      const page = items.slice(0, pageSize);
      const body: Record<string, unknown> = { "@odata.context": context, value: page.map((item) => item.value) };
      if (items.length > pageSize) {
        const next: PageToken = { ...token, after: page[page.length - 1].version };
        body["@odata.nextLink"] = `${linkBase}$skiptoken=ct.${Buffer.from(JSON.stringify(next)).toString("base64url")}`;
      } else {
        body["@odata.deltaLink"] = `${linkBase}$deltatoken=${token.v}!${encodeURIComponent(new Date().toISOString())}`;
      }
      return { status: 200, headers: { "OData-Version": "4.0", "Preference-Applied": "odata.track-changes" }, body };
    }

    let rows = [...table.values()];
    const filterText = query.get("$filter");
    if (filterText) {
      const filter = parseFilter(filterText);
      this.checkFields(collection, filterFields(filter));
      rows = rows.filter((record) => matches(filter, record));
    }
    const orderBy = query.get("$orderby");
    if (orderBy) {
      const [field, direction] = orderBy.split(" ");
      this.checkFields(collection, [field]);
      const sign = direction === "desc" ? -1 : 1;
      rows.sort((a, b) => {
        const x = a[field] ?? "";
        const y = b[field] ?? "";
        return x === y ? 0 : x < y ? -sign : sign;
      });
    }
    const top = query.get("$top");
    if (top) rows = rows.slice(0, Number(top));
    const offset = skipToken ? Number(skipToken) : 0;
    const page = rows.slice(offset, offset + pageSize);
    const body: Record<string, unknown> = {
      "@odata.context": context,
      value: page.map((record) => this.project(collection, record, select)),
    };
    if (offset + pageSize < rows.length) {
      const params = new URLSearchParams(query);
      params.set("$skiptoken", String(offset + pageSize));
      body["@odata.nextLink"] = `${base}${collection}?${params.toString()}`;
    }
    return { status: 200, headers: { "OData-Version": "4.0" }, body };
  }

  private parseKey(collection: string, keyText: string): { id?: string; keyFields?: DynRecord } {
    if (GUID.test(keyText)) return { id: keyText };
    const fields: DynRecord = {};
    const pattern = /([a-z_0-9]+)=(?:'((?:[^']|'')*)'|([^,]+))/g;
    let matched = 0;
    for (let m = pattern.exec(keyText); m !== null; m = pattern.exec(keyText)) {
      matched++;
      fields[m[1]] = m[2] !== undefined ? m[2].replace(/''/g, "'") : Number(m[3]);
    }
    if (matched === 0) throw new ODataError(`Invalid key '${keyText}'`, "0x80060888");
    const names = Object.keys(fields).sort();
    const key = ENTITIES[collection].alternateKeys.find((k) => [...k].sort().join(",") === names.join(","));
    if (!key)
      throw new ODataError(
        `The key '${names.join(",")}' is not an alternate key of ${ENTITIES[collection].entity}.`,
        "0x80060891",
      );
    const id = this.altIndex.get(this.altKeyName(collection, key))?.get(this.altKeyValue(key, fields));
    return { id, keyFields: fields };
  }

  private reject(collection: string, record: DynRecord): OpResult | undefined {
    for (const rejector of this.rejectors) {
      if (rejector.collection !== collection) continue;
      const failure = rejector.test(record);
      if (failure) return this.odataError(400, failure.code, failure.message);
    }
    return undefined;
  }

  private upsert(
    collection: string,
    keyText: string,
    headers: Record<string, string>,
    body: string,
    base: string,
  ): OpResult {
    this.table(collection);
    const data = JSON.parse(body === "" ? "{}" : body) as DynRecord;
    this.checkFields(
      collection,
      Object.keys(data).filter((k) => !k.includes("@")),
    );
    const { id, keyFields } = this.parseKey(collection, keyText);
    const exists = id !== undefined && this.table(collection).has(id);
    if (headers["if-match"] === "*" && !exists)
      return this.odataError(404, "0x80040217", `${ENTITIES[collection].entity} With Ids = ${keyText} Do Not Exist`);
    if (headers["if-none-match"] === "*" && exists)
      return this.odataError(412, "0x80040237", "A record with matching key values already exists.");
    const fields = { ...keyFields, ...data };
    const rejected = this.reject(collection, fields);
    if (rejected) return rejected;
    const result = this.write(collection, exists ? id : undefined, fields);
    return { status: 204, headers: { "OData-Version": "4.0", "OData-EntityId": `${base}${collection}(${result.id})` } };
  }

  private create(collection: string, body: string, base: string): OpResult {
    const data = JSON.parse(body === "" ? "{}" : body) as DynRecord;
    this.checkFields(
      collection,
      Object.keys(data).filter((k) => !k.includes("@")),
    );
    const rejected = this.reject(collection, data);
    if (rejected) return rejected;
    const result = this.write(collection, undefined, data);
    return { status: 204, headers: { "OData-Version": "4.0", "OData-EntityId": `${base}${collection}(${result.id})` } };
  }

  private async batch(req: IncomingMessage, body: string, base: string, res: ServerResponse): Promise<void> {
    const contentType = String(req.headers["content-type"] ?? "");
    const boundary = /boundary=([^;]+)/.exec(contentType)?.[1]?.trim();
    if (!boundary) return this.reply(res, this.odataError(400, "0x80048d19", "Missing batch boundary"));
    const continueOnError = String(req.headers["prefer"] ?? "").includes("odata.continue-on-error");
    const parts = splitMultipart(body, boundary);
    const operations = parts.reduce((n, p) => n + (p.changeset ? p.changeset.length : 1), 0);
    if (operations > 1000)
      return this.reply(res, this.odataError(400, "0x80048d19", "Number of requests in a batch exceeds 1000"));
    const responseBoundary = `batchresponse_${randomUUID()}`;
    const out: string[] = [];
    for (const part of parts) {
      if (part.changeset) {
        this.undo = [];
        const results: { contentId?: string; result: OpResult }[] = [];
        let failed: { contentId?: string; result: OpResult } | undefined;
        for (const op of part.changeset) {
          this.batchOperations++;
          const result = this.runPart(op, base);
          if (result.status >= 400) {
            failed = { contentId: op.contentId, result };
            break;
          }
          results.push({ contentId: op.contentId, result });
        }
        const undo = this.undo;
        this.undo = undefined;
        if (failed) {
          this.rollback(undo);
          out.push(`--${responseBoundary}\r\n${renderPart(failed.result, failed.contentId)}`);
          if (!continueOnError) break;
        } else {
          const cs = `changesetresponse_${randomUUID()}`;
          const inner = results.map((r) => `--${cs}\r\n${renderPart(r.result, r.contentId)}`).join("");
          out.push(
            `--${responseBoundary}\r\nContent-Type: multipart/mixed; boundary=${cs}\r\n\r\n${inner}--${cs}--\r\n`,
          );
        }
      } else if (part.request) {
        this.batchOperations++;
        const result = this.runPart(part.request, base);
        out.push(`--${responseBoundary}\r\n${renderPart(result)}`);
        if (result.status >= 400 && !continueOnError) break;
      }
    }
    const text = `${out.join("")}--${responseBoundary}--\r\n`;
    res.writeHead(200, {
      "Content-Type": `multipart/mixed; boundary=${responseBoundary}`,
      "OData-Version": "4.0",
      "Content-Length": String(Buffer.byteLength(text)),
    });
    res.end(text);
  }

  private runPart(op: BatchOp, base: string): OpResult {
    const url = new URL(op.url, base);
    const path = decodeURIComponent(url.pathname.replace(/^\/api\/data\/v\d+\.\d+\//, ""));
    return this.execute(op.method, path, url.searchParams, op.headers, op.body, base);
  }

  private unindex(collection: string, record: DynRecord): void {
    for (const key of ENTITIES[collection].alternateKeys)
      this.altIndex.get(this.altKeyName(collection, key))?.delete(this.altKeyValue(key, record));
  }

  private index(collection: string, id: string, record: DynRecord): void {
    for (const key of ENTITIES[collection].alternateKeys) {
      if (!key.every((field) => record[field] !== undefined && record[field] !== null)) continue;
      const name = this.altKeyName(collection, key);
      const index = this.altIndex.get(name) ?? new Map<string, string>();
      index.set(this.altKeyValue(key, record), id);
      this.altIndex.set(name, index);
    }
  }

  /** Rolls a change set back by replaying its undo log in reverse. */
  private rollback(undo: UndoEntry[]): void {
    for (const entry of [...undo].reverse()) {
      const table = this.table(entry.collection);
      const current = table.get(entry.id);
      if (current) this.unindex(entry.collection, current);
      if (entry.previous) {
        table.set(entry.id, entry.previous);
        this.index(entry.collection, entry.id, entry.previous);
      } else table.delete(entry.id);
    }
  }
}

interface UndoEntry {
  collection: string;
  id: string;
  previous?: DynRecord;
}

interface BatchOp {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  contentId?: string;
}

function headerMap(headers: IncomingMessage["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers))
    if (value !== undefined) out[key.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  return out;
}

/** Splits a multipart/mixed body into application/http requests and change sets. */
function splitMultipart(body: string, boundary: string): { request?: BatchOp; changeset?: BatchOp[] }[] {
  const out: { request?: BatchOp; changeset?: BatchOp[] }[] = [];
  const chunks = body.split(`--${boundary}`);
  for (const raw of chunks) {
    const chunk = raw.replace(/^\r?\n/, "");
    if (chunk.trim() === "" || chunk.startsWith("--")) continue;
    const { headers, rest } = splitHeaders(chunk);
    const type = headers["content-type"] ?? "";
    const inner = /multipart\/mixed;\s*boundary=([^;\s]+)/.exec(type);
    if (inner) {
      out.push({ changeset: splitMultipart(rest, inner[1]).flatMap((p) => (p.request ? [p.request] : [])) });
    } else {
      const request = parseHttpRequest(rest);
      if (request) out.push({ request: { ...request, contentId: headers["content-id"] } });
    }
  }
  return out;
}

function splitHeaders(text: string): { headers: Record<string, string>; rest: string } {
  const normalized = text.replace(/\r\n/g, "\n");
  const end = normalized.indexOf("\n\n");
  const head = end === -1 ? normalized : normalized.slice(0, end);
  const rest = end === -1 ? "" : normalized.slice(end + 2);
  const headers: Record<string, string> = {};
  for (const line of head.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, rest };
}

function parseHttpRequest(text: string): Omit<BatchOp, "contentId"> | undefined {
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  const requestLine = /^(GET|POST|PATCH|PUT|DELETE) (\S+) HTTP\/1\.1$/.exec(lines[0] ?? "");
  if (!requestLine) return undefined;
  const { headers, rest } = splitHeaders(lines.slice(1).join("\n"));
  return { method: requestLine[1], url: requestLine[2], headers, body: rest.trim() };
}

function statusText(status: number): string {
  const texts: Record<number, string> = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    412: "Precondition Failed",
    429: "Too Many Requests",
  };
  return texts[status] ?? "Error";
}

function renderPart(result: OpResult, contentId?: string): string {
  const lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"];
  if (contentId) lines.push(`Content-ID: ${contentId}`);
  lines.push("", `HTTP/1.1 ${result.status} ${statusText(result.status)}`);
  for (const [key, value] of Object.entries(result.headers)) lines.push(`${key}: ${value}`);
  if (result.body !== undefined) {
    lines.push("Content-Type: application/json; odata.metadata=minimal", "", JSON.stringify(result.body));
  } else lines.push("", "");
  return lines.join("\r\n") + "\r\n";
}
