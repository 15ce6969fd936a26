/**
 * Mid-volume writes: sObject Collections upsert by external id, 200 records per call,
 * `allOrNone: false` so one bad record does not sink the other 199.
 * https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm
 * Single-record upsert (the one-call-per-record baseline):
 * https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_upsert.htm
 */
import type { Record as SfRecord } from "jsforce";
import type { FieldValue, WriteResult } from "../../contract";
import { ConnectorError } from "../../errors";
import type { SalesforceTransport } from "../transport";

const COLLECTION_LIMIT = 200;
const RETRIABLE_RECORD_ERRORS = new Set(["UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"]);

export type SfWriteRecord = Readonly<Record<string, FieldValue>>;

function firstError(result: unknown): { code: string; message: string } {
  const errors: unknown = typeof result === "object" && result !== null ? Reflect.get(result, "errors") : undefined;
  const first: unknown = Array.isArray(errors) ? errors[0] : undefined;
  if (typeof first !== "object" || first === null)
    return { code: "UNKNOWN", message: "record failed without an error" };
  const code: unknown = Reflect.get(first, "statusCode") ?? Reflect.get(first, "errorCode");
  const message: unknown = Reflect.get(first, "message");
  return { code: typeof code === "string" ? code : "UNKNOWN", message: typeof message === "string" ? message : "" };
}

function toWriteResult(key: string, result: unknown): WriteResult {
  const success = typeof result === "object" && result !== null && Reflect.get(result, "success") === true;
  if (success) {
    const id: unknown = Reflect.get(result, "id");
    const created: unknown = Reflect.get(result, "created");
    return {
      key,
      ok: true,
      ...(typeof id === "string" ? { crmId: id } : {}),
      ...(typeof created === "boolean" ? { created } : {}),
    };
  }
  const { code, message } = firstError(result);
  return { key, ok: false, code, message, retriable: RETRIABLE_RECORD_ERRORS.has(code) };
}

function toSfRecord(record: SfWriteRecord): SfRecord {
  return { ...record };
}

export function createCollectionUpsert(transport: SalesforceTransport) {
  return async function collectionUpsert(
    object: string,
    externalIdField: string,
    records: readonly SfWriteRecord[],
  ): Promise<WriteResult[]> {
    const results: WriteResult[] = [];
    for (let offset = 0; offset < records.length; offset += COLLECTION_LIMIT) {
      const chunk = records.slice(offset, offset + COLLECTION_LIMIT);
      const saved = await transport.call(1, async () =>
        transport.conn.upsert(object, chunk.map(toSfRecord), externalIdField, { allOrNone: false }),
      );
      chunk.forEach((record, i) => results.push(toWriteResult(String(record[externalIdField]), saved[i])));
    }
    return results;
  };
}

export function createSingleUpsert(transport: SalesforceTransport) {
  return async function singleUpsert(
    object: string,
    externalIdField: string,
    records: readonly SfWriteRecord[],
  ): Promise<WriteResult[]> {
    const results: WriteResult[] = [];
    for (const record of records) {
      const key = String(record[externalIdField]);
      try {
        const saved = await transport.call(1, async () =>
          transport.conn.upsert(object, toSfRecord(record), externalIdField),
        );
        results.push(toWriteResult(key, saved));
      } catch (error) {
        if (
          !(error instanceof ConnectorError) ||
          error.connectorCode === "connector_auth_failed" ||
          error.connectorCode === "connector_quota_exhausted"
        ) {
          throw error;
        }
        results.push({
          key,
          ok: false,
          code: error.vendorCode ?? error.code,
          message: error.message,
          retriable: error.retriable,
        });
      }
    }
    return results;
  };
}
