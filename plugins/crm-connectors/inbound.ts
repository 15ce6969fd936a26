import type { ServiceBroker } from "moleculer";
import type { CrmSyncActivity } from "../../connectors";
import type { Tenant, Principal, Quota } from "../../core/tenancy/directory";
import type { IntakeResult, Submission } from "../ingestion/intake";

/** The intake input of one CRM change: the built-in `crm_sync` type and its attribute schema. */
export interface CrmSyncInput {
  id: string;
  leadId: string;
  type: "crm_sync";
  source: "crm";
  occurredAt: string;
  attributes: {
    crm: string;
    objectType: string;
    objectId: string;
    operation: "updated" | "deleted";
    fields: Record<string, string | number | boolean | null>;
  };
}

/**
 * Maps the engine's activity to the `crm_sync` schema of `core/activity/types.ts`. The client `id` is
 * the engine's deterministic id, so a page redelivered after a crash is deduplicated by intake.
 * An upsert cannot tell creation from update (SystemModstamp / change tracking), so it is `updated`.
 */
export function toCrmSyncInput(activity: CrmSyncActivity): CrmSyncInput {
  const a = activity.attributes;
  return {
    id: activity.id,
    leadId: activity.leadId,
    type: "crm_sync",
    source: "crm",
    occurredAt: activity.occurredAt,
    attributes: {
      crm: a.connector,
      objectType: a.object,
      objectId: a.crmId,
      operation: a.operation === "delete" ? "deleted" : "updated",
      fields: { ...a.fields },
    },
  };
}

export interface IntakeEmitterOptions {
  /** The intake's batch limit (`hub.config.http.maxBatch`). */
  maxBatch: number;
  /** Used when the tenant's quota cannot be read. */
  fallbackQuota: Quota;
  /** Bounded retries of a chunk on 429 / 503. */
  maxAttempts?: number;
  onRejected?: (instanceId: string, rejected: number, sample: string) => void;
  sleep?: (ms: number) => Promise<void>;
}

interface ErrorFacts {
  status?: number;
  code?: string;
  retryAfter?: number;
}

function factsOf(error: unknown): ErrorFacts {
  if (typeof error !== "object" || error === null) return {};
  const status: unknown = Reflect.get(error, "status");
  const code: unknown = Reflect.get(error, "code");
  const retryAfter: unknown = Reflect.get(error, "retryAfter");
  const data: unknown = Reflect.get(error, "data");
  const dataStatus = typeof data === "object" && data !== null ? Reflect.get(data, "status") : undefined;
  const dataRetry = typeof data === "object" && data !== null ? Reflect.get(data, "retryAfter") : undefined;
  const name: unknown = Reflect.get(error, "name");
  const unavailable = typeof name === "string" && /ServiceNotAvailable|ServiceNotFound|RequestTimeout/.test(name);
  const numeric = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);
  return {
    status: numeric(status) ?? numeric(dataStatus) ?? (unavailable ? 503 : undefined),
    code: typeof code === "string" ? code : undefined,
    retryAfter: numeric(retryAfter) ?? numeric(dataRetry),
  };
}

const TENANT_CACHE_MS = 30_000;

/**
 * The engine's `emit`: CRM changes go through the hub's intake (`intake.submit`) like any other
 * activity — validated, stored and queued before the engine commits its watermark.
 *
 * Quota: connector traffic acts as the tenant (its own quota, read from the tenancy service), so a
 * large initial sync is paced by the same token bucket as the tenant's REST traffic and cannot
 * crowd out other tenants. A 429 waits `Retry-After` and retries the same chunk.
 */
export function intakeEmitter(
  broker: ServiceBroker,
  options: IntakeEmitterOptions,
): (activities: readonly CrmSyncActivity[]) => Promise<void> {
  const tenants = new Map<string, { tenant: Pick<Tenant, "quota" | "settings">; expires: number }>();
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const maxAttempts = options.maxAttempts ?? 60;

  async function principalFor(tenantId: string, instanceId: string): Promise<Principal> {
    let cached = tenants.get(tenantId);
    if (!cached || cached.expires < Date.now()) {
      const reader: Principal = {
        tenantId,
        keyId: `connector:${instanceId}`,
        kind: "api",
        scopes: ["read"],
        quota: options.fallbackQuota,
        settings: {},
      };
      const tenant = (await broker.call("tenancy.currentTenant", {}, { meta: { principal: reader } })) as Tenant;
      cached = { tenant: { quota: tenant.quota, settings: tenant.settings }, expires: Date.now() + TENANT_CACHE_MS };
      tenants.set(tenantId, cached);
    }
    return {
      tenantId,
      keyId: `connector:${instanceId}`,
      kind: "api",
      scopes: ["ingest"],
      quota: cached.tenant.quota,
      settings: cached.tenant.settings,
    };
  }

  async function submitChunk(principal: Principal, items: CrmSyncInput[], instanceId: string): Promise<void> {
    const submission: Submission = { items, path: "activities", partial: true };
    for (let attempt = 1; ; attempt++) {
      try {
        const result = (await broker.call("intake.submit", submission, { meta: { principal } })) as IntakeResult;
        if (result.rejected > 0) {
          const first = result.errors[0]?.errors[0];
          options.onRejected?.(instanceId, result.rejected, first ? `${first.field}: ${first.code}` : "");
        }
        return;
      } catch (error) {
        const facts = factsOf(error);
        // Every item invalid: nothing will ever pass; report and move on so the watermark advances.
        if (facts.status === 400) {
          options.onRejected?.(instanceId, items.length, facts.code ?? "validation_failed");
          return;
        }
        const retriable = facts.status === 429 || facts.status === 503 || facts.status === undefined;
        const limit = facts.status === undefined ? Math.min(5, maxAttempts) : maxAttempts;
        if (!retriable || attempt >= limit) throw error;
        const waitMs =
          facts.retryAfter !== undefined
            ? Math.min(60_000, facts.retryAfter * 1000)
            : Math.min(10_000, 100 * 2 ** Math.min(attempt, 7));
        await sleep(waitMs);
      }
    }
  }

  return async (activities) => {
    if (activities.length === 0) return;
    const first = activities[0]!;
    const principal = await principalFor(first.tenantId, first.attributes.instanceId);
    const inputs = activities.map(toCrmSyncInput);
    for (let i = 0; i < inputs.length; i += options.maxBatch)
      await submitChunk(principal, inputs.slice(i, i + options.maxBatch), first.attributes.instanceId);
  };
}
