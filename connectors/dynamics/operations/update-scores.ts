/**
 * Outbound: lead score updates. PATCH by alternate key with `If-Match: *` so a score never
 * creates a lead that does not exist (404 is reported per record instead).
 * https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api#prevent-create-in-upsert
 */
import { optionString, type ScoreWrite, type WriteOutcome } from "../../contract";
import type { DynamicsTransport } from "../transport";
import { createBatchUpsert } from "./batch-upsert";

export function createUpdateScores(transport: DynamicsTransport) {
  const batchUpsert = createBatchUpsert(transport);
  return async function updateScores(scores: readonly ScoreWrite[]): Promise<WriteOutcome> {
    const keyField = optionString(transport.options, "leadAlternateKey");
    const scoreField = optionString(transport.options, "scoreField");
    return batchUpsert(
      "leads",
      scores.map((score) => ({
        resultKey: score.leadKey,
        keyField,
        keyValue: score.leadKey,
        data: { [scoreField]: score.score },
        ifMatch: "*" as const,
      })),
    );
  };
}
