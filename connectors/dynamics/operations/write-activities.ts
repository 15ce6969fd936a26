/**
 * Outbound: hub activities become Dataverse activity records (task by default, or phonecall…),
 * upserted by an alternate key holding the hub activity id so redelivery never duplicates.
 * Activity entities: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/activity-entities
 * Task: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/entities/task
 */
import { optionString, type ActivityWrite, type WriteOutcome } from "../../contract";
import type { DynamicsTransport } from "../transport";
import { createBatchUpsert } from "./batch-upsert";

export function createWriteActivities(transport: DynamicsTransport) {
  const batchUpsert = createBatchUpsert(transport);
  return async function writeActivities(activities: readonly ActivityWrite[]): Promise<WriteOutcome> {
    const entity = optionString(transport.options, "activityEntity");
    const keyField = optionString(transport.options, "activityAlternateKey");
    const leadField = optionString(transport.options, "activityLeadField");
    return batchUpsert(
      entity,
      activities.map((activity) => ({
        resultKey: activity.activityId,
        keyField,
        keyValue: activity.activityId,
        data: {
          subject: activity.subject.slice(0, 200),
          description: activity.description.slice(0, 2000),
          scheduledend: activity.occurredAt,
          [leadField]: activity.leadKey,
        },
      })),
    );
  };
}
