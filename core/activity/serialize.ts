import { partitionKeyOf, type Activity } from "./model";

const cache = new WeakMap<Activity, string>();

/**
 * The JSON form of an activity (schema version in the body), as queued and stored. Memoised per
 * object: the intake serialises each activity once even though the queue and the store both
 * need the text. Activities must not be mutated after they are first serialised.
 */
export function activityJson(activity: Activity): string {
  let json = cache.get(activity);
  if (json === undefined) {
    json = JSON.stringify(activity);
    cache.set(activity, json);
  }
  return json;
}

/**
 * The queue record of an activity: keyed by tenant and lead (order per lead), with routing
 * headers. The activity rides along for consumers in the same process (see `QueueRecord.decoded`).
 */
export function activityRecord(activity: Activity): {
  key: string;
  value: string;
  headers: Record<string, string>;
  decoded: Activity;
} {
  const value = activityJson(activity);
  return {
    key: partitionKeyOf(activity),
    value,
    headers: { tenant: activity.tenantId, type: activity.type, schema: String(activity.schemaVersion) },
    decoded: activity,
  };
}

/** The activity of a queue message: the publisher's object when the queue passed it, else parsed. */
export function activityOf(message: { value: string; decoded?: unknown }): Activity {
  return (message.decoded as Activity | undefined) ?? (JSON.parse(message.value) as Activity);
}
