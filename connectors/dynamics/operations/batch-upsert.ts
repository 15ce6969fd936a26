/**
 * Volume writes: up to 1,000 upserts per `$batch` request. By default all operations go in one
 * change set (atomic); if the change set fails, the same operations are re-sent as independent
 * requests with `Prefer: odata.continue-on-error` to learn which rows failed (one extra call).
 * https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api
 * Upsert by alternate key: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/use-upsert-insert-update-record
 */
import { optionNumber, optionString, type FieldValue, type WriteResult } from "../../contract";
import { ConnectorError } from "../../errors";
import { dynamicsErrorDetails, type DynamicsTransport } from "../transport";

export interface UpsertOp {
  /** Key reported back in WriteResult (lead key or activity id). */
  readonly resultKey: string;
  /** Alternate key column and value, e.g. hub_leadid / "L-1". */
  readonly keyField: string;
  readonly keyValue: string;
  readonly data: Readonly<Record<string, FieldValue>>;
  /** "*" = update only (never create). */
  readonly ifMatch?: "*";
}

export function alternateKey(field: string, value: string): string {
  return `${field}='${value.replace(/'/g, "''")}'`;
}

function failure(key: string, error: unknown): WriteResult {
  const { status, code, message } = dynamicsErrorDetails(error);
  return {
    key,
    ok: false,
    code: code || String(status || "ERROR"),
    message,
    retriable: status === 429 || status >= 500,
  };
}

export function createBatchUpsert(transport: DynamicsTransport) {
  async function send(collection: string, ops: readonly UpsertOp[], atomic: boolean): Promise<unknown[]> {
    return transport.call(1, async () => {
      const client = transport.newClient();
      client.startBatch();
      for (const op of ops) {
        await client.upsert({
          collection,
          key: alternateKey(op.keyField, op.keyValue),
          data: { ...op.data },
          ...(op.ifMatch ? { ifmatch: op.ifMatch } : {}),
        });
      }
      return client.executeBatch(atomic ? {} : { inChangeSet: false, continueOnError: true });
    });
  }

  async function single(collection: string, ops: readonly UpsertOp[]): Promise<WriteResult[]> {
    const results: WriteResult[] = [];
    for (const op of ops) {
      try {
        await transport.call(1, async () =>
          transport.api.upsert({
            collection,
            key: alternateKey(op.keyField, op.keyValue),
            data: { ...op.data },
            ...(op.ifMatch ? { ifmatch: op.ifMatch } : {}),
          }),
        );
        results.push({ key: op.resultKey, ok: true });
      } catch (error) {
        if (
          !(error instanceof ConnectorError) ||
          error.connectorCode === "connector_auth_failed" ||
          error.connectorCode === "connector_rate_limited"
        )
          throw error;
        results.push({
          key: op.resultKey,
          ok: false,
          code: error.vendorCode ?? error.code,
          message: error.message,
          retriable: error.retriable,
        });
      }
    }
    return results;
  }

  return async function batchUpsert(
    collection: string,
    ops: readonly UpsertOp[],
  ): Promise<{ path: "batch" | "single"; results: WriteResult[] }> {
    if (optionString(transport.options, "writeMode") === "single")
      return { path: "single", results: await single(collection, ops) };
    const size = Math.min(1000, Math.max(1, optionNumber(transport.options, "batchSize")));
    const atomic = optionString(transport.options, "batchMode") !== "independent";
    const results: WriteResult[] = [];
    for (let offset = 0; offset < ops.length; offset += size) {
      const chunk = ops.slice(offset, offset + size);
      let responses = await send(collection, chunk, atomic);
      const failed = responses.length !== chunk.length || responses.some((r) => r instanceof Error);
      if (failed && atomic) {
        // The change set was rolled back; learn per-row outcomes with an independent batch.
        responses = await send(collection, chunk, false);
      }
      chunk.forEach((op, i) => {
        const response = responses[i];
        if (response instanceof Error) results.push(failure(op.resultKey, response));
        else if (i >= responses.length)
          results.push({
            key: op.resultKey,
            ok: false,
            code: "UNPROCESSED",
            message: "not processed in batch",
            retriable: true,
          });
        else
          results.push({ key: op.resultKey, ok: true, ...(typeof response === "string" ? { crmId: response } : {}) });
      });
    }
    return { path: "batch", results };
  };
}
