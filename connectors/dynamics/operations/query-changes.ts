/**
 * Inbound: change tracking. The first read sends `Prefer: odata.track-changes` and pages through
 * every row (`@odata.nextLink`); the last page carries `@odata.deltaLink`, which later returns only
 * rows changed since, plus `$deletedEntity` entries for deletions. The cursor is the link to
 * continue from, stored after each page, so a crash resumes at the next page.
 * https://learn.microsoft.com/en-us/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems
 * Paging: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/page-results
 */
import type { RetrieveMultipleRequest } from "dynamics-web-api";
import { optionNumber, type ChangePage, type CrmDeletion, type CrmRecord, type FieldValue } from "../../contract";
import { ConnectorError } from "../../errors";
import { PRIMARY_KEYS } from "../manifest";
import type { DynamicsTransport } from "../transport";

/** Dataverse: the delta token is older than the change-tracking retention; resync needed. */
const EXPIRED_TOKEN = "0x80044352";

function primaryKey(collection: string): string {
  return PRIMARY_KEYS[collection] ?? `${collection.replace(/ies$/, "y").replace(/s$/, "")}id`;
}

function scalar(value: unknown): FieldValue | undefined {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean" || value === null)
    return value;
  return undefined;
}

function isDeleted(item: Record<string, unknown>): boolean {
  const context = item["@odata.context"] ?? item["oDataContext"];
  return item["reason"] === "deleted" || (typeof context === "string" && context.endsWith("/$deletedEntity"));
}

export function parseDynamicsCursor(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const value: unknown = JSON.parse(text);
  const link: unknown = typeof value === "object" && value !== null ? Reflect.get(value, "link") : undefined;
  return typeof link === "string" ? link : undefined;
}

export function createQueryChanges(transport: DynamicsTransport) {
  return async function* queryChanges(
    collection: string,
    fields: readonly string[],
    cursorText: string | undefined,
  ): AsyncIterable<ChangePage> {
    const pk = primaryKey(collection);
    const select = [...new Set([pk, "modifiedon", ...fields])];
    const request: RetrieveMultipleRequest = {
      collection,
      select,
      trackChanges: true,
      maxPageSize: optionNumber(transport.options, "pageSize"),
    };
    let link = parseDynamicsCursor(cursorText);
    for (let pages = 0; pages < 1_000_000; pages++) {
      const from = link;
      let response;
      try {
        response = await transport.call(1, async () =>
          transport.api.retrieveMultiple<Record<string, unknown>>(request, from),
        );
      } catch (error) {
        if (from && error instanceof ConnectorError && error.vendorCode === EXPIRED_TOKEN) {
          transport.logger?.warn("dynamics delta token expired; restarting a full change-tracking read", {
            collection,
          });
          link = undefined;
          continue;
        }
        throw error;
      }
      const records: CrmRecord[] = [];
      const deletions: CrmDeletion[] = [];
      const now = new Date().toISOString();
      for (const item of response.value) {
        if (isDeleted(item)) {
          deletions.push({ object: collection, id: String(item["id"]), deletedAt: now });
          continue;
        }
        const values: Record<string, FieldValue> = {};
        for (const name of fields) {
          const value = scalar(item[name]);
          if (value !== undefined) values[name] = value;
        }
        const modified = scalar(item["modifiedon"]);
        records.push({
          object: collection,
          id: String(item[pk]),
          modifiedAt: typeof modified === "string" ? modified : now,
          fields: values,
        });
      }
      const next = response.oDataNextLink;
      const delta = response.oDataDeltaLink;
      link = next ?? delta ?? from;
      const cursor = JSON.stringify({ link });
      if (records.length > 0 || deletions.length > 0 || !next) yield { records, deletions, cursor };
      if (!next) return;
    }
  };
}
