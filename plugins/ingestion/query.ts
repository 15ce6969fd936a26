import { ValidationError, type FieldError } from "../../core/errors";
import type { ActivityQuery } from "../store/contract";

function instant(value: unknown, field: string, errors: FieldError[]): number | undefined {
  if (value === undefined || value === "") return undefined;
  const text = String(value);
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) {
    errors.push({ field, code: "invalid_format", message: "must be an ISO-8601 instant or epoch milliseconds" });
    return undefined;
  }
  return ms;
}

/** Parses `types`, `since`, `until`, `limit` and `pageToken` of the history endpoints. */
export function parseActivityQuery(query: Record<string, unknown> = {}): ActivityQuery {
  const errors: FieldError[] = [];
  const rawTypes = query.types;
  const types = (
    Array.isArray(rawTypes) ? rawTypes.map(String) : typeof rawTypes === "string" ? rawTypes.split(",") : []
  )
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (types.length > 50 || types.some((t) => !/^[a-z][a-z0-9_]{1,63}$/.test(t))) {
    errors.push({
      field: "types",
      code: "invalid_value",
      message: "must be a comma-separated list of at most 50 type names",
    });
  }
  const since = instant(query.since, "since", errors);
  const until = instant(query.until, "until", errors);
  if (since !== undefined && until !== undefined && since >= until) {
    errors.push({ field: "until", code: "invalid_range", message: "must be after since" });
  }
  let limit = 100;
  if (query.limit !== undefined) {
    limit = Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      errors.push({ field: "limit", code: "invalid_value", message: "must be an integer from 1 to 1000" });
    }
  }
  const pageToken = typeof query.pageToken === "string" && query.pageToken !== "" ? query.pageToken : undefined;
  for (const key of Object.keys(query)) {
    if (!["types", "since", "until", "limit", "pageToken"].includes(key)) {
      errors.push({ field: key, code: "unknown_parameter", message: "is not a query parameter of this endpoint" });
    }
  }
  if (errors.length > 0) throw new ValidationError("Invalid query parameters", errors);
  return {
    limit,
    ...(types.length > 0 ? { types } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
    ...(pageToken !== undefined ? { pageToken } : {}),
  };
}
