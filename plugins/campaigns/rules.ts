import type { Activity, JsonValue } from "../../core/activity/model";
import type { Campaign, Constraint, LeadFilter, Qualification } from "./model";

/** A compiled test on one value. */
export type Predicate = (value: JsonValue | undefined) => boolean;

/** Reads a dotted path (`a.b.c`) from a JSON object. */
export function pathValue(root: { [key: string]: JsonValue } | undefined, path: string): JsonValue | undefined {
  let current: JsonValue | undefined = root;
  for (const part of path.split(".")) {
    if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
    current = current[part];
  }
  return current;
}

function asNumber(value: JsonValue | undefined): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
  return undefined;
}

/** Compiles a constraint once (regular expressions, lower-cased operands) into a predicate. */
export function compileConstraint(c: Constraint): Predicate {
  const fold = (v: JsonValue | undefined): string | undefined => {
    if (v === undefined || v === null || typeof v === "object") return undefined;
    return c.ignoreCase ? String(v).toLowerCase() : String(v);
  };
  const operand = Array.isArray(c.value) ? undefined : fold(c.value);
  const number = typeof c.value === "number" ? c.value : undefined;
  switch (c.op) {
    case "exists":
      return (v) => v !== undefined && v !== null;
    case "not_exists":
      return (v) => v === undefined || v === null;
    case "equals":
      return (v) => fold(v) === operand;
    case "not_equals":
      return (v) => fold(v) !== operand;
    case "contains":
      return (v) => operand !== undefined && (fold(v)?.includes(operand) ?? false);
    case "not_contains":
      return (v) => operand !== undefined && !(fold(v)?.includes(operand) ?? false);
    case "starts_with":
      return (v) => operand !== undefined && (fold(v)?.startsWith(operand) ?? false);
    case "ends_with":
      return (v) => operand !== undefined && (fold(v)?.endsWith(operand) ?? false);
    case "regex": {
      const re = new RegExp(String(c.value), c.ignoreCase ? "i" : "");
      return (v) => {
        const s = v === undefined || v === null || typeof v === "object" ? undefined : String(v);
        return s !== undefined && re.test(s.slice(0, 4096));
      };
    }
    case "gt":
      return (v) => number !== undefined && (asNumber(v) ?? Number.NaN) > number;
    case "gte":
      return (v) => number !== undefined && (asNumber(v) ?? Number.NaN) >= number;
    case "lt":
      return (v) => number !== undefined && (asNumber(v) ?? Number.NaN) < number;
    case "lte":
      return (v) => number !== undefined && (asNumber(v) ?? Number.NaN) <= number;
    case "in":
    case "not_in": {
      const set = new Set((Array.isArray(c.value) ? c.value : []).map((x) => fold(x)));
      return c.op === "in" ? (v) => set.has(fold(v)) : (v) => !set.has(fold(v));
    }
  }
}

/** Compiles constraints on activity attributes into one test. */
export function compileActivityTest(constraints: Constraint[]): (activity: Activity) => boolean {
  const tests = constraints.map((c) => ({ path: c.attribute, test: compileConstraint(c) }));
  return (activity) => tests.every(({ path, test }) => test(pathValue(activity.attributes, path)));
}

/** What the filters of a campaign need to know about a lead. */
export interface LeadView {
  leadId: string;
  fields: { [key: string]: JsonValue };
  score: number;
  lists: Set<string>;
}

/** Counts a lead's activities of a type in a window, stopping at `atMost`; provided by the store. */
export type HistoryCounter = (query: {
  activityType: string;
  since: number;
  until: number;
  test: (a: Activity) => boolean;
  excludeId: string;
  atMost: number;
}) => Promise<number>;

export interface CompiledFilter {
  /** Filters that need no I/O. */
  sync?: (lead: LeadView) => boolean;
  history?: (lead: LeadView, trigger: Activity, count: HistoryCounter) => Promise<boolean>;
}

export function compileFilter(filter: LeadFilter): CompiledFilter {
  switch (filter.kind) {
    case "field": {
      const test = compileConstraint(filter.constraint);
      return { sync: (lead) => test(pathValue(lead.fields, filter.constraint.attribute)) };
    }
    case "list":
      return { sync: (lead) => lead.lists.has(filter.listId) === filter.member };
    case "score": {
      const test = compileConstraint({ attribute: "score", op: filter.op, value: filter.value, ignoreCase: true });
      return { sync: (lead) => test(lead.score) };
    }
    case "history": {
      const test = compileActivityTest(filter.constraints);
      const atMost = Math.max(filter.min, (filter.max ?? filter.min - 1) + 1);
      return {
        history: async (_lead, trigger, count) => {
          const until = Date.parse(trigger.occurredAt) + 1;
          const n = await count({
            activityType: filter.activityType,
            since: until - filter.withinDays * 86_400_000,
            until,
            test,
            excludeId: trigger.id,
            atMost,
          });
          return n >= filter.min && (filter.max === undefined || n <= filter.max);
        },
      };
    }
  }
}

/** What the qualification rule needs: the lead's last qualification for the campaign. */
export interface QualificationRecord {
  lastAt: number;
  count: number;
}

/** Whether a lead may run the campaign again at `at` (epoch ms of the triggering activity). */
export function qualifies(rule: Qualification, previous: QualificationRecord | undefined, at: number): boolean {
  if (previous === undefined) return true;
  switch (rule.mode) {
    case "once":
      return false;
    case "every_time":
      return true;
    case "once_per":
      return at - previous.lastAt >= rule.days * 86_400_000;
  }
}

/** A campaign ready to evaluate. */
export interface CompiledCampaign {
  campaign: Campaign;
  /** Trigger tests by activity type. */
  triggers: Map<string, Array<(a: Activity) => boolean>>;
  syncFilters: Array<(lead: LeadView) => boolean>;
  historyFilters: Array<NonNullable<CompiledFilter["history"]>>;
}

export function compileCampaign(campaign: Campaign): CompiledCampaign {
  const triggers = new Map<string, Array<(a: Activity) => boolean>>();
  for (const t of campaign.triggers) {
    const list = triggers.get(t.activityType) ?? [];
    list.push(compileActivityTest(t.constraints));
    triggers.set(t.activityType, list);
  }
  const filters = campaign.filters.map(compileFilter);
  return {
    campaign,
    triggers,
    syncFilters: filters.flatMap((f) => (f.sync ? [f.sync] : [])),
    historyFilters: filters.flatMap((f) => (f.history ? [f.history] : [])),
  };
}

/**
 * Active campaigns indexed by tenant and trigger activity type: an activity is only ever tested
 * against campaigns that can match its type.
 */
export class TriggerIndex {
  private readonly byTenant = new Map<string, Map<string, CompiledCampaign[]>>();

  constructor(campaigns: Campaign[]) {
    for (const campaign of campaigns) {
      if (campaign.status !== "active") continue;
      const compiled = compileCampaign(campaign);
      let byType = this.byTenant.get(campaign.tenantId);
      if (!byType) this.byTenant.set(campaign.tenantId, (byType = new Map()));
      for (const type of compiled.triggers.keys()) {
        const list = byType.get(type) ?? [];
        list.push(compiled);
        byType.set(type, list);
      }
    }
  }

  /** Campaigns whose trigger matches the activity. */
  matches(activity: Activity): CompiledCampaign[] {
    const candidates = this.byTenant.get(activity.tenantId)?.get(activity.type);
    if (!candidates) return [];
    return candidates.filter((c) => c.triggers.get(activity.type)!.some((test) => test(activity)));
  }
}
