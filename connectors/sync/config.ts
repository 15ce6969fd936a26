import { validate as validateCron } from "node-cron";
import { resolveOptions, type ConnectorId, type ConnectorManifest, type OptionValues } from "../contract";
import { CONFLICT_RULES, type ConflictRule } from "./conflict";
import type { FieldMapping } from "./mapping";

/** What a tenant admin configures for one connector (credentials live in the vault, not here). */
export interface ConnectorInstanceConfig {
  readonly instanceId: string;
  readonly tenantId: string;
  readonly connector: ConnectorId;
  readonly enabled: boolean;
  /** Cron expression (node-cron syntax), e.g. every five minutes: `*\/5 * * * *`. */
  readonly schedule: string;
  readonly options: Readonly<Record<string, string | number | boolean>>;
  readonly mappings: readonly FieldMapping[];
  readonly conflictRule: ConflictRule;
  readonly inbound: {
    readonly objects: readonly string[];
    /** Per object, the CRM field holding the hub lead id (e.g. Lead → Hub_Lead_Id__c, CampaignMember → LeadId). */
    readonly leadIdFields?: Readonly<Record<string, string>>;
  };
  readonly outbound: {
    readonly leads: boolean;
    readonly activities: boolean;
    readonly scores: boolean;
    /** Only these activity types are written as CRM activities (all when absent). */
    readonly activityTypes?: readonly string[];
    /** Items written per flush (the bulk / batch paths want thousands). */
    readonly batchSize?: number;
  };
}

export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

const FIELD_TYPES = new Set(["string", "number", "boolean", "date"]);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Validates a config against its connector's manifest; returns field-level problems (empty = valid). */
export function validateInstanceConfig(
  config: ConnectorInstanceConfig,
  manifest: ConnectorManifest,
): { problems: FieldProblem[]; options?: OptionValues } {
  const problems: FieldProblem[] = [];
  if (config.connector !== manifest.id) problems.push({ field: "connector", message: `expected ${manifest.id}` });
  if (!config.instanceId) problems.push({ field: "instanceId", message: "is required" });
  if (!config.tenantId) problems.push({ field: "tenantId", message: "is required" });
  if (!validateCron(config.schedule)) problems.push({ field: "schedule", message: "is not a valid cron expression" });
  if (!CONFLICT_RULES.includes(config.conflictRule))
    problems.push({ field: "conflictRule", message: `must be one of ${CONFLICT_RULES.join(", ")}` });
  const objects = new Map(manifest.objects.map((object) => [object.name, object]));
  config.inbound.objects.forEach((name, i) => {
    const spec = objects.get(name);
    if (!spec) problems.push({ field: `inbound.objects[${i}]`, message: `unknown object ${name}` });
    else if (!spec.directions.includes("inbound"))
      problems.push({ field: `inbound.objects[${i}]`, message: `${name} cannot sync inbound` });
  });
  for (const [object, field] of Object.entries(config.inbound.leadIdFields ?? {})) {
    if (!IDENT.test(field)) problems.push({ field: `inbound.leadIdFields.${object}`, message: "is not a field name" });
  }
  const seenLeadFields = new Map<string, string>();
  config.mappings.forEach((mapping, i) => {
    const at = `mappings[${i}]`;
    const spec = objects.get(mapping.object);
    if (!spec) problems.push({ field: `${at}.object`, message: `unknown object ${mapping.object}` });
    if (!IDENT.test(mapping.crmField)) problems.push({ field: `${at}.crmField`, message: "is not a field name" });
    if (!IDENT.test(mapping.leadField)) problems.push({ field: `${at}.leadField`, message: "is not a field name" });
    if (!FIELD_TYPES.has(mapping.type))
      problems.push({ field: `${at}.type`, message: "must be string, number, boolean or date" });
    if (spec && mapping.direction !== "both" && !spec.directions.includes(mapping.direction)) {
      problems.push({ field: `${at}.direction`, message: `${mapping.object} cannot sync ${mapping.direction}` });
    }
    if (
      (mapping.direction === "outbound" || mapping.direction === "both") &&
      mapping.object !== manifest.leads.object &&
      spec?.directions.includes("outbound")
    ) {
      problems.push({ field: `${at}.object`, message: `outbound mappings apply to ${manifest.leads.object} only` });
    }
    const key = `${mapping.object}.${mapping.leadField}`;
    const previous = seenLeadFields.get(key);
    if (previous !== undefined && previous !== mapping.crmField) {
      problems.push({
        field: `${at}.leadField`,
        message: `${mapping.leadField} is already mapped from ${mapping.object}.${previous}`,
      });
    }
    seenLeadFields.set(key, mapping.crmField);
  });
  const batchSize = config.outbound.batchSize;
  if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000)) {
    problems.push({ field: "outbound.batchSize", message: "must be an integer between 1 and 100000" });
  }
  const resolved = resolveOptions(manifest, config.options);
  if (!resolved.ok) problems.push(...resolved.errors);
  return resolved.ok ? { problems, options: resolved.options } : { problems };
}
