import { partitionKeyOf, type Activity } from "./model";

/**
 * The JSON form of an activity (schema version in the body), as queued and stored. Not memoised
 * on the object: the intake makes it once and hands the same text to the queue (`value`) and the
 * store (`put`'s `json`), and nothing keeps it afterwards. Objects held for in-process consumers
 * (the embedded queue's in-memory head) would otherwise carry ~1 KB of text each, copied by every
 * young-generation GC they survive.
 */
export function activityJson(activity: Activity): string {
  return JSON.stringify(activity);
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
