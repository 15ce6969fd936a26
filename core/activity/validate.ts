import type { FieldError } from "../errors";
import { ACTIVITY_SOURCES, type ActivitySource, type Attributes, type JsonValue } from "./model";
import { ATTRIBUTE_TYPES, TYPE_NAME_PATTERN, type ActivityTypeDefinition, type AttributeSpec } from "./types";

/** An activity as a client sends it, after validation; the hub adds id, tenant and receivedAt. */
export interface ValidActivityInput {
  clientId?: string;
  leadId?: string;
  anonymousId?: string;
  type: string;
  source: ActivitySource;
  occurredAt: string;
  attributes: Attributes;
  campaignId?: string;
  accountId?: string;
}

export const LIMITS = {
  idLength: 128,
  attributes: 100,
  jsonDepth: 8,
  jsonNodes: 2_000,
  stringLength: 2_048,
  textLength: 32_768,
  /** How far in the past / future `occurredAt` may be. */
  pastMs: 10 * 365 * 24 * 3600 * 1000,
  futureMs: 24 * 3600 * 1000,
} as const;

const ID_PATTERN = /^[A-Za-z0-9._:@+\-|/]{1,128}$/;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const TOP_LEVEL = new Set([
  "id",
  "leadId",
  "anonymousId",
  "type",
  "source",
  "occurredAt",
  "attributes",
  "campaignId",
  "accountId",
]);

const requiredByType = new WeakMap<ActivityTypeDefinition, string[]>();

/** The names of a type's required attributes (definitions are immutable once resolved). */
function requiredAttributes(definition: ActivityTypeDefinition): string[] {
  let names = requiredByType.get(definition);
  if (names === undefined) {
    names = Object.keys(definition.attributes).filter((key) => definition.attributes[key]!.required === true);
    requiredByType.set(definition, names);
  }
  return names;
}

export type TypeResolver = (name: string) => ActivityTypeDefinition | undefined;

/**
 * Where a value sits: `path` (e.g. `activities[3]`, "" for a single activity), the field name,
 * and for attributes the attribute's key. Its text is built only for an error message: most
 * values are valid, and the names of valid ones would be garbage made per activity.
 */
interface FieldRef {
  path: string;
  name: string;
  key?: string;
}

function fieldName({ path, name, key }: FieldRef): string {
  const base = path === "" ? name : `${path}.${name}`;
  return key === undefined ? base : `${base}.${key}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Strings must be well-formed UTF-16 (no lone surrogates), so they survive every store and codec. */
function wellFormed(value: string): boolean {
  return (value as string & { isWellFormed(): boolean }).isWellFormed();
}

function checkIdentifier(value: unknown, path: string, name: string, errors: FieldError[]): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") {
    errors.push({ field: fieldName({ path, name }), code: "invalid_type", message: "must be a string" });
  } else if (!ID_PATTERN.test(value)) {
    errors.push({
      field: fieldName({ path, name }),
      code: "invalid_format",
      message: `must be 1-${LIMITS.idLength} characters of letters, digits and . _ : @ + - | /`,
    });
  } else {
    return value;
  }
  return undefined;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The number at `value[from, from + digits)`, which the ISO pattern has checked are digits. */
function digitsAt(value: string, from: number, digits: number): number {
  let n = 0;
  for (let i = from; i < from + digits; i++) n = n * 10 + value.charCodeAt(i) - 48;
  return n;
}

/**
 * Whether an instant that matches ISO_INSTANT names a real day and hour. `Date.parse` rolls
 * 2026-02-31 over to March 3rd and 24:00 over to the next day; an activity with such a date
 * is refused rather than silently moved.
 */
function isCalendarDate(value: string): boolean {
  const year = digitsAt(value, 0, 4);
  const month = digitsAt(value, 5, 2);
  const day = digitsAt(value, 8, 2);
  if (month < 1 || month > 12 || day < 1 || digitsAt(value, 11, 2) > 23) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!);
}

/** `YYYY-MM-DDTHH:mm:ss.sssZ`: already what `toISOString` gives, so it is kept as sent. */
function isCanonicalInstant(value: string): boolean {
  return value.length === 24 && value.charCodeAt(23) === 90 /* Z */ && value.charCodeAt(19) === 46; /* . */
}

function parseInstant(value: unknown, ref: FieldRef, errors: FieldError[], now: number): string | undefined {
  let ms: number;
  if (typeof value === "number" && Number.isFinite(value)) {
    ms = value;
  } else if (typeof value === "string" && ISO_INSTANT.test(value)) {
    ms = isCalendarDate(value) ? Date.parse(value) : NaN;
  } else {
    errors.push({
      field: fieldName(ref),
      code: "invalid_format",
      message: "must be an ISO-8601 instant with a zone, or epoch milliseconds",
    });
    return undefined;
  }
  if (!Number.isFinite(ms)) {
    errors.push({ field: fieldName(ref), code: "invalid_format", message: "is not a valid date" });
    return undefined;
  }
  if (ms < now - LIMITS.pastMs || ms > now + LIMITS.futureMs) {
    errors.push({
      field: fieldName(ref),
      code: "out_of_range",
      message: "must be within the last 10 years and at most 1 day ahead",
    });
    return undefined;
  }
  return typeof value === "string" && isCanonicalInstant(value) ? value : new Date(ms).toISOString();
}

/** Checks a free-form JSON value: bounded depth and size, well-formed strings. Iterative on purpose. */
function checkJson(value: unknown, ref: FieldRef, errors: FieldError[]): value is JsonValue {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 0 }];
  let nodes = 0;
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (++nodes > LIMITS.jsonNodes) {
      errors.push({
        field: fieldName(ref),
        code: "too_large",
        message: `must have at most ${LIMITS.jsonNodes} values`,
      });
      return false;
    }
    if (depth > LIMITS.jsonDepth) {
      errors.push({
        field: fieldName(ref),
        code: "too_deep",
        message: `must be nested at most ${LIMITS.jsonDepth} levels`,
      });
      return false;
    }
    if (typeof v === "string") {
      if (v.length > LIMITS.textLength || !wellFormed(v)) {
        errors.push({
          field: fieldName(ref),
          code: "invalid_string",
          message: "contains a string that is too long or not valid Unicode",
        });
        return false;
      }
    } else if (Array.isArray(v)) {
      for (const item of v) stack.push({ v: item, depth: depth + 1 });
    } else if (isPlainObject(v)) {
      for (const key of Object.keys(v)) {
        if (!wellFormed(key)) {
          errors.push({
            field: fieldName(ref),
            code: "invalid_string",
            message: "contains a key that is not valid Unicode",
          });
          return false;
        }
        stack.push({ v: v[key], depth: depth + 1 });
      }
    } else if (typeof v === "number") {
      if (!Number.isFinite(v)) {
        errors.push({ field: fieldName(ref), code: "invalid_type", message: "contains a non-finite number" });
        return false;
      }
    } else if (typeof v !== "boolean" && v !== null) {
      errors.push({ field: fieldName(ref), code: "invalid_type", message: "must be JSON" });
      return false;
    }
  }
  return true;
}

function checkAttribute(
  value: unknown,
  spec: AttributeSpec,
  ref: FieldRef,
  errors: FieldError[],
  now: number,
): JsonValue | undefined {
  switch (spec.type) {
    case "string":
    case "text":
    case "url":
    case "email": {
      if (typeof value !== "string") {
        errors.push({ field: fieldName(ref), code: "invalid_type", message: "must be a string" });
        return undefined;
      }
      const max = spec.maxLength ?? (spec.type === "text" ? LIMITS.textLength : LIMITS.stringLength);
      if (value.length > max) {
        errors.push({ field: fieldName(ref), code: "too_long", message: `must be at most ${max} characters` });
        return undefined;
      }
      if (!wellFormed(value)) {
        errors.push({ field: fieldName(ref), code: "invalid_string", message: "is not valid Unicode" });
        return undefined;
      }
      if (spec.type === "url" && !URL.canParse(value)) {
        errors.push({ field: fieldName(ref), code: "invalid_format", message: "must be an absolute URL" });
        return undefined;
      }
      if (spec.type === "email" && !EMAIL.test(value)) {
        errors.push({ field: fieldName(ref), code: "invalid_format", message: "must be an email address" });
        return undefined;
      }
      if (spec.enum !== undefined && !spec.enum.includes(value)) {
        errors.push({
          field: fieldName(ref),
          code: "invalid_value",
          message: `must be one of ${spec.enum.join(", ")}`,
        });
        return undefined;
      }
      return value;
    }
    case "integer":
    case "number":
      if (
        typeof value !== "number" ||
        !Number.isFinite(value) ||
        (spec.type === "integer" && !Number.isInteger(value))
      ) {
        errors.push({
          field: fieldName(ref),
          code: "invalid_type",
          message: `must be ${spec.type === "integer" ? "an integer" : "a number"}`,
        });
        return undefined;
      }
      return value;
    case "boolean":
      if (typeof value !== "boolean") {
        errors.push({ field: fieldName(ref), code: "invalid_type", message: "must be a boolean" });
        return undefined;
      }
      return value;
    case "datetime":
      return parseInstant(value, ref, errors, now);
    case "json":
      return checkJson(value, ref, errors) ? value : undefined;
  }
}

/**
 * A field's name under `path` (`activities[3].type`). A module function, not a closure made per
 * activity: the TypeScript loader names every closure it sees created, which cost ≈ 2 % of the
 * event loop under batched ingest.
 */
function fieldAt(path: string, name: string): string {
  return path === "" ? name : `${path}.${name}`;
}

/**
 * Validates one client activity. Returns the normalised activity, or the field-level errors (all
 * of them, not just the first). `path` prefixes every field name, e.g. `activities[3]`.
 */
export function validateActivityInput(
  raw: unknown,
  path: string,
  resolveType: TypeResolver,
  now: number,
): { ok: true; value: ValidActivityInput } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  if (!isPlainObject(raw)) {
    return { ok: false, errors: [{ field: path || "body", code: "invalid_type", message: "must be an object" }] };
  }
  for (const key of Object.keys(raw)) {
    if (key === "tenantId") {
      errors.push({
        field: fieldAt(path, key),
        code: "field_not_allowed",
        message: "the tenant comes from the credentials",
      });
    } else if (!TOP_LEVEL.has(key)) {
      errors.push({ field: fieldAt(path, key), code: "unknown_field", message: "is not a field of an activity" });
    }
  }
  const clientId = checkIdentifier(raw.id, path, "id", errors);
  const leadId = checkIdentifier(raw.leadId, path, "leadId", errors);
  const anonymousId = checkIdentifier(raw.anonymousId, path, "anonymousId", errors);
  const campaignId = checkIdentifier(raw.campaignId, path, "campaignId", errors);
  const accountId = checkIdentifier(raw.accountId, path, "accountId", errors);
  if (raw.leadId == null && raw.anonymousId == null) {
    errors.push({ field: fieldAt(path, "leadId"), code: "required", message: "leadId or anonymousId is required" });
  }

  let definition: ActivityTypeDefinition | undefined;
  if (raw.type === undefined || raw.type === null) {
    errors.push({ field: fieldAt(path, "type"), code: "required", message: "is required" });
  } else if (typeof raw.type !== "string" || !TYPE_NAME_PATTERN.test(raw.type)) {
    errors.push({ field: fieldAt(path, "type"), code: "invalid_format", message: "must be a snake_case type name" });
  } else {
    definition = resolveType(raw.type);
    if (definition === undefined) {
      errors.push({
        field: fieldAt(path, "type"),
        code: "unknown_type",
        message: `unknown activity type '${raw.type}'`,
      });
    }
  }

  let source: ActivitySource | undefined = definition?.defaultSource;
  if (raw.source !== undefined && raw.source !== null) {
    if (typeof raw.source === "string" && (ACTIVITY_SOURCES as readonly string[]).includes(raw.source)) {
      source = raw.source as ActivitySource;
    } else {
      errors.push({
        field: fieldAt(path, "source"),
        code: "invalid_value",
        message: `must be one of ${ACTIVITY_SOURCES.join(", ")}`,
      });
    }
  }

  const occurredAt =
    raw.occurredAt === undefined || raw.occurredAt === null
      ? new Date(now).toISOString()
      : parseInstant(raw.occurredAt, { path, name: "occurredAt" }, errors, now);

  const attributes: Attributes = {};
  const rawAttributes = raw.attributes ?? {};
  if (!isPlainObject(rawAttributes)) {
    errors.push({ field: fieldAt(path, "attributes"), code: "invalid_type", message: "must be an object" });
  } else if (definition !== undefined) {
    const keys = Object.keys(rawAttributes);
    if (keys.length > LIMITS.attributes) {
      errors.push({
        field: fieldAt(path, "attributes"),
        code: "too_large",
        message: `must have at most ${LIMITS.attributes} attributes`,
      });
    } else {
      for (const key of keys) {
        const value = rawAttributes[key];
        if (value === undefined || value === null) continue;
        const ref: FieldRef = { path, name: "attributes", key };
        const spec = definition.attributes[key];
        if (spec !== undefined) {
          const checked = checkAttribute(value, spec, ref, errors, now);
          if (checked !== undefined) attributes[key] = checked;
        } else if (!definition.additionalAttributes) {
          errors.push({
            field: fieldName(ref),
            code: "unknown_attribute",
            message: `is not an attribute of '${definition.name}'`,
          });
        } else if (!wellFormed(key) || key.length > 128) {
          errors.push({
            field: fieldName(ref),
            code: "invalid_format",
            message: "attribute names must be valid Unicode, at most 128 characters",
          });
        } else if (checkJson(value, ref, errors)) {
          attributes[key] = value;
        }
      }
      for (const key of requiredAttributes(definition)) {
        if (rawAttributes[key] === undefined || rawAttributes[key] === null) {
          errors.push({ field: fieldAt(path, `attributes.${key}`), code: "required", message: "is required" });
        }
      }
    }
  }

  if (errors.length > 0 || definition === undefined || source === undefined || occurredAt === undefined) {
    return { ok: false, errors };
  }
  const value: ValidActivityInput = { type: definition.name, source, occurredAt, attributes };
  if (clientId !== undefined) value.clientId = clientId;
  if (leadId !== undefined) value.leadId = leadId;
  if (anonymousId !== undefined) value.anonymousId = anonymousId;
  if (campaignId !== undefined) value.campaignId = campaignId;
  if (accountId !== undefined) value.accountId = accountId;
  return { ok: true, value };
}

/** Validates a custom activity type definition sent through the types API. */
export function validateTypeDefinition(
  raw: unknown,
): { ok: true; value: ActivityTypeDefinition } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  if (!isPlainObject(raw))
    return { ok: false, errors: [{ field: "body", code: "invalid_type", message: "must be an object" }] };
  const allowed = new Set(["name", "description", "defaultSource", "attributes", "additionalAttributes"]);
  for (const key of Object.keys(raw)) {
    if (!allowed.has(key))
      errors.push({ field: key, code: "unknown_field", message: "is not a field of a type definition" });
  }
  if (typeof raw.name !== "string" || !TYPE_NAME_PATTERN.test(raw.name)) {
    errors.push({
      field: "name",
      code: "invalid_format",
      message: "must be snake_case, 2-64 characters, starting with a letter",
    });
  }
  const description = raw.description ?? "";
  if (typeof description !== "string" || description.length > 1024) {
    errors.push({
      field: "description",
      code: "invalid_type",
      message: "must be a string of at most 1,024 characters",
    });
  }
  const defaultSource = raw.defaultSource ?? "api";
  if (typeof defaultSource !== "string" || !(ACTIVITY_SOURCES as readonly string[]).includes(defaultSource)) {
    errors.push({
      field: "defaultSource",
      code: "invalid_value",
      message: `must be one of ${ACTIVITY_SOURCES.join(", ")}`,
    });
  }
  const additional = raw.additionalAttributes ?? false;
  if (typeof additional !== "boolean") {
    errors.push({ field: "additionalAttributes", code: "invalid_type", message: "must be a boolean" });
  }
  const attributes: Record<string, AttributeSpec> = {};
  if (!isPlainObject(raw.attributes)) {
    errors.push({ field: "attributes", code: "invalid_type", message: "must be an object of attribute specs" });
  } else {
    const entries = Object.entries(raw.attributes);
    if (entries.length > LIMITS.attributes) {
      errors.push({ field: "attributes", code: "too_large", message: `at most ${LIMITS.attributes} attributes` });
    }
    for (const [name, spec] of entries) {
      const field = `attributes.${name}`;
      if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(name)) {
        errors.push({ field, code: "invalid_format", message: "attribute names are 1-64 letters, digits or _" });
        continue;
      }
      if (
        !isPlainObject(spec) ||
        typeof spec.type !== "string" ||
        !(ATTRIBUTE_TYPES as readonly string[]).includes(spec.type)
      ) {
        errors.push({
          field: `${field}.type`,
          code: "invalid_value",
          message: `must be one of ${ATTRIBUTE_TYPES.join(", ")}`,
        });
        continue;
      }
      const out: AttributeSpec = { type: spec.type as AttributeSpec["type"] };
      if (spec.required !== undefined) {
        if (typeof spec.required !== "boolean")
          errors.push({ field: `${field}.required`, code: "invalid_type", message: "must be a boolean" });
        else out.required = spec.required;
      }
      if (spec.maxLength !== undefined) {
        if (
          typeof spec.maxLength !== "number" ||
          !Number.isInteger(spec.maxLength) ||
          spec.maxLength < 1 ||
          spec.maxLength > LIMITS.textLength
        ) {
          errors.push({
            field: `${field}.maxLength`,
            code: "invalid_value",
            message: `must be an integer from 1 to ${LIMITS.textLength}`,
          });
        } else out.maxLength = spec.maxLength;
      }
      if (spec.enum !== undefined) {
        if (
          !Array.isArray(spec.enum) ||
          spec.enum.length === 0 ||
          !spec.enum.every((v): v is string => typeof v === "string")
        ) {
          errors.push({
            field: `${field}.enum`,
            code: "invalid_type",
            message: "must be a non-empty array of strings",
          });
        } else out.enum = spec.enum;
      }
      if (typeof spec.description === "string") out.description = spec.description.slice(0, 1024);
      attributes[name] = out;
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      name: String(raw.name),
      description: String(description),
      defaultSource: defaultSource as ActivitySource,
      attributes,
      additionalAttributes: additional === true,
      builtIn: false,
    },
  };
}
