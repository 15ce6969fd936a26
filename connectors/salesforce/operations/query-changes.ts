/**
 * Inbound: incremental read of one sObject by `SystemModstamp`, then its deletions.
 *
 * SOQL query + paging (nextRecordsUrl):
 * https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm
 * SystemModstamp as sync watermark:
 * https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/system_fields.htm
 * Batch size header (Sforce-Query-Options):
 * https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_queryoptions.htm
 */
import type { QueryResult, Record as SfRecord } from "jsforce";
import { optionNumber, type ChangePage, type CrmRecord, type FieldValue } from "../../contract";
import type { SalesforceTransport } from "../transport";
import { createGetDeleted } from "./get-deleted";

/**
 * Watermark of one object: the last (SystemModstamp, Id) handled — ties on the same second are
 * broken by Id, so a crash between two pages resumes exactly — and where deletions were read up to.
 */
export interface SalesforceCursor {
  readonly modstamp?: string;
  readonly lastId?: string;
  readonly deletedSince: string;
}

export function parseCursor(text: string | undefined): SalesforceCursor | undefined {
  if (!text) return undefined;
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null) return undefined;
  const modstamp: unknown = Reflect.get(value, "modstamp");
  const lastId: unknown = Reflect.get(value, "lastId");
  const deletedSince: unknown = Reflect.get(value, "deletedSince");
  if (typeof deletedSince !== "string") return undefined;
  return {
    deletedSince,
    ...(typeof modstamp === "string" ? { modstamp } : {}),
    ...(typeof lastId === "string" ? { lastId } : {}),
  };
}

/** SOQL dateTime literal (second precision, UTC). */
export function soqlDateTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

function soqlString(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function toIso(value: unknown): string {
  const ms = typeof value === "string" ? Date.parse(value.replace(/([+-]\d{2})(\d{2})$/, "$1:$2")) : NaN;
  return Number.isNaN(ms) ? new Date(0).toISOString() : new Date(ms).toISOString();
}

function toCrmRecord(object: string, fields: readonly string[], raw: SfRecord): CrmRecord {
  const values: Record<string, FieldValue> = {};
  for (const field of fields) {
    const value: unknown = raw[field];
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean" || value === null)
      values[field] = value;
  }
  return { object, id: String(raw.Id), modifiedAt: toIso(raw.SystemModstamp), fields: values };
}

export function buildChangesQuery(
  object: string,
  fields: readonly string[],
  cursor: SalesforceCursor | undefined,
  upperMs: number,
): string {
  const select = [...new Set(["Id", "SystemModstamp", ...fields])].join(", ");
  const upper = `SystemModstamp <= ${soqlDateTime(upperMs)}`;
  const after =
    cursor?.modstamp !== undefined
      ? `(SystemModstamp > ${cursor.modstamp} OR (SystemModstamp = ${cursor.modstamp} AND Id > ${soqlString(cursor.lastId ?? "")})) AND `
      : "";
  return `SELECT ${select} FROM ${object} WHERE ${after}${upper} ORDER BY SystemModstamp ASC, Id ASC`;
}

export function createQueryChanges(transport: SalesforceTransport) {
  const getDeleted = createGetDeleted(transport);
  return async function* queryChanges(
    object: string,
    fields: readonly string[],
    cursorText: string | undefined,
  ): AsyncIterable<ChangePage> {
    const lagMs = optionNumber(transport.options, "safetyLagSeconds") * 1000;
    const upperMs = Math.floor((Date.now() - lagMs) / 1000) * 1000;
    let cursor: SalesforceCursor = parseCursor(cursorText) ?? { deletedSince: soqlDateTime(upperMs) };
    const batchSize = Math.min(2000, Math.max(200, optionNumber(transport.options, "queryBatchSize")));
    const headers = { "Sforce-Query-Options": `batchSize=${batchSize}` };
    const pageOptions = {
      headers,
      autoFetch: false,
      maxFetch: Number.MAX_SAFE_INTEGER,
      scanAll: false,
      responseTarget: "QueryResult" as const,
    };
    const soql = buildChangesQuery(object, fields, cursor, upperMs);
    let page: QueryResult<SfRecord> = await transport.call(1, async () =>
      transport.conn.query<SfRecord>(soql, pageOptions),
    );
    for (let pages = 0; pages < 1_000_000; pages++) {
      const records = page.records.map((raw) => toCrmRecord(object, fields, raw));
      const last = page.records[page.records.length - 1];
      if (last)
        cursor = { ...cursor, modstamp: soqlDateTime(Date.parse(toIso(last.SystemModstamp))), lastId: String(last.Id) };
      if (records.length > 0) yield { records, deletions: [], cursor: JSON.stringify(cursor) };
      const next = page.nextRecordsUrl;
      if (page.done || !next) break;
      page = await transport.call(1, async () => transport.conn.queryMore<SfRecord>(next, pageOptions));
    }
    const deleted = await getDeleted(object, cursor.deletedSince, upperMs);
    if (deleted) {
      cursor = { ...cursor, deletedSince: deleted.coveredUntil };
      yield { records: [], deletions: deleted.deletions, cursor: JSON.stringify(cursor) };
    }
  };
}
