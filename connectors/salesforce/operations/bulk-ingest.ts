/**
 * High-volume writes: one Bulk API 2.0 ingest job (create → upload CSV → UploadComplete →
 * poll → successful/failed results), about six calls for up to 150 MB of CSV.
 * https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/walkthrough_upload_data.htm
 * CSV rules (#N/A is null): https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/datafiles_prepare_csv.htm
 * Results: https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/get_job_successful_results.htm
 */
import { optionNumber, type FieldValue, type WriteResult } from "../../contract";
import { ConnectorError } from "../../errors";
import type { SalesforceTransport } from "../transport";
import type { SfWriteRecord } from "./collection-upsert";

/** Calls one ingest job costs when the first poll already sees JobComplete. */
export const BULK_JOB_CALLS = 6;

function csvCell(value: FieldValue | undefined): string {
  if (value === undefined) return "";
  if (value === null) return "#N/A";
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(records: readonly SfWriteRecord[]): string {
  const columns = [...new Set(records.flatMap((record) => Object.keys(record)))];
  const lines = [columns.join(",")];
  for (const record of records) lines.push(columns.map((column) => csvCell(record[column])).join(","));
  return lines.join("\n") + "\n";
}

function rowValue(row: unknown, column: string): string {
  const value: unknown = typeof row === "object" && row !== null ? Reflect.get(row, column) : undefined;
  return value === undefined || value === null ? "" : String(value);
}

export function createBulkIngest(transport: SalesforceTransport) {
  return async function bulkIngest(
    object: string,
    externalIdField: string,
    records: readonly SfWriteRecord[],
  ): Promise<WriteResult[]> {
    const csv = toCsv(records);
    const interval = optionNumber(transport.options, "bulkPollIntervalMs");
    const timeout = optionNumber(transport.options, "bulkPollTimeoutMs");
    const { successful, failed } = await transport.call(BULK_JOB_CALLS, async () => {
      const job = transport.conn.bulk2.createJob({
        object,
        operation: "upsert",
        externalIdFieldName: externalIdField,
        lineEnding: "LF",
      });
      job.on("error", () => undefined);
      await job.open();
      await job.uploadData(csv);
      await job.close();
      try {
        await job.poll(interval, timeout);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (/Field name not found|InvalidBatch/i.test(message)) {
          throw new ConnectorError("connector_invalid_field", message, { vendorCode: "INVALID_FIELD" });
        }
        throw error;
      }
      return { successful: await job.getSuccessfulResults(), failed: await job.getFailedResults() };
    });
    const byKey = new Map<string, WriteResult>();
    for (const row of successful) {
      const key = rowValue(row, externalIdField);
      byKey.set(key, {
        key,
        ok: true,
        crmId: rowValue(row, "sf__Id"),
        created: rowValue(row, "sf__Created") === "true",
      });
    }
    for (const row of failed) {
      const key = rowValue(row, externalIdField);
      const error = rowValue(row, "sf__Error");
      const code = error.split(":")[0] || "UNKNOWN";
      byKey.set(key, { key, ok: false, code, message: error, retriable: code === "UNABLE_TO_LOCK_ROW" });
    }
    return records.map((record) => {
      const key = String(record[externalIdField]);
      return (
        byKey.get(key) ?? {
          key,
          ok: false,
          code: "UNPROCESSED",
          message: "record not processed by the bulk job",
          retriable: true,
        }
      );
    });
  };
}
