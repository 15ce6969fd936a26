/**
 * Outbound: lead scores written to a number field on Lead, addressed by the external id.
 * https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm
 */
import { optionString, type ScoreWrite, type WriteOutcome } from "../../contract";
import type { SalesforceTransport } from "../transport";
import { createUpsertRecords } from "../write-path";

export function createUpdateScores(transport: SalesforceTransport) {
  const upsertRecords = createUpsertRecords(transport);
  return async function updateScores(scores: readonly ScoreWrite[]): Promise<WriteOutcome> {
    const keyField = optionString(transport.options, "leadExternalIdField");
    const scoreField = optionString(transport.options, "scoreField");
    return upsertRecords(
      "Lead",
      keyField,
      scores.map((score) => ({ [keyField]: score.leadKey, [scoreField]: score.score })),
    );
  };
}
