import type { FieldError } from "../../core/errors";

/**
 * Segment Spec (https://segment.com/docs/connections/spec/) messages mapped onto activities, so
 * Segment-compatible SDKs such as `@segment/analytics-node` can send to the hub unchanged:
 *
 * | Segment call | activity type      | attributes                                              |
 * |--------------|--------------------|---------------------------------------------------------|
 * | track        | `track_event`      | `event` + every property                                |
 * | page         | `visit_web_page`   | url, title, referrer (properties or context.page), UA, ip |
 * | screen       | `mobile_event`     | `name` (screen name) + every property                   |
 * | identify     | `identify`         | `traits`                                                |
 *
 * `userId` → leadId, `anonymousId` → anonymousId, `messageId` → client id (retries de-duplicate),
 * `timestamp` (or `originalTimestamp`) → occurredAt.
 */
export type SegmentCall = "track" | "page" | "screen" | "identify";
export const SEGMENT_CALLS: readonly SegmentCall[] = ["track", "page", "screen", "identify"];

type Json = Record<string, unknown>;

function obj(value: unknown): Json {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : {};
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

function idOf(value: unknown): string | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return str(value);
}

/** Maps one Segment message to the hub's activity input shape (validated afterwards as usual). */
export function segmentToActivity(
  call: SegmentCall,
  raw: unknown,
): { ok: true; value: Json } | { ok: false; errors: FieldError[] } {
  const message = obj(raw);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, errors: [{ field: "body", code: "invalid_type", message: "must be an object" }] };
  }
  const context = obj(message.context);
  const properties = obj(message.properties);
  const activity: Json = {};
  const userId = idOf(message.userId);
  const anonymousId = idOf(message.anonymousId);
  if (userId !== undefined) activity.leadId = userId;
  if (anonymousId !== undefined) activity.anonymousId = anonymousId;
  const messageId = str(message.messageId);
  if (messageId !== undefined) activity.id = messageId.slice(0, 128).replace(/[^A-Za-z0-9._:@+\-|/]/g, "_");
  const timestamp = message.timestamp ?? message.originalTimestamp;
  if (timestamp !== undefined) activity.occurredAt = timestamp;
  const campaign = obj(context.campaign);
  const web = { userAgent: str(context.userAgent), ip: str(context.ip) };

  switch (call) {
    case "track": {
      const event = str(message.event);
      if (event === undefined)
        return { ok: false, errors: [{ field: "event", code: "required", message: "is required for track" }] };
      activity.type = "track_event";
      activity.attributes = { ...properties, event, ...(Object.keys(campaign).length > 0 ? { utm: campaign } : {}) };
      break;
    }
    case "page": {
      const page = obj(context.page);
      activity.type = "visit_web_page";
      activity.source = "web";
      activity.attributes = {
        url: str(properties.url) ?? str(page.url),
        title: str(properties.title) ?? str(page.title) ?? str(message.name),
        referrer: str(properties.referrer) ?? str(page.referrer),
        ...web,
      };
      break;
    }
    case "screen":
      activity.type = "mobile_event";
      activity.source = "mobile";
      activity.attributes = {
        ...properties,
        name: str(message.name) ?? str(properties.name) ?? "screen",
        appId: str(obj(context.app).namespace),
      };
      break;
    case "identify":
      activity.type = "identify";
      activity.attributes = { traits: obj(message.traits ?? context.traits) };
      break;
  }
  const attributes = obj(activity.attributes);
  for (const key of Object.keys(attributes)) if (attributes[key] === undefined) delete attributes[key];
  return { ok: true, value: activity };
}
