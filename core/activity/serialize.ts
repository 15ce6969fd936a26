import { partitionKeyOf, type Activity } from "./model";

/** Where an activity object keeps its JSON text: a non-enumerable symbol, so copies never carry it. */
const JSON_TEXT = Symbol("activityJson");

/**
 * The JSON form of an activity (schema version in the body), as queued and stored. Memoised on
 * the object: the intake serialises each activity once even though the queue, the store and
 * in-process consumers all need the text. Activities must not be mutated after they are first
 * serialised (the embedded queue freezes them).
 */
export function activityJson(activity: Activity): string {
  const memo = (activity as { [JSON_TEXT]?: string })[JSON_TEXT];
  if (memo !== undefined) return memo;
  const json = JSON.stringify(activity);
  if (Object.isExtensible(activity)) Object.defineProperty(activity, JSON_TEXT, { value: json });
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
    headers: headersOf(activity),
    decoded: activity,
  };
}

/** Routing headers, one frozen object per tenant, type and schema version (queues may serialise it once). */
const HEADERS = new Map<string, Readonly<Record<string, string>>>();
const MAX_HEADERS = 10_000;

function headersOf(activity: Activity): Record<string, string> {
  const schema = String(activity.schemaVersion);
  const key = `${activity.tenantId}\u0000${activity.type}\u0000${schema}`;
  let headers = HEADERS.get(key);
  if (headers === undefined) {
    if (HEADERS.size >= MAX_HEADERS) HEADERS.clear();
    headers = Object.freeze({ tenant: activity.tenantId, type: activity.type, schema });
    HEADERS.set(key, headers);
  }
  return headers as Record<string, string>;
}

/** The activity of a queue message: the publisher's object when the queue passed it, else parsed. */
export function activityOf(message: { value: string; decoded?: unknown }): Activity {
  return (message.decoded as Activity | undefined) ?? (JSON.parse(message.value) as Activity);
}
