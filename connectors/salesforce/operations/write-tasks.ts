/**
 * Outbound: hub activities become completed Tasks, upserted by the activity id held in an
 * external id field on Task, so a redelivered activity updates the same Task.
 * Task object: https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm
 */
import { optionString, type ActivityWrite, type WriteOutcome } from "../../contract";
import type { SalesforceTransport } from "../transport";
import { createUpsertRecords } from "../write-path";

export function createWriteTasks(transport: SalesforceTransport) {
  const upsertRecords = createUpsertRecords(transport);
  return async function writeTasks(activities: readonly ActivityWrite[]): Promise<WriteOutcome> {
    const idField = optionString(transport.options, "taskExternalIdField");
    const leadField = optionString(transport.options, "taskLeadField");
    return upsertRecords(
      "Task",
      idField,
      activities.map((activity) => ({
        [idField]: activity.activityId,
        [leadField]: activity.leadKey,
        Subject: activity.subject.slice(0, 255),
        Description: activity.description.slice(0, 32_000),
        ActivityDate: activity.occurredAt.slice(0, 10),
        Status: "Completed",
      })),
    );
  };
}
