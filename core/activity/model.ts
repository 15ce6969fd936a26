/** The activity, as stored, queued and returned by the API. Schema version 1. */
export const ACTIVITY_SCHEMA_VERSION = 1;

export const ACTIVITY_SOURCES = ["web", "email", "crm", "mobile", "api"] as const;
export type ActivitySource = (typeof ACTIVITY_SOURCES)[number];

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Attributes = Record<string, JsonValue>;

export interface Activity {
  /** Time-sortable unique id (ULID), assigned at intake. */
  id: string;
  /** Owning tenant: always taken from the credentials, never from the request body. */
  tenantId: string;
  /** Known lead; at least one of `leadId` and `anonymousId` is present. */
  leadId?: string;
  /** Anonymous visitor id (cookie, device id) that may later be associated with a lead. */
  anonymousId?: string;
  type: string;
  source: ActivitySource;
  /** ISO-8601 instant at which the activity happened, as told by the client. */
  occurredAt: string;
  /** ISO-8601 instant at which the hub accepted the activity. */
  receivedAt: string;
  attributes: Attributes;
  campaignId?: string;
  accountId?: string;
  /** Id the client sent (or derived from an Idempotency-Key); retries carrying it are de-duplicated. */
  clientId?: string;
  schemaVersion: number;
}

/** The key that orders a lead's activities: the lead id, or the anonymous visitor id. */
export function leadKeyOf(activity: Pick<Activity, "leadId" | "anonymousId">): string {
  return activity.leadId !== undefined ? activity.leadId : `anon:${activity.anonymousId ?? ""}`;
}

/** Queue partitioning key: order is kept per tenant and lead. */
export function partitionKeyOf(activity: Pick<Activity, "tenantId" | "leadId" | "anonymousId">): string {
  return `${activity.tenantId}/${leadKeyOf(activity)}`;
}
