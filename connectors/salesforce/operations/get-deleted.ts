/**
 * Inbound deletions: `sobjects/{type}/deleted/?start=…&end=…` (getDeleted). The service covers
 * whole minutes and keeps about 15–30 days; `latestDateCovered` becomes the next start.
 * https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_getdeleted.htm
 */
import type { CrmDeletion } from "../../contract";
import type { SalesforceTransport } from "../transport";

const MIN_WINDOW_MS = 60_000;
const MAX_AGE_MS = 29 * 24 * 3600_000;

export function createGetDeleted(transport: SalesforceTransport) {
  return async function getDeleted(
    object: string,
    sinceIso: string,
    untilMs: number,
  ): Promise<{ deletions: CrmDeletion[]; coveredUntil: string } | undefined> {
    let startMs = Date.parse(sinceIso);
    if (Number.isNaN(startMs) || untilMs - startMs < MIN_WINDOW_MS) return undefined;
    if (untilMs - startMs > MAX_AGE_MS) {
      transport.logger?.warn("salesforce deletions older than the retention window are lost; run a full resync", {
        object,
        since: sinceIso,
      });
      startMs = untilMs - MAX_AGE_MS;
    }
    const result = await transport.call(1, async () =>
      transport.conn.deleted(object, new Date(startMs), new Date(untilMs)),
    );
    const deletions = result.deletedRecords.map((record) => ({
      object,
      id: record.id,
      deletedAt: new Date(Date.parse(record.deletedDate.replace(/([+-]\d{2})(\d{2})$/, "$1:$2"))).toISOString(),
    }));
    const covered = Date.parse(result.latestDateCovered.replace(/([+-]\d{2})(\d{2})$/, "$1:$2"));
    const coveredUntil = new Date(Number.isNaN(covered) ? startMs : Math.max(covered, startMs))
      .toISOString()
      .replace(".000Z", "Z");
    return { deletions, coveredUntil };
  };
}
