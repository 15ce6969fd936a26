import { optionNumber, optionString, type WriteOutcome } from "../contract";
import { createBulkIngest } from "./operations/bulk-ingest";
import { createCollectionUpsert, createSingleUpsert, type SfWriteRecord } from "./operations/collection-upsert";
import type { SalesforceTransport } from "./transport";

/**
 * Picks the cheapest API path for a write: Bulk API 2.0 at or above `bulkThreshold` records,
 * sObject Collections below it, one call per record only when `writeMode` is "single" (baseline).
 */
export function createUpsertRecords(transport: SalesforceTransport) {
  const bulk = createBulkIngest(transport);
  const collection = createCollectionUpsert(transport);
  const single = createSingleUpsert(transport);
  return async function upsertRecords(
    object: string,
    externalIdField: string,
    records: readonly SfWriteRecord[],
  ): Promise<WriteOutcome> {
    if (records.length === 0) return { path: "collection", results: [] };
    if (optionString(transport.options, "writeMode") === "single") {
      return { path: "single", results: await single(object, externalIdField, records) };
    }
    if (records.length >= optionNumber(transport.options, "bulkThreshold")) {
      return { path: "bulk", results: await bulk(object, externalIdField, records) };
    }
    return { path: "collection", results: await collection(object, externalIdField, records) };
  };
}
