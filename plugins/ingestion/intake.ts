import type { Context, ServiceSchema } from "moleculer";
import { newActivityId } from "../../core/activity/ids";
import { ACTIVITY_SCHEMA_VERSION, leadKeyOf, type Activity } from "../../core/activity/model";
import { activityRecord } from "../../core/activity/serialize";
import { builtInType, type ActivityTypeDefinition } from "../../core/activity/types";
import { validateActivityInput, type ValidActivityInput } from "../../core/activity/validate";
import {
  HubError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  UnavailableError,
  ValidationError,
  type FieldError,
} from "../../core/errors";
import { principalOf, type RequestMeta } from "../../core/middleware/scopes";
import type { HubServices } from "../../core/plugins/contract";
import type { Principal } from "../../core/tenancy/directory";
import { QuotaBuckets } from "../../core/tenancy/quota";
import { TENANCY_EVENTS } from "../../core/tenancy/service";
import { businessSla } from "../../monitoring/sla/business";
import type { ActivityQueue } from "../queue/contract";
import type { ActivityStore } from "../store/contract";
import { parseActivityQuery } from "./query";

type HttpParams = { body?: unknown; query?: Record<string, unknown>; params?: Record<string, string> };
type Ctx = Context<HttpParams, RequestMeta>;

export interface IntakeOptions {
  maxBatch: number;
  /** How long a persist may take before the client gets 503 (ms). */
  persistTimeoutMs: number;
}

/** Outcome of one submission: ids in request order, `null` where an item was rejected. */
export interface IntakeResult {
  accepted: number;
  rejected: number;
  ids: Array<string | null>;
  errors: Array<{ index: number; errors: FieldError[] }>;
}

export interface Submission {
  items: unknown[];
  /** Prefix of field names in errors: `activities` gives `activities[3].type`; "" for a single item. */
  path: string;
  /** Store valid items even when others are invalid (otherwise all-or-nothing). */
  partial: boolean;
  idempotencyKey?: string;
}

const TYPE_CACHE_MS = 10_000;

function typeOfRaw(raw: unknown): string {
  const type = typeof raw === "object" && raw !== null ? (raw as { type?: unknown }).type : undefined;
  return typeof type === "string" ? type : "_invalid";
}

/**
 * The intake: quota → validate → assign ids (honouring client ids and Idempotency-Key) → enrich
 * → persist to queue and store in parallel. It answers only once both hold every accepted
 * activity durably; any failure there is a 503 with Retry-After, never a 2xx.
 */
export function intakeService(hub: HubServices, options: IntakeOptions): ServiceSchema {
  const quotas = new QuotaBuckets();
  const typeCache = new Map<string, { expires: number; types: Map<string, ActivityTypeDefinition> }>();
  const topic = hub.config.topics.activities;
  const sla = businessSla(hub.broker);

  async function tenantTypes(ctx: Context, tenantId: string): Promise<Map<string, ActivityTypeDefinition>> {
    const cached = typeCache.get(tenantId);
    if (cached && cached.expires > Date.now()) return cached.types;
    const list = (await ctx.call("tenancy.tenantTypes", { tenantId })) as ActivityTypeDefinition[];
    const types = new Map(list.map((t) => [t.name, t]));
    typeCache.set(tenantId, { expires: Date.now() + TYPE_CACHE_MS, types });
    return types;
  }

  function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what} timed out after ${options.persistTimeoutMs} ms`)),
        options.persistTimeoutMs,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * Starts both writes from one JSON text per activity (the store writes the queue record's
   * value). The texts are referenced only from here and from the writers, which let go of them
   * once encoded for their threads, not from the request awaiting the commits.
   */
  function persist(queue: ActivityQueue, store: ActivityStore, batch: Activity[]): Array<Promise<void>> {
    const records = batch.map(activityRecord);
    return [
      queue.publish(topic, records),
      store.put(
        batch,
        records.map((r) => r.value),
      ),
    ];
  }

  async function submit(ctx: Context, principal: Principal, submission: Submission): Promise<IntakeResult> {
    const { items } = submission;
    if (items.length === 0) {
      throw new ValidationError(
        "The batch is empty",
        [{ field: submission.path || "body", code: "empty_batch", message: "send at least one activity" }],
        "empty_batch",
      );
    }
    if (items.length > options.maxBatch) {
      throw new PayloadTooLargeError(`A batch holds at most ${options.maxBatch} activities`, "batch_too_large");
    }
    const wait = quotas.take(principal.tenantId, principal.quota, items.length);
    if (wait > 0) sla.throttledItems(principal.tenantId, items.length);
    if (wait > 0) throw new RateLimitedError(`Tenant quota of ${principal.quota.rate} activities/s exceeded`, wait);

    const custom = await tenantTypes(ctx, principal.tenantId);
    const resolveType = (name: string): ActivityTypeDefinition | undefined => builtInType(name) ?? custom.get(name);
    const now = Date.now();
    // Registered with the arrival time, before any await: the ledger's watermark never passes it.
    const ledger = hub.ledger();
    const token = ledger.begin(now);
    let failedWrites: Promise<unknown> | undefined;
    try {
      const valid: Array<{ index: number; input: ValidActivityInput }> = [];
      const errors: IntakeResult["errors"] = [];
      items.forEach((raw, index) => {
        const path = submission.path === "" ? "" : `${submission.path}[${index}]`;
        const result = validateActivityInput(raw, path, resolveType, now);
        if (result.ok) valid.push({ index, input: result.value });
        else errors.push({ index, errors: result.errors });
      });
      if (errors.length > 0)
        sla.rejectedItems(
          principal.tenantId,
          errors.map((e) => typeOfRaw(items[e.index])),
        );
      if (valid.length === 0 || (errors.length > 0 && !submission.partial)) {
        throw new ValidationError(
          errors.length === 1 && items.length === 1
            ? "The activity is invalid"
            : `${errors.length} of ${items.length} activities are invalid; nothing was stored`,
          errors.flatMap((e) => e.errors),
        );
      }

      const receivedAt = new Date(now).toISOString();
      const activities: Activity[] = valid.map(({ index, input }) => {
        const clientId =
          input.clientId ??
          (submission.idempotencyKey !== undefined ? `idem:${submission.idempotencyKey}:${index}` : undefined);
        const activity: Activity = {
          id: newActivityId(now),
          tenantId: principal.tenantId,
          type: input.type,
          source: input.source,
          occurredAt: input.occurredAt,
          receivedAt,
          attributes: input.attributes,
          schemaVersion: ACTIVITY_SCHEMA_VERSION,
        };
        if (input.leadId !== undefined) activity.leadId = input.leadId;
        if (input.anonymousId !== undefined) activity.anonymousId = input.anonymousId;
        if (input.campaignId !== undefined) activity.campaignId = input.campaignId;
        if (input.accountId !== undefined) activity.accountId = input.accountId;
        if (clientId !== undefined) activity.clientId = clientId;
        return activity;
      });

      for (const enrich of hub.extensions.enrichers) {
        for (const activity of activities) {
          try {
            enrich(activity, principal);
          } catch (error) {
            hub.logger.warn(
              { err: String(error), activityType: activity.type },
              "enricher failed; activity kept unenriched",
            );
          }
        }
      }

      const [queue, store] = await Promise.all([hub.queue(), hub.store()]);
      let writes: Array<Promise<void>> | undefined;
      try {
        const toPersist = await resolveClientIds(activities, store);
        writes = persist(queue, store, toPersist);
        await withTimeout(Promise.all(writes), "persist");
        const ids: Array<string | null> = items.map(() => null);
        valid.forEach(({ index }, i) => (ids[index] = toPersist[i]!.id));
        sla.stored(
          principal.tenantId,
          activities.map((a) => a.type),
          now,
        );
        return { accepted: valid.length, rejected: errors.length, ids, errors };
      } catch (error) {
        // Once a write started, a failure may leave the batch in only one of queue and store.
        if (writes) failedWrites = Promise.allSettled(writes);
        if (error instanceof HubError && error.status < 500) throw error;
        hub.logger.error({ err: String(error), tenantId: principal.tenantId }, "persist failed; answering 503");
        throw new UnavailableError("The queue or the store is unavailable; retry the same request", 2);
      }
    } finally {
      ledger.end(token, failedWrites);
    }

    /** Activities carrying a client id take the id bound to it first; retries reuse the stored activity. */
    async function resolveClientIds(batch: Activity[], store: ActivityStore): Promise<Activity[]> {
      const withClientId = batch.filter((a) => a.clientId !== undefined);
      if (withClientId.length === 0) return batch;
      const bound = await store.claimClientIds(
        principal.tenantId,
        withClientId.map((a) => ({ clientId: a.clientId!, proposedId: a.id })),
      );
      const replacements = new Map<Activity, string>();
      withClientId.forEach((a, i) => {
        if (bound[i] !== a.id) replacements.set(a, bound[i]!);
      });
      if (replacements.size === 0) return batch;
      return Promise.all(
        batch.map(async (a) => {
          const existingId = replacements.get(a);
          if (existingId === undefined) return a;
          return (await store.get(principal.tenantId, existingId)) ?? { ...a, id: existingId };
        }),
      );
    }
  }

  return {
    name: "intake",
    events: {
      [TENANCY_EVENTS.typesChanged](ctx: Context<{ tenantId?: string }>) {
        if (ctx.params.tenantId) typeCache.delete(ctx.params.tenantId);
        else typeCache.clear();
      },
    },
    actions: {
      /** Internal entry for other plugins (Segment intake, connectors, SDK producers). */
      submit: {
        visibility: "public",
        scope: "ingest",
        handler(ctx: Context<Submission, RequestMeta>) {
          return submit(ctx, principalOf(ctx as unknown as Ctx), ctx.params);
        },
      },
      ingest: {
        scope: "ingest",
        async handler(ctx: Ctx) {
          const body = ctx.params.body;
          const partial = ctx.params.query?.partial === "true";
          let submission: Submission;
          if (Array.isArray(body)) submission = { items: body, path: "activities", partial };
          else if (typeof body === "object" && body !== null && "activities" in body) {
            const list = (body as { activities: unknown }).activities;
            if (!Array.isArray(list)) {
              throw new ValidationError("activities must be an array", [
                { field: "activities", code: "invalid_type", message: "must be an array" },
              ]);
            }
            const extra = Object.keys(body).filter((k) => k !== "activities");
            if (extra.length > 0) {
              throw new ValidationError(
                "Unknown fields",
                extra.map((field) => ({ field, code: "unknown_field", message: "is not a field of a batch" })),
              );
            }
            submission = { items: list, path: "activities", partial };
          } else submission = { items: [body], path: "", partial: false };
          const idempotencyKey = ctx.meta.idempotencyKey;
          if (idempotencyKey !== undefined) {
            if (!/^[A-Za-z0-9._:\-]{1,128}$/.test(idempotencyKey)) {
              throw new ValidationError("Invalid Idempotency-Key", [
                {
                  field: "Idempotency-Key",
                  code: "invalid_format",
                  message: "must be 1-128 letters, digits, '.', '_', ':' or '-'",
                },
              ]);
            }
            submission.idempotencyKey = idempotencyKey;
          }
          const result = await submit(ctx, principalOf(ctx), submission);
          ctx.meta.$statusCode = 202;
          return submission.path === "" ? { id: result.ids[0], accepted: 1, ids: result.ids } : result;
        },
      },
      get: {
        scope: "read",
        async handler(ctx: Ctx) {
          const id = ctx.params.params?.id ?? "";
          const activity = await (await hub.store()).get(principalOf(ctx).tenantId, id);
          if (!activity) throw new NotFoundError(`No activity '${id}'`, "activity_not_found");
          return activity;
        },
      },
      leadHistory: {
        scope: "read",
        async handler(ctx: Ctx) {
          const leadId = ctx.params.params?.leadId ?? "";
          const query = parseActivityQuery(ctx.params.query);
          return (await hub.store()).leadHistory(
            principalOf(ctx).tenantId,
            leadKeyOf(leadId.startsWith("anon:") ? { anonymousId: leadId.slice(5) } : { leadId }),
            query,
          );
        },
      },
      list: {
        scope: "read",
        async handler(ctx: Ctx) {
          return (await hub.store()).list(principalOf(ctx).tenantId, parseActivityQuery(ctx.params.query));
        },
      },
    },
    async started() {
      // Open the engines before the first request, so a broken engine fails start-up loudly.
      await Promise.all([hub.queue(), hub.store()]);
    },
  };
}
