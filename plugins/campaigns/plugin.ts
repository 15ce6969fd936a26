import type { Context } from "moleculer";
import nodemailer, { type Transporter } from "nodemailer";
import { z } from "zod";
import type { JsonValue } from "../../core/activity/model";
import { NotFoundError, ValidationError } from "../../core/errors";
import { principalOf, type RequestMeta } from "../../core/middleware/scopes";
import { defineConsumer, type ConsumerPlugin } from "../../sdk/consumer";
import { CampaignEngine } from "./engine";
import { campaignInputSchema, type Campaign } from "./model";
import { CampaignState, type Run } from "./state";
import { builtInStepTypes, StepRegistry, type CampaignStepType } from "./steps";
import { businessSla } from "../../monitoring/sla/business";

const config = z
  .object({
    smtp: z
      .object({
        host: z.string().min(1).default("127.0.0.1"),
        port: z.number().int().min(1).max(65535).default(25),
        secure: z.boolean().default(false),
        auth: z.object({ user: z.string(), pass: z.string() }).strict().optional(),
        maxConnections: z.number().int().min(1).max(100).default(5),
      })
      .strict()
      .default({}),
    /** Default sender of `send_email` steps. */
    from: z.string().min(3).default("Activity Hub <no-reply@localhost>"),
    /** How often waiting runs are checked (ms). */
    waitPollMs: z.number().int().min(50).max(60_000).default(1000),
    /** Leads whose flows execute at once. */
    concurrency: z.number().int().min(1).max(1000).default(64),
  })
  .strict();

type Http = { body?: unknown; query?: Record<string, unknown>; params?: Record<string, string> };
type Ctx = Context<Http, RequestMeta>;

interface State {
  state: CampaignState;
  engine: CampaignEngine;
  mailer?: Transporter;
  timer: NodeJS.Timeout;
}

/** Deliveries of an activity before a failing run is parked (1 + retries). */
const MAX_RETRIES = 4;

export interface CampaignsPluginOptions {
  /** Extra flow step types (the extension point: e.g. a CRM task step from a connector plugin). */
  steps?: CampaignStepType[];
  /** Observes every executed step with its intake → step latency (benchmarks, SLA metrics). */
  onStep?: (run: Run, step: number, stepType: string, latencyMs: number) => void;
}

function parseInput(body: unknown, steps: StepRegistry): z.infer<typeof campaignInputSchema> {
  const parsed = campaignInputSchema.safeParse(body);
  if (!parsed.success) {
    throw new ValidationError(
      "Invalid campaign",
      parsed.error.issues.map((i) => ({ field: i.path.join(".") || "body", code: i.code, message: i.message })),
    );
  }
  steps.validate(parsed.data.steps);
  return parsed.data;
}

/** Secrets (webhook keys) are write-only. */
function present(campaign: Campaign): Campaign {
  return {
    ...campaign,
    steps: campaign.steps.map((s) => {
      if (!("secret" in s)) return s;
      const { secret: _secret, ...rest } = s;
      return { ...rest, secretSet: true };
    }),
  };
}

function limitOf(query: Record<string, unknown> | undefined): { limit: number; before?: number } {
  const limit = query?.limit === undefined ? 100 : Number(query.limit);
  const before = query?.before === undefined ? undefined : Number(query.before);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new ValidationError("Invalid limit", [{ field: "limit", code: "out_of_range", message: "must be 1-1000" }]);
  if (before !== undefined && !Number.isInteger(before))
    throw new ValidationError("Invalid before", [
      { field: "before", code: "invalid_type", message: "must be a log sequence number" },
    ]);
  return before === undefined ? { limit } : { limit, before };
}

/** Builds the triggered-campaigns consumer with extra step types. */
export function createCampaignsPlugin(options: CampaignsPluginOptions = {}): ConsumerPlugin<typeof config> {
  return defineConsumer<typeof config, State>({
    id: "campaigns",
    version: "1.0.0",
    description: "Triggered (smart) campaigns: triggers, lead filters, qualification rules and flow steps",
    config,
    delivery: {
      batchSize: 500,
      maxInFlight: 8,
      retries: { max: MAX_RETRIES, initialBackoffMs: 200, maxBackoffMs: 5000 },
    },
    start(ctx) {
      const state = new CampaignState(ctx.hub.config.dataDir);
      const smtp = ctx.config.smtp;
      const holder: Partial<State> = {};
      const mailer = (): Transporter =>
        (holder.mailer ??= nodemailer.createTransport({
          pool: true,
          host: smtp.host,
          port: smtp.port,
          secure: smtp.secure,
          maxConnections: smtp.maxConnections,
          ...(smtp.auth ? { auth: smtp.auth } : {}),
          // Loopback test servers have no certificate; remote ones are verified.
          tls: { rejectUnauthorized: smtp.host !== "127.0.0.1" },
        }));
      const sla = businessSla(ctx.hub.broker);
      const registry = new StepRegistry();
      for (const step of [...builtInStepTypes({ mailer, from: ctx.config.from }), ...(options.steps ?? [])])
        registry.register(step);
      const engine = new CampaignEngine(state, registry, ctx.effects, ctx.store, ctx.logger, {
        concurrency: ctx.config.concurrency,
        maxAttempts: MAX_RETRIES + 1,
        onStep: (run, step, type, latency) => {
          ctx.metrics.latency(latency);
          // The business SLA "intake → trigger": time from acceptance to the flow step executing.
          if (step === 0)
            sla.triggered({ tenantId: run.tenantId, receivedAt: run.activity.receivedAt, consumer: "campaigns" });
          options.onStep?.(run, step, type, latency);
        },
      });
      let busy = false;
      const tick = async (): Promise<void> => {
        if (busy) return;
        busy = true;
        try {
          for (let round = 0; round < 20; round++) {
            const due = state.dueRuns(Date.now(), 200);
            if (due.length === 0) break;
            await engine.resume(due);
          }
        } catch (error) {
          ctx.logger.error({ err: String(error) }, "resuming waiting runs failed");
        } finally {
          busy = false;
        }
      };
      const timer = setInterval(() => void tick(), ctx.config.waitPollMs);
      timer.unref();
      // Runs a crash interrupted after their activity was committed (e.g. after a wait).
      void engine
        .resume(state.runningRuns(10_000))
        .catch((error: unknown) => ctx.logger.error({ err: String(error) }, "resuming runs failed"));
      return Object.assign(holder, { state, engine, timer }) as State;
    },
    handle: (batch, ctx) => ctx.state.engine.handle(batch, ctx.attempt),
    stop(ctx) {
      clearInterval(ctx.state.timer);
      ctx.state.mailer?.close();
      ctx.state.state.close();
    },
    routes: CAMPAIGN_ALIASES,
    actions: (running) => {
      const tenantOf = (ctx: Ctx): string => principalOf(ctx).tenantId;
      const campaign = (ctx: Ctx): Campaign => {
        const id = ctx.params.params?.id ?? "";
        const found = running().state.state.getCampaign(tenantOf(ctx), id);
        if (!found) throw new NotFoundError(`No campaign '${id}'`, "campaign_not_found");
        return found;
      };
      const registry = (): StepRegistry => {
        const r = new StepRegistry();
        for (const step of [
          ...builtInStepTypes({
            mailer: () => {
              throw new Error("validation only");
            },
            from: "",
          }),
          ...(options.steps ?? []),
        ])
          r.register(step);
        return r;
      };
      const validator = registry();
      const changed = (c: Campaign | undefined, id: string): Campaign => {
        if (!c) throw new NotFoundError(`No campaign '${id}'`, "campaign_not_found");
        running().state.engine.reload();
        return present(c);
      };
      return {
        list: {
          scope: "read",
          handler: (ctx: Ctx) => ({ items: running().state.state.listCampaigns(tenantOf(ctx)).map(present) }),
        },
        get: { scope: "read", handler: (ctx: Ctx) => present(campaign(ctx)) },
        create: {
          scope: "admin",
          handler(ctx: Ctx) {
            const input = parseInput(ctx.params.body, validator);
            const created = running().state.state.createCampaign(tenantOf(ctx), input);
            ctx.meta.$statusCode = 201;
            Object.assign(ctx.meta, { $location: `/api/v1/campaigns/${created.id}` });
            return present(created);
          },
        },
        update: {
          scope: "admin",
          handler(ctx: Ctx) {
            const id = ctx.params.params?.id ?? "";
            const input = parseInput(ctx.params.body, validator);
            return changed(running().state.state.updateCampaign(tenantOf(ctx), id, input), id);
          },
        },
        remove: {
          scope: "admin",
          handler(ctx: Ctx) {
            const id = ctx.params.params?.id ?? "";
            if (!running().state.state.deleteCampaign(tenantOf(ctx), id))
              throw new NotFoundError(`No campaign '${id}'`, "campaign_not_found");
            running().state.engine.reload();
            ctx.meta.$statusCode = 204;
            return null;
          },
        },
        activate: {
          scope: "admin",
          handler: (ctx: Ctx) =>
            changed(
              running().state.state.setStatus(tenantOf(ctx), ctx.params.params?.id ?? "", "active"),
              ctx.params.params?.id ?? "",
            ),
        },
        deactivate: {
          scope: "admin",
          handler: (ctx: Ctx) =>
            changed(
              running().state.state.setStatus(tenantOf(ctx), ctx.params.params?.id ?? "", "inactive"),
              ctx.params.params?.id ?? "",
            ),
        },
        log: {
          scope: "read",
          handler(ctx: Ctx) {
            const c = campaign(ctx);
            const { limit, before } = limitOf(ctx.params.query);
            const items = running().state.state.campaignLog(c.tenantId, c.id, limit, before);
            return { items, ...(items.length === limit ? { nextBefore: items[items.length - 1]!.seq } : {}) };
          },
        },
        leadLog: {
          scope: "read",
          handler(ctx: Ctx) {
            const { limit, before } = limitOf(ctx.params.query);
            const items = running().state.state.leadLog(tenantOf(ctx), ctx.params.params?.leadId ?? "", limit, before);
            return { items, ...(items.length === limit ? { nextBefore: items[items.length - 1]!.seq } : {}) };
          },
        },
        leadState: {
          scope: "read",
          handler(ctx: Ctx): { leadId: string; score: number; fields: { [key: string]: JsonValue }; lists: string[] } {
            const lead = running().state.state.lead(tenantOf(ctx), ctx.params.params?.leadId ?? "");
            return { leadId: lead.leadId, score: lead.score, fields: lead.fields, lists: [...lead.lists].sort() };
          },
        },
      };
    },
  });
}

/** REST aliases of the campaigns API under `/api/v1`. */
export const CAMPAIGN_ALIASES: Record<string, string> = {
  "GET campaigns": "campaigns.list",
  "POST campaigns": "campaigns.create",
  "GET campaigns/:id": "campaigns.get",
  "PUT campaigns/:id": "campaigns.update",
  "DELETE campaigns/:id": "campaigns.remove",
  "POST campaigns/:id/activate": "campaigns.activate",
  "POST campaigns/:id/deactivate": "campaigns.deactivate",
  "GET campaigns/:id/log": "campaigns.log",
  "GET leads/:leadId/campaign-log": "campaigns.leadLog",
  "GET leads/:leadId/campaign-state": "campaigns.leadState",
};

/** The triggered-campaigns consumer with the built-in step types. */
export const campaignsPlugin = createCampaignsPlugin();
