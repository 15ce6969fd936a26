/**
 * A fake Salesforce org over real HTTP on 127.0.0.1, following the documented REST protocol
 * closely enough for jsforce: OAuth 2.0 token endpoint (client credentials, refresh token, JWT
 * bearer), SOQL query paging with `nextRecordsUrl`, `sobjects/{type}/deleted`, upsert by external
 * id, sObject Collections, Bulk API 2.0 ingest jobs, `Sforce-Limit-Info`, vendor error bodies,
 * 401 on expired sessions and injectable failures. Records live in memory; every call is counted.
 *
 * Protocol references:
 * - OAuth: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm
 * - Query: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm
 * - Deleted: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_getdeleted.htm
 * - Collections: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm
 * - Bulk 2.0: https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/bulk_api_2_0.htm
 * - Errors: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
 */
import { randomBytes, verify as verifySignature, type KeyObject } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { CallCounter, closeServer, csvEscape, listenLocal, parseCsv, readBody, send } from "./fake-http";
import { compareBy, evaluate, exprFields, parseSoql, parseSoqlDate, SoqlError, type SoqlValue } from "./soql";

export type SfFieldType = "id" | "string" | "double" | "boolean" | "datetime" | "date" | "reference";
export type SfRecord = Record<string, SoqlValue>;

/** Call kinds counted separately (`total` is the sum). */
export type SfCallKind =
  "auth" | "describe" | "query" | "queryMore" | "deleted" | "upsert" | "collection" | "bulk" | "limits" | "other";

export interface SfFailure {
  status: number;
  errorCode: string;
  message: string;
}

export interface FakeSalesforceOptions {
  clientId?: string;
  clientSecret?: string;
  username?: string;
  /** Public key that JWT bearer assertions must verify against. */
  jwtPublicKey?: KeyObject | string;
  refreshToken?: string;
  dailyLimit?: number;
  /** Bulk jobs report InProgress for this long after UploadComplete. */
  bulkProcessingMs?: number;
}

const ORG_ID = "00D000000000001EAA";
const USER_ID = "005000000000001AAA";

const SCHEMA: Record<string, { prefix: string; fields: Record<string, SfFieldType>; externalIds: string[] }> = {
  Lead: {
    prefix: "00Q",
    fields: {
      Id: "id",
      FirstName: "string",
      LastName: "string",
      Email: "string",
      Company: "string",
      Status: "string",
      LeadSource: "string",
      Hub_Lead_Id__c: "string",
      Hub_Score__c: "double",
      IsConverted: "boolean",
      CreatedDate: "datetime",
      LastModifiedDate: "datetime",
      SystemModstamp: "datetime",
    },
    externalIds: ["Hub_Lead_Id__c"],
  },
  Contact: {
    prefix: "003",
    fields: {
      Id: "id",
      FirstName: "string",
      LastName: "string",
      Email: "string",
      AccountId: "reference",
      Hub_Lead_Id__c: "string",
      CreatedDate: "datetime",
      LastModifiedDate: "datetime",
      SystemModstamp: "datetime",
    },
    externalIds: ["Hub_Lead_Id__c"],
  },
  Account: {
    prefix: "001",
    fields: {
      Id: "id",
      Name: "string",
      Industry: "string",
      NumberOfEmployees: "double",
      CreatedDate: "datetime",
      LastModifiedDate: "datetime",
      SystemModstamp: "datetime",
    },
    externalIds: [],
  },
  Opportunity: {
    prefix: "006",
    fields: {
      Id: "id",
      Name: "string",
      StageName: "string",
      Amount: "double",
      CloseDate: "date",
      AccountId: "reference",
      CreatedDate: "datetime",
      LastModifiedDate: "datetime",
      SystemModstamp: "datetime",
    },
    externalIds: [],
  },
  CampaignMember: {
    prefix: "00v",
    fields: {
      Id: "id",
      CampaignId: "reference",
      LeadId: "reference",
      ContactId: "reference",
      Status: "string",
      HasResponded: "boolean",
      CreatedDate: "datetime",
      LastModifiedDate: "datetime",
      SystemModstamp: "datetime",
    },
    externalIds: [],
  },
  Task: {
    prefix: "00T",
    fields: {
      Id: "id",
      Subject: "string",
      ActivityDate: "date",
      Description: "string",
      Status: "string",
      Hub_Activity_Id__c: "string",
      Hub_Lead_Id__c: "string",
      WhoId: "reference",
      CreatedDate: "datetime",
      LastModifiedDate: "datetime",
      SystemModstamp: "datetime",
    },
    externalIds: ["Hub_Activity_Id__c"],
  },
};

const SYSTEM_FIELDS = new Set(["Id", "CreatedDate", "LastModifiedDate", "SystemModstamp"]);

/** Salesforce dateTime format: `2024-05-01T10:00:00.000+0000`. */
export function sfDate(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "+0000");
}

interface QueryCursor {
  object: string;
  fields: string[];
  ids: string[];
  offset: number;
  batchSize: number;
}

interface BulkJob {
  id: string;
  object: string;
  operation: string;
  externalIdFieldName?: string;
  state: "Open" | "UploadComplete" | "InProgress" | "JobComplete" | "Failed" | "Aborted";
  csv: string;
  completeAt: number;
  errorMessage?: string;
  successful: string[][];
  failed: string[][];
  header: string[];
  processed: number;
}

export class FakeSalesforceServer {
  readonly calls = new CallCounter();
  readonly clientId: string;
  readonly clientSecret: string;
  readonly username: string;
  readonly refreshToken: string;
  dailyLimit: number;
  apiUsed = 0;

  private readonly records = new Map<string, Map<string, SfRecord>>();
  private readonly extIndex = new Map<string, Map<string, string>>();
  private readonly tombstones = new Map<string, { id: string; deletedAt: number }[]>();
  private readonly removedFields = new Map<string, Set<string>>();
  private readonly tokens = new Set<string>();
  private readonly cursors = new Map<string, QueryCursor>();
  private readonly jobs = new Map<string, BulkJob>();
  private readonly failures: { kind: SfCallKind | "*"; remaining: number; failure: SfFailure }[] = [];
  private readonly rejectors: { object: string; test: (record: SfRecord) => SfFailure | undefined }[] = [];
  private idCounter = 0;
  private locatorCounter = 0;
  private lastStamp = 0;
  private jwtPublicKey?: KeyObject | string;
  private bulkProcessingMs: number;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    options: FakeSalesforceOptions,
  ) {
    this.clientId = options.clientId ?? "fake-client-id";
    this.clientSecret = options.clientSecret ?? "fake-client-secret";
    this.username = options.username ?? "integration@example.com";
    this.refreshToken = options.refreshToken ?? "fake-refresh-token";
    this.dailyLimit = options.dailyLimit ?? 5_000_000;
    this.jwtPublicKey = options.jwtPublicKey;
    this.bulkProcessingMs = options.bulkProcessingMs ?? 0;
    for (const object of Object.keys(SCHEMA)) this.records.set(object, new Map());
  }

  static async start(options: FakeSalesforceOptions = {}): Promise<FakeSalesforceServer> {
    const holder: { fake?: FakeSalesforceServer } = {};
    const { server, url } = await listenLocal(async (req, res) => {
      if (holder.fake) await holder.fake.handle(req, res);
    });
    holder.fake = new FakeSalesforceServer(server, url, options);
    return holder.fake;
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  // ---------------------------------------------------------------- data helpers for tests

  /** Inserts records directly (no API call). All get the same SystemModstamp unless given. */
  insert(object: string, rows: readonly Record<string, SoqlValue>[], modstampMs?: number): string[] {
    const stamp = modstampMs ?? this.nextStamp();
    return rows.map((row) => this.writeRecord(object, undefined, row, stamp).id);
  }

  update(object: string, id: string, fields: Record<string, SoqlValue>, modstampMs?: number): void {
    this.writeRecord(object, id, fields, modstampMs ?? this.nextStamp());
  }

  delete(object: string, id: string, atMs?: number): void {
    const table = this.table(object);
    const record = table.get(id);
    if (!record) return;
    table.delete(id);
    for (const ext of SCHEMA[object].externalIds) {
      const value = record[ext];
      if (typeof value === "string") this.extIndex.get(`${object}.${ext}`)?.delete(value);
    }
    const list = this.tombstones.get(object) ?? [];
    list.push({ id, deletedAt: atMs ?? this.nextStamp() });
    this.tombstones.set(object, list);
  }

  all(object: string): SfRecord[] {
    return [...this.table(object).values()];
  }

  count(object: string): number {
    return this.table(object).size;
  }

  findByExternalId(object: string, field: string, value: string): SfRecord | undefined {
    const id = this.extIndex.get(`${object}.${field}`)?.get(value);
    return id ? this.table(object).get(id) : undefined;
  }

  // ---------------------------------------------------------------- failure injection

  /** Invalidates every issued access token: the next API call gets 401 INVALID_SESSION_ID. */
  expireTokens(): void {
    this.tokens.clear();
  }

  /** The next `count` calls of `kind` fail with `failure`. */
  failNext(kind: SfCallKind | "*", count: number, failure: SfFailure): void {
    this.failures.push({ kind, remaining: count, failure });
  }

  /** Records of `object` matching `test` fail individually (partial batch failure). */
  rejectRecords(object: string, test: (record: SfRecord) => SfFailure | undefined): void {
    this.rejectors.push({ object, test });
  }

  /** Simulates an admin deleting a field: queries naming it fail with INVALID_FIELD. */
  removeField(object: string, field: string): void {
    const set = this.removedFields.get(object) ?? new Set<string>();
    set.add(field);
    this.removedFields.set(object, set);
  }

  setBulkProcessingMs(ms: number): void {
    this.bulkProcessingMs = ms;
  }

  // ---------------------------------------------------------------- internals

  private table(object: string): Map<string, SfRecord> {
    const table = this.records.get(object);
    if (!table) throw new SoqlError(`sObject type '${object}' is not supported.`, "INVALID_TYPE");
    return table;
  }

  private hasField(object: string, field: string): boolean {
    return field in SCHEMA[object].fields && !this.removedFields.get(object)?.has(field);
  }

  /** SystemModstamp has one-second precision, so many records share a stamp (as in a real org). */
  private nextStamp(): number {
    const now = Math.floor(Date.now() / 1000) * 1000;
    this.lastStamp = Math.max(this.lastStamp, now);
    return this.lastStamp;
  }

  private newId(object: string): string {
    this.idCounter++;
    return `${SCHEMA[object].prefix}${String(this.idCounter).padStart(15, "0")}`;
  }

  private writeRecord(
    object: string,
    id: string | undefined,
    fields: Record<string, SoqlValue>,
    stampMs: number,
  ): { id: string; created: boolean } {
    const table = this.table(object);
    const existing = id ? table.get(id) : undefined;
    const recordId = existing ? String(existing.Id) : (id ?? this.newId(object));
    const stamp = sfDate(stampMs);
    const record: SfRecord = existing ?? { Id: recordId, CreatedDate: stamp };
    for (const [key, value] of Object.entries(fields)) {
      if (SYSTEM_FIELDS.has(key)) continue;
      record[key] = value;
    }
    record.LastModifiedDate = stamp;
    record.SystemModstamp = stamp;
    table.set(recordId, record);
    for (const ext of SCHEMA[object].externalIds) {
      const value = record[ext];
      if (typeof value === "string" && value !== "") {
        const key = `${object}.${ext}`;
        const index = this.extIndex.get(key) ?? new Map<string, string>();
        index.set(value, recordId);
        this.extIndex.set(key, index);
      }
    }
    return { id: recordId, created: !existing };
  }

  private upsertByExternalId(
    object: string,
    extField: string,
    fields: Record<string, SoqlValue>,
  ): { id: string; created: boolean } | SfFailure {
    for (const key of Object.keys(fields)) {
      if (key !== "attributes" && !this.hasField(object, key)) {
        return {
          status: 400,
          errorCode: "INVALID_FIELD",
          message: `No such column '${key}' on sobject of type ${object}`,
        };
      }
    }
    const extValue = fields[extField];
    if (typeof extValue !== "string" || extValue === "") {
      return { status: 400, errorCode: "MISSING_ARGUMENT", message: `${extField} not specified` };
    }
    for (const rejector of this.rejectors) {
      if (rejector.object !== object) continue;
      const failure = rejector.test(fields);
      if (failure) return failure;
    }
    const existingId = this.extIndex.get(`${object}.${extField}`)?.get(extValue);
    return this.writeRecord(object, existingId, fields, this.nextStamp());
  }

  private classify(method: string, path: string): SfCallKind {
    if (path.startsWith("/services/oauth2/")) return "auth";
    if (path.includes("/jobs/ingest")) return "bulk";
    if (path.includes("/composite/sobjects")) return "collection";
    if (/\/query\/[^/]+$/.test(path)) return "queryMore";
    if (/\/query\/?$/.test(path)) return "query";
    if (path.endsWith("/describe")) return "describe";
    if (/\/sobjects\/[^/]+\/deleted$/.test(path)) return "deleted";
    if (path.endsWith("/limits")) return "limits";
    if (method === "PATCH" && /\/sobjects\/[^/]+\/[^/]+\/[^/]+$/.test(path)) return "upsert";
    return "other";
  }

  private takeFailure(kind: SfCallKind): SfFailure | undefined {
    for (const entry of this.failures) {
      if ((entry.kind === kind || entry.kind === "*") && entry.remaining > 0) {
        entry.remaining--;
        return entry.failure;
      }
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const method = req.method ?? "GET";
    const kind = this.classify(method, url.pathname);
    this.calls.add(kind);
    const body = await readBody(req);

    if (kind === "auth") return this.handleToken(url.pathname, body, res);

    const auth = req.headers.authorization ?? "";
    const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    if (!this.tokens.has(token)) {
      return send(res, 401, [{ message: "Session expired or invalid", errorCode: "INVALID_SESSION_ID" }]);
    }
    this.apiUsed++;
    const limitHeader = { "sforce-limit-info": `api-usage=${this.apiUsed}/${this.dailyLimit}` };
    if (this.apiUsed > this.dailyLimit) {
      return send(
        res,
        403,
        [{ message: "TotalRequests Limit exceeded.", errorCode: "REQUEST_LIMIT_EXCEEDED" }],
        limitHeader,
      );
    }
    const failure = this.takeFailure(kind);
    if (failure)
      return send(res, failure.status, [{ message: failure.message, errorCode: failure.errorCode }], limitHeader);

    const match = /^\/services\/data\/v(\d+\.\d+)(\/.*)?$/.exec(url.pathname);
    if (!match)
      return send(
        res,
        404,
        [{ message: "The requested resource does not exist", errorCode: "NOT_FOUND" }],
        limitHeader,
      );
    const version = match[1];
    const rest = match[2] ?? "/";
    try {
      await this.route(method, version, rest, url, body, req, res, limitHeader);
    } catch (error) {
      if (error instanceof SoqlError) {
        return send(res, 400, [{ message: error.message, errorCode: error.errorCode }], limitHeader);
      }
      throw error;
    }
  }

  private handleToken(path: string, body: string, res: ServerResponse): void {
    if (path !== "/services/oauth2/token") return send(res, 404, { error: "not_found" });
    const params = new URLSearchParams(body);
    const grant = params.get("grant_type");
    const deny = (description: string): void =>
      send(res, 400, { error: "invalid_grant", error_description: description });
    if (grant === "client_credentials") {
      if (params.get("client_id") !== this.clientId || params.get("client_secret") !== this.clientSecret) {
        return send(res, 400, { error: "invalid_client", error_description: "invalid client credentials" });
      }
      return this.issueToken(res, false);
    }
    if (grant === "refresh_token") {
      if (params.get("client_id") !== this.clientId)
        return send(res, 400, { error: "invalid_client_id", error_description: "client identifier invalid" });
      if (params.get("refresh_token") !== this.refreshToken) return deny("expired access/refresh token");
      return this.issueToken(res, false);
    }
    if (grant === "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      const problem = this.checkJwt(params.get("assertion") ?? "");
      if (problem) return deny(problem);
      return this.issueToken(res, false);
    }
    if (grant === "authorization_code") return this.issueToken(res, true);
    return send(res, 400, { error: "unsupported_grant_type", error_description: "grant type not supported" });
  }

  private checkJwt(assertion: string): string | undefined {
    const parts = assertion.split(".");
    if (parts.length !== 3) return "invalid assertion";
    if (!this.jwtPublicKey) return "JWT bearer flow not configured";
    let header: { alg?: string };
    let claims: { iss?: string; sub?: string; aud?: string; exp?: number };
    try {
      header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
      claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
    } catch {
      return "invalid assertion";
    }
    if (header.alg !== "RS256") return "invalid assertion algorithm";
    const ok = verifySignature(
      "RSA-SHA256",
      Buffer.from(`${parts[0]}.${parts[1]}`),
      this.jwtPublicKey,
      Buffer.from(parts[2], "base64url"),
    );
    if (!ok) return "invalid assertion signature";
    if (claims.iss !== this.clientId) return "invalid client id in assertion";
    if (claims.sub !== this.username) return "user hasn't approved this consumer";
    if (typeof claims.exp !== "number" || claims.exp * 1000 < Date.now()) return "expired assertion";
    if (typeof claims.aud !== "string" || claims.aud === "") return "audience is invalid";
    return undefined;
  }

  private issueToken(res: ServerResponse, withRefresh: boolean): void {
    const token = `00D!${randomBytes(24).toString("base64url")}`;
    this.tokens.add(token);
    send(res, 200, {
      access_token: token,
      ...(withRefresh ? { refresh_token: this.refreshToken } : {}),
      instance_url: this.url,
      id: `${this.url}/id/${ORG_ID}/${USER_ID}`,
      token_type: "Bearer",
      issued_at: String(Date.now()),
      signature: randomBytes(16).toString("base64"),
      scope: "api",
    });
  }

  private async route(
    method: string,
    version: string,
    rest: string,
    url: URL,
    body: string,
    req: IncomingMessage,
    res: ServerResponse,
    headers: Record<string, string>,
  ): Promise<void> {
    const segments = rest
      .split("/")
      .filter((s) => s !== "")
      .map(decodeURIComponent);
    const invalid = (message: string, errorCode = "INVALID_FIELD", status = 400): void =>
      send(res, status, [{ message, errorCode, fields: [] }], headers);

    if (segments[0] === "limits" && method === "GET") {
      return send(
        res,
        200,
        { DailyApiRequests: { Max: this.dailyLimit, Remaining: Math.max(0, this.dailyLimit - this.apiUsed) } },
        headers,
      );
    }
    if (segments[0] === "query" && method === "GET") {
      if (segments.length === 2) return this.queryMore(segments[1], version, res, headers);
      const soql = url.searchParams.get("q") ?? "";
      const batchMatch = /batchSize=(\d+)/.exec(String(req.headers["sforce-query-options"] ?? ""));
      const batchSize = Math.min(2000, Math.max(200, batchMatch ? Number(batchMatch[1]) : 2000));
      return this.query(soql, batchSize, version, res, headers);
    }
    if (segments[0] === "sobjects" && segments.length === 3 && segments[2] === "describe" && method === "GET") {
      const spec = SCHEMA[segments[1]];
      if (!spec) return invalid(`sObject type '${segments[1]}' is not supported.`, "NOT_FOUND", 404);
      return send(
        res,
        200,
        {
          name: segments[1],
          fields: Object.entries(spec.fields)
            .filter(([name]) => this.hasField(segments[1], name))
            .map(([name, type]) => ({
              name,
              type,
              externalId: spec.externalIds.includes(name),
              updateable: !SYSTEM_FIELDS.has(name),
            })),
        },
        headers,
      );
    }
    if (segments[0] === "sobjects" && segments.length === 3 && segments[2] === "deleted" && method === "GET") {
      const object = segments[1];
      if (!SCHEMA[object]) return invalid(`sObject type '${object}' is not supported.`, "NOT_FOUND", 404);
      const start = parseSoqlDate(url.searchParams.get("start") ?? "");
      const end = parseSoqlDate(url.searchParams.get("end") ?? "");
      // The service covers whole minutes: latestDateCovered is `end` rounded down to the minute.
      const covered = Math.floor(end / 60_000) * 60_000;
      const deletedRecords = (this.tombstones.get(object) ?? [])
        .filter((t) => t.deletedAt >= start && t.deletedAt < covered)
        .map((t) => ({ id: t.id, deletedDate: sfDate(t.deletedAt) }));
      return send(
        res,
        200,
        { deletedRecords, earliestDateAvailable: sfDate(0), latestDateCovered: sfDate(covered) },
        headers,
      );
    }
    if (segments[0] === "sobjects" && segments.length === 4 && method === "PATCH") {
      const [, object, extField, extValue] = segments;
      if (!SCHEMA[object]) return invalid(`sObject type '${object}' is not supported.`, "NOT_FOUND", 404);
      const fields = JSON.parse(body) as Record<string, SoqlValue>;
      const result = this.upsertByExternalId(object, extField, { ...fields, [extField]: extValue });
      if ("errorCode" in result)
        return send(
          res,
          result.status,
          [{ message: result.message, errorCode: result.errorCode, fields: [] }],
          headers,
        );
      return send(
        res,
        result.created ? 201 : 200,
        { id: result.id, success: true, errors: [], created: result.created },
        headers,
      );
    }
    if (segments[0] === "composite" && segments[1] === "sobjects" && segments.length === 4 && method === "PATCH") {
      const [, , object, extField] = segments;
      const payload = JSON.parse(body) as { allOrNone?: boolean; records?: Record<string, SoqlValue>[] };
      const records = payload.records ?? [];
      if (records.length > 200) return invalid("Maximum number of records in a collection is 200", "EXCEEDED_ID_LIMIT");
      const results = records.map((record) => {
        const { attributes: _attributes, ...fields } = record;
        const result = this.upsertByExternalId(object, extField, fields);
        if ("errorCode" in result) {
          return { success: false, errors: [{ statusCode: result.errorCode, message: result.message, fields: [] }] };
        }
        return { id: result.id, success: true, errors: [], created: result.created };
      });
      return send(res, 200, results, headers);
    }
    if (segments[0] === "jobs" && segments[1] === "ingest")
      return this.bulk(method, segments.slice(2), body, res, headers);
    return invalid("The requested resource does not exist", "NOT_FOUND", 404);
  }

  private query(
    soql: string,
    batchSize: number,
    version: string,
    res: ServerResponse,
    headers: Record<string, string>,
  ): void {
    const query = parseSoql(soql);
    const table = this.table(query.object);
    for (const field of [...query.fields, ...exprFields(query.where), ...query.orderBy.map((o) => o.field)]) {
      if (!this.hasField(query.object, field)) {
        throw new SoqlError(
          `\n${query.fields.join(", ")} FROM ${query.object}\n^\nERROR at Row:1:Column:8\nNo such column '${field}' on entity '${query.object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.`,
          "INVALID_FIELD",
        );
      }
    }
    let matches = [...table.values()];
    if (query.where) {
      const where = query.where;
      matches = matches.filter((record) => evaluate(where, record));
    }
    if (query.orderBy.length > 0) matches.sort(compareBy(query.orderBy));
    if (query.limit !== undefined) matches = matches.slice(0, query.limit);
    const cursor: QueryCursor = {
      object: query.object,
      fields: query.fields,
      ids: matches.map((r) => String(r.Id)),
      offset: 0,
      batchSize,
    };
    this.page(cursor, version, res, headers);
  }

  private queryMore(locator: string, version: string, res: ServerResponse, headers: Record<string, string>): void {
    const cursor = this.cursors.get(locator.split("-")[0]);
    if (!cursor)
      return send(res, 400, [{ message: "invalid query locator", errorCode: "INVALID_QUERY_LOCATOR" }], headers);
    this.page(cursor, version, res, headers, locator.split("-")[0]);
  }

  private page(
    cursor: QueryCursor,
    version: string,
    res: ServerResponse,
    headers: Record<string, string>,
    locatorId?: string,
  ): void {
    const table = this.table(cursor.object);
    const slice = cursor.ids.slice(cursor.offset, cursor.offset + cursor.batchSize);
    cursor.offset += slice.length;
    const records = slice.flatMap((id) => {
      const record = table.get(id);
      if (!record) return [];
      const out: Record<string, unknown> = {
        attributes: { type: cursor.object, url: `/services/data/v${version}/sobjects/${cursor.object}/${id}` },
      };
      for (const field of cursor.fields) out[field] = record[field] ?? null;
      return [out];
    });
    const done = cursor.offset >= cursor.ids.length;
    let nextRecordsUrl: string | undefined;
    if (!done) {
      const id = locatorId ?? `01g${String(++this.locatorCounter).padStart(12, "0")}`;
      this.cursors.set(id, cursor);
      nextRecordsUrl = `/services/data/v${version}/query/${id}-${cursor.offset}`;
    } else if (locatorId) this.cursors.delete(locatorId);
    send(
      res,
      200,
      { totalSize: cursor.ids.length, done, ...(nextRecordsUrl ? { nextRecordsUrl } : {}), records },
      headers,
    );
  }

  private bulk(
    method: string,
    segments: string[],
    body: string,
    res: ServerResponse,
    headers: Record<string, string>,
  ): void {
    const notFound = (): void =>
      send(res, 404, [{ message: "The requested resource does not exist", errorCode: "NOT_FOUND" }], headers);
    if (segments.length === 0 && method === "POST") {
      const spec = JSON.parse(body) as {
        object?: string;
        operation?: string;
        externalIdFieldName?: string;
        contentType?: string;
      };
      if (!spec.object || !SCHEMA[spec.object])
        return send(
          res,
          400,
          [{ message: `sObject type '${spec.object}' is not supported`, errorCode: "INVALIDENTITY" }],
          headers,
        );
      if (spec.operation !== "upsert" && spec.operation !== "insert")
        return send(res, 400, [{ message: "unsupported operation", errorCode: "API_ERROR" }], headers);
      const id = `750${String(this.jobs.size + 1).padStart(15, "0")}`;
      const job: BulkJob = {
        id,
        object: spec.object,
        operation: spec.operation,
        externalIdFieldName: spec.externalIdFieldName,
        state: "Open",
        csv: "",
        completeAt: 0,
        successful: [],
        failed: [],
        header: [],
        processed: 0,
      };
      this.jobs.set(id, job);
      return send(res, 200, this.jobInfo(job), headers);
    }
    const job = this.jobs.get(segments[0] ?? "");
    if (!job) return notFound();
    if (segments.length === 2 && segments[1] === "batches" && method === "PUT") {
      if (job.state !== "Open")
        return send(res, 400, [{ message: "Job is not open", errorCode: "INVALIDJOBSTATE" }], headers);
      job.csv += body;
      return send(res, 201, undefined, headers);
    }
    if (segments.length === 1 && method === "PATCH") {
      const { state } = JSON.parse(body) as { state?: string };
      if (state === "UploadComplete") {
        this.processJob(job);
      } else if (state === "Aborted") job.state = "Aborted";
      return send(res, 200, this.jobInfo(job), headers);
    }
    if (segments.length === 1 && method === "GET") {
      if (job.state === "UploadComplete" && Date.now() >= job.completeAt)
        job.state = job.errorMessage ? "Failed" : "JobComplete";
      return send(res, 200, this.jobInfo(job), headers);
    }
    if (segments.length === 1 && method === "DELETE") {
      this.jobs.delete(job.id);
      return send(res, 204, undefined, headers);
    }
    if (segments.length === 2 && method === "GET") {
      const csvHeaders = { ...headers };
      if (segments[1] === "successfulResults")
        return send(
          res,
          200,
          this.toCsv(["sf__Id", "sf__Created", ...job.header], job.successful),
          csvHeaders,
          "text/csv",
        );
      if (segments[1] === "failedResults")
        return send(res, 200, this.toCsv(["sf__Id", "sf__Error", ...job.header], job.failed), csvHeaders, "text/csv");
      if (segments[1] === "unprocessedrecords")
        return send(res, 200, this.toCsv(job.header, []), csvHeaders, "text/csv");
    }
    return notFound();
  }

  private toCsv(header: string[], rows: string[][]): string {
    return [header, ...rows].map((row) => row.map(csvEscape).join(",")).join("\n") + "\n";
  }

  private processJob(job: BulkJob): void {
    job.state = "UploadComplete";
    job.completeAt = Date.now() + this.bulkProcessingMs;
    const rows = parseCsv(job.csv);
    const header = rows.shift() ?? [];
    job.header = header;
    const unknown = header.find((column) => !this.hasField(job.object, column));
    if (unknown) {
      job.errorMessage = `InvalidBatch : Field name not found : ${unknown}`;
      return;
    }
    const types = SCHEMA[job.object].fields;
    for (const row of rows) {
      const fields: Record<string, SoqlValue> = {};
      header.forEach((column, i) => {
        const raw = row[i] ?? "";
        if (raw === "") return;
        if (raw === "#N/A") fields[column] = null;
        else if (types[column] === "double") fields[column] = Number(raw);
        else if (types[column] === "boolean") fields[column] = raw === "true";
        else fields[column] = raw;
      });
      job.processed++;
      const result =
        job.operation === "upsert" && job.externalIdFieldName
          ? this.upsertByExternalId(job.object, job.externalIdFieldName, fields)
          : this.writeRecord(job.object, undefined, fields, this.nextStamp());
      if ("errorCode" in result) job.failed.push(["", `${result.errorCode}:${result.message}:--`, ...row]);
      else job.successful.push([result.id, String(result.created), ...row]);
    }
    job.csv = "";
  }

  private jobInfo(job: BulkJob): Record<string, unknown> {
    return {
      id: job.id,
      operation: job.operation,
      object: job.object,
      createdById: USER_ID,
      createdDate: sfDate(Date.now()),
      systemModstamp: sfDate(Date.now()),
      state: job.state,
      externalIdFieldName: job.externalIdFieldName,
      concurrencyMode: "Parallel",
      contentType: "CSV",
      apiVersion: 62.0,
      contentUrl: `services/data/v62.0/jobs/ingest/${job.id}/batches`,
      lineEnding: "LF",
      columnDelimiter: "COMMA",
      numberRecordsProcessed: job.processed,
      numberRecordsFailed: job.failed.length,
      retries: 0,
      totalProcessingTime: 0,
      apiActiveProcessingTime: 0,
      apexProcessingTime: 0,
      jobType: "V2Ingest",
      ...(job.errorMessage && job.state === "Failed" ? { errorMessage: job.errorMessage } : {}),
    };
  }
}
