import type { ActivitySource } from "./model";

export const ATTRIBUTE_TYPES = [
  "string",
  "text",
  "integer",
  "number",
  "boolean",
  "datetime",
  "url",
  "email",
  "json",
] as const;
export type AttributeType = (typeof ATTRIBUTE_TYPES)[number];

export interface AttributeSpec {
  type: AttributeType;
  required?: boolean;
  /** Strings only; defaults to 2,048 for `string`/`url`/`email` and 32,768 for `text`. */
  maxLength?: number;
  /** Allowed values (strings only). */
  enum?: string[];
  description?: string;
}

export interface ActivityTypeDefinition {
  /** snake_case name used in `activity.type`. */
  name: string;
  description: string;
  /** Source used when the client sends none. */
  defaultSource: ActivitySource;
  attributes: Record<string, AttributeSpec>;
  /** Whether attributes not declared above are accepted (as JSON values). */
  additionalAttributes: boolean;
  builtIn: boolean;
}

function builtIn(
  name: string,
  description: string,
  defaultSource: ActivitySource,
  attributes: Record<string, AttributeSpec>,
  additionalAttributes = false,
): ActivityTypeDefinition {
  return { name, description, defaultSource, attributes, additionalAttributes, builtIn: true };
}

const email = { emailId: { type: "string", required: true }, subject: { type: "string" } } as const;
const webContext = {
  userAgent: { type: "string", maxLength: 1024 },
  ip: { type: "string", maxLength: 64 },
} as const;

/** Marketo-like built-in activity types. Tenants add their own through the custom types API. */
export const BUILT_IN_ACTIVITY_TYPES: readonly ActivityTypeDefinition[] = [
  builtIn("visit_web_page", "Lead or visitor viewed a web page", "web", {
    url: { type: "url", required: true },
    title: { type: "string" },
    referrer: { type: "string" },
    ...webContext,
  }),
  builtIn("click_link", "Clicked a link on a web page", "web", {
    url: { type: "url", required: true },
    linkText: { type: "string" },
    pageUrl: { type: "url" },
    ...webContext,
  }),
  builtIn("fill_out_form", "Submitted a form", "web", {
    formId: { type: "string", required: true },
    url: { type: "url" },
    fields: { type: "json" },
    ...webContext,
  }),
  builtIn("email_sent", "Marketing email sent", "email", { ...email }),
  builtIn("email_delivered", "Marketing email delivered", "email", { ...email }),
  builtIn("email_opened", "Marketing email opened", "email", { ...email, ...webContext }),
  builtIn("email_clicked", "Link in a marketing email clicked", "email", {
    ...email,
    url: { type: "url", required: true },
    ...webContext,
  }),
  builtIn("email_bounced", "Marketing email bounced", "email", {
    ...email,
    category: { type: "string", enum: ["hard", "soft"] },
    reason: { type: "string" },
  }),
  builtIn("email_unsubscribed", "Unsubscribed from marketing email", "email", { ...email }),
  builtIn("change_data_value", "A lead field changed", "api", {
    field: { type: "string", required: true },
    oldValue: { type: "json" },
    newValue: { type: "json" },
    reason: { type: "string" },
  }),
  builtIn("change_score", "Lead score changed", "api", {
    delta: { type: "number", required: true },
    scoreName: { type: "string" },
    reason: { type: "string" },
  }),
  builtIn("add_to_list", "Added to a static list", "api", { listId: { type: "string", required: true } }),
  builtIn("remove_from_list", "Removed from a static list", "api", { listId: { type: "string", required: true } }),
  builtIn("crm_sync", "Record synchronised from a CRM", "crm", {
    crm: { type: "string", required: true, enum: ["salesforce", "dynamics"] },
    objectType: { type: "string", required: true },
    objectId: { type: "string", required: true },
    operation: { type: "string", required: true, enum: ["created", "updated", "deleted"] },
    fields: { type: "json" },
    connectorId: { type: "string" },
    conflict: { type: "string", enum: ["apply", "conflict", "skip"] },
    invalidFields: { type: "json" },
  }),
  builtIn(
    "mobile_event",
    "Event from a mobile app",
    "mobile",
    { name: { type: "string", required: true }, appId: { type: "string" } },
    true,
  ),
  builtIn("track_event", "Named event (Segment track)", "api", { event: { type: "string", required: true } }, true),
  builtIn("identify", "Lead traits reported (Segment identify)", "api", { traits: { type: "json" } }),
];

const BUILT_IN_BY_NAME = new Map(BUILT_IN_ACTIVITY_TYPES.map((t) => [t.name, t]));

export function builtInType(name: string): ActivityTypeDefinition | undefined {
  return BUILT_IN_BY_NAME.get(name);
}

export const TYPE_NAME_PATTERN = /^[a-z][a-z0-9_]{1,63}$/;
