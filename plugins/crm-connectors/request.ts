import { z } from "zod";
import {
  resolveConnector,
  validateInstanceConfig,
  type ConflictRule,
  type ConnectorId,
  type ConnectorInstanceConfig,
  type Credentials,
} from "../../connectors";
import { validateCredentials } from "../../connectors/contract";
import { ValidationError, type FieldError } from "../../core/errors";

/**
 * Request bodies of the connector configuration API. The shape is checked here (zod), then the
 * connector's own rules (`validateInstanceConfig`: cron, objects, directions, mapping types,
 * options; `validateCredentials`) — every problem comes back as one field-level detail.
 */
const CONFLICT_RULES = ["crm-wins", "hub-wins", "newest-wins"] as const satisfies readonly ConflictRule[];
const CONNECTOR_IDS = ["salesforce", "dynamics"] as const satisfies readonly ConnectorId[];
const name = z.string().min(1).max(200);

const mapping = z
  .object({
    object: name,
    crmField: name,
    leadField: name,
    type: z.enum(["string", "number", "boolean", "date"]),
    direction: z.enum(["inbound", "outbound", "both"]),
  })
  .strict();

// Values are never echoed in error messages: zod reports types, not contents.
const credentials = z
  .object({ mode: name, values: z.record(z.string().max(20_000)) })
  .strict()
  .refine((c) => Object.keys(c.values).length <= 20, { message: "at most 20 credential fields", path: ["values"] });

const inbound = z
  .object({ objects: z.array(name).max(20).default([]), leadIdFields: z.record(name).optional() })
  .strict();

const outbound = z
  .object({
    leads: z.boolean().default(false),
    activities: z.boolean().default(false),
    scores: z.boolean().default(false),
    activityTypes: z.array(name).max(200).optional(),
    batchSize: z.number().int().min(1).max(100_000).optional(),
  })
  .strict();

const settings = {
  enabled: z.boolean(),
  schedule: z.string().min(1).max(100),
  options: z.record(z.union([z.string().max(2000), z.number(), z.boolean()])),
  mappings: z.array(mapping).max(500),
  conflictRule: z.enum(CONFLICT_RULES),
  inbound,
  outbound,
  credentials,
};

const createBody = z
  .object({
    connector: z.enum(CONNECTOR_IDS),
    credentials,
    enabled: settings.enabled.default(false),
    schedule: settings.schedule.default("*/15 * * * *"),
    options: settings.options.default({}),
    mappings: settings.mappings.default([]),
    conflictRule: settings.conflictRule.default("newest-wins"),
    inbound: inbound.default({ objects: [] }),
    outbound: outbound.default({}),
  })
  .strict();

const updateBody = z
  .object({
    enabled: settings.enabled.optional(),
    schedule: settings.schedule.optional(),
    options: settings.options.optional(),
    mappings: settings.mappings.optional(),
    conflictRule: settings.conflictRule.optional(),
    inbound: inbound.optional(),
    outbound: outbound.optional(),
    credentials: credentials.optional(),
  })
  .strict();

export type CreateConnectorBody = z.infer<typeof createBody>;
export type UpdateConnectorBody = z.infer<typeof updateBody>;

function fieldPath(path: readonly (string | number)[]): string {
  return path.reduce<string>(
    (out, part) => (typeof part === "number" ? `${out}[${part}]` : out === "" ? part : `${out}.${part}`),
    "",
  );
}

function parse<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, body: unknown): T {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ValidationError("The body must be a JSON object", [
      { field: "body", code: "invalid_type", message: "must be an object" },
    ]);
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  throw new ValidationError(
    "The connector configuration is invalid",
    parsed.error.issues.map((issue) => ({
      field: fieldPath(issue.path) || "body",
      code: issue.code,
      message: issue.message,
    })),
    "connector_config_invalid",
  );
}

export function parseCreate(body: unknown): CreateConnectorBody {
  return parse(createBody, body);
}

export function parseUpdate(body: unknown): UpdateConnectorBody {
  return parse(updateBody, body);
}

/** Applies the connector's own rules; throws one ValidationError with every problem. */
export function checkAgainstManifest(config: ConnectorInstanceConfig, credentials: Credentials | undefined): void {
  const manifest = resolveConnector(config.connector).manifest;
  const problems: FieldError[] = validateInstanceConfig(config, manifest).problems.map((p) => ({
    field: p.field,
    code: p.field.startsWith("mappings") ? "invalid_mapping" : "invalid_value",
    message: p.message,
  }));
  // One lead field has one type, whichever CRM object feeds it.
  const typeOf = new Map<string, { type: string; index: number }>();
  config.mappings.forEach((m, index) => {
    const seen = typeOf.get(m.leadField);
    if (seen && seen.type !== m.type) {
      problems.push({
        field: `mappings[${index}].type`,
        code: "invalid_mapping",
        message: `lead field ${m.leadField} is mapped as ${seen.type} in mappings[${seen.index}]`,
      });
    } else if (!seen) typeOf.set(m.leadField, { type: m.type, index });
  });
  if (credentials) {
    for (const p of validateCredentials(manifest, credentials))
      problems.push({ field: p.field, code: "invalid_credentials", message: p.message });
  }
  if (problems.length > 0)
    throw new ValidationError("The connector configuration is invalid", problems, "connector_config_invalid");
}
