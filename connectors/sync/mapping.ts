import type { FieldType, FieldValue, SyncDirection } from "../contract";

/** Maps one CRM field to one hub lead field, with the type both sides must agree on. */
export interface FieldMapping {
  /** CRM object (connector naming: `Lead`, `leads`, …). */
  readonly object: string;
  readonly crmField: string;
  readonly leadField: string;
  readonly type: FieldType;
  /** Which way values flow; `both` = inbound and outbound. */
  readonly direction: SyncDirection | "both";
}

export type Coerced = { ok: true; value: FieldValue } | { ok: false; message: string };

/**
 * Checks a value against the mapped type and normalises it: numbers from numeric strings (Bulk
 * CSV), booleans from "true"/"false", dates to ISO-8601. Anything else is a type error, not a guess.
 */
export function coerce(value: FieldValue | undefined, type: FieldType): Coerced {
  if (value === null || value === undefined) return { ok: true, value: null };
  switch (type) {
    case "string":
      return typeof value === "string"
        ? { ok: true, value }
        : { ok: false, message: `expected string, got ${typeof value}` };
    case "number": {
      const num =
        typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
      return Number.isFinite(num)
        ? { ok: true, value: num }
        : { ok: false, message: `expected number, got ${JSON.stringify(value)}` };
    }
    case "boolean":
      if (typeof value === "boolean") return { ok: true, value };
      if (value === "true" || value === "false") return { ok: true, value: value === "true" };
      return { ok: false, message: `expected boolean, got ${JSON.stringify(value)}` };
    case "date": {
      const ms = typeof value === "string" ? Date.parse(value.replace(/([+-]\d{2})(\d{2})$/, "$1:$2")) : NaN;
      return Number.isNaN(ms)
        ? { ok: false, message: `expected date, got ${JSON.stringify(value)}` }
        : { ok: true, value: new Date(ms).toISOString() };
    }
  }
}

function flowsInbound(mapping: FieldMapping): boolean {
  return mapping.direction === "inbound" || mapping.direction === "both";
}

function flowsOutbound(mapping: FieldMapping): boolean {
  return mapping.direction === "outbound" || mapping.direction === "both";
}

/** CRM fields to read for an object (inbound mappings). */
export function inboundFields(mappings: readonly FieldMapping[], object: string): string[] {
  return [...new Set(mappings.filter((m) => m.object === object && flowsInbound(m)).map((m) => m.crmField))];
}

export interface MappedFields {
  readonly fields: Record<string, FieldValue>;
  readonly errors: { field: string; message: string }[];
}

/** CRM record fields → lead fields (inbound). Type errors are reported per field, never thrown. */
export function mapInbound(
  mappings: readonly FieldMapping[],
  object: string,
  crm: Readonly<Record<string, FieldValue>>,
): MappedFields {
  const fields: Record<string, FieldValue> = {};
  const errors: { field: string; message: string }[] = [];
  for (const mapping of mappings) {
    if (mapping.object !== object || !flowsInbound(mapping) || !(mapping.crmField in crm)) continue;
    const result = coerce(crm[mapping.crmField], mapping.type);
    if (result.ok) fields[mapping.leadField] = result.value;
    else errors.push({ field: mapping.crmField, message: result.message });
  }
  return { fields, errors };
}

/** Lead fields → CRM fields (outbound) for the connector's lead object. */
export function mapOutbound(
  mappings: readonly FieldMapping[],
  object: string,
  lead: Readonly<Record<string, FieldValue>>,
): MappedFields {
  const fields: Record<string, FieldValue> = {};
  const errors: { field: string; message: string }[] = [];
  for (const mapping of mappings) {
    if (mapping.object !== object || !flowsOutbound(mapping) || !(mapping.leadField in lead)) continue;
    const result = coerce(lead[mapping.leadField], mapping.type);
    if (result.ok) fields[mapping.crmField] = result.value;
    else errors.push({ field: mapping.leadField, message: result.message });
  }
  return { fields, errors };
}
