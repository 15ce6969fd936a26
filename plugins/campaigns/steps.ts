import { createHash, createHmac } from "node:crypto";
import type { LoggerInstance } from "moleculer";
import type { Transporter } from "nodemailer";
import { z } from "zod";
import type { Activity, JsonValue } from "../../core/activity/model";
import { ValidationError, type FieldError } from "../../core/errors";
import type { InDoubtPolicy } from "../../sdk/effects";
import { pathValue, type LeadView } from "./rules";

/** Changes to lead state that internal steps make; each applies once per effect key. */
export interface LeadStateWriter {
  changeScore(tenantId: string, leadId: string, delta: number, effectKey: string): void;
  setListMember(tenantId: string, listId: string, leadId: string, member: boolean, effectKey: string): void;
}

export interface StepContext {
  tenantId: string;
  campaign: { id: string; name: string };
  lead: LeadView;
  activity: Activity;
  runId: string;
  stepIndex: number;
  /** Stable per (campaign, lead, activity, step): pass it downstream so receivers can de-duplicate. */
  effectKey: string;
  leads: LeadStateWriter;
  logger: LoggerInstance;
}

/** What a step reports for the execution log. */
export interface StepOutcome {
  status?: "done" | "skipped";
  detail?: JsonValue;
}

/**
 * A kind of flow step. Plugins add their own (e.g. a CRM task) through `createCampaignsPlugin({
 * steps })`: the extension point of the campaigns plugin.
 */
export interface CampaignStepType<S extends z.ZodTypeAny = z.ZodTypeAny> {
  type: string;
  /** Options of the step (besides `type`), checked when a campaign is saved. */
  options: S;
  /** Leaves the hub (email, webhook, CRM): performed through the effect ledger, once per effect key. */
  external: boolean;
  /** For external steps: what to do if a crash left it in doubt (default `repeat`). */
  inDoubt?: InDoubtPolicy;
  execute(options: z.infer<S>, ctx: StepContext): Promise<StepOutcome | void>;
}

/** Declares a step type; the identity function that gives TypeScript the options type. */
export function defineStepType<S extends z.ZodTypeAny>(step: CampaignStepType<S>): CampaignStepType<S> {
  return step;
}

export const WAIT_STEP = "wait";
export const waitOptions = z
  .object({ type: z.literal(WAIT_STEP), minutes: z.number().positive().max(525_600) })
  .strict();

export class StepRegistry {
  private readonly types = new Map<string, CampaignStepType>();

  register(step: CampaignStepType): this {
    if (this.types.has(step.type) || step.type === WAIT_STEP)
      throw new Error(`campaign step type '${step.type}' is registered twice`);
    this.types.set(step.type, step);
    return this;
  }

  get(type: string): CampaignStepType | undefined {
    return this.types.get(type);
  }

  /** Checks every step of a campaign; throws a 400 with field-level errors. */
  validate(steps: Array<{ type: string }>): void {
    const errors: FieldError[] = [];
    steps.forEach((step, i) => {
      const schema = step.type === WAIT_STEP ? waitOptions : this.types.get(step.type)?.options;
      if (!schema) {
        errors.push({
          field: `steps[${i}].type`,
          code: "unknown_step",
          message: `must be one of ${[WAIT_STEP, ...this.types.keys()].join(", ")}`,
        });
        return;
      }
      const parsed = schema.safeParse(step);
      if (!parsed.success) {
        for (const issue of parsed.error.issues)
          errors.push({ field: [`steps[${i}]`, ...issue.path].join("."), code: issue.code, message: issue.message });
      }
    });
    if (errors.length > 0) throw new ValidationError("Invalid flow steps", errors);
  }

  /** Parses one stored step with its type's schema (fills defaults). */
  parse(step: { type: string }): { type: CampaignStepType; options: unknown } | { wait: number } {
    if (step.type === WAIT_STEP) return { wait: waitOptions.parse(step).minutes };
    const type = this.types.get(step.type);
    if (!type) throw new Error(`campaign step type '${step.type}' is not registered on this node`);
    return { type, options: type.options.parse(step) };
  }
}

/** Replaces `{{lead.email}}`, `{{lead.score}}`, `{{activity.attributes.url}}`, `{{campaign.name}}`. */
export function renderTemplate(template: string, ctx: StepContext, escape: (s: string) => string = (s) => s): string {
  const root: { [key: string]: JsonValue } = {
    lead: { id: ctx.lead.leadId, score: ctx.lead.score, ...ctx.lead.fields },
    activity: {
      id: ctx.activity.id,
      type: ctx.activity.type,
      occurredAt: ctx.activity.occurredAt,
      attributes: ctx.activity.attributes,
    },
    campaign: ctx.campaign,
  };
  return template.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (_, path: string) => {
    const value = pathValue(root, path);
    if (value === undefined || value === null) return "";
    return escape(typeof value === "object" ? JSON.stringify(value) : String(value));
  });
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The step types every installation has. */
export function builtInStepTypes(deps: { mailer: () => Transporter; from: string }): CampaignStepType[] {
  const email = defineStepType({
    type: "send_email",
    external: true,
    options: z
      .object({
        type: z.literal("send_email"),
        /** Recipient template (default `{{lead.email}}`). */
        to: z.string().max(500).default("{{lead.email}}"),
        from: z.string().max(500).optional(),
        subject: z.string().min(1).max(500),
        text: z.string().max(100_000).optional(),
        html: z.string().max(500_000).optional(),
      })
      .strict()
      .refine((o) => o.text !== undefined || o.html !== undefined, { message: "needs text or html", path: ["text"] }),
    async execute(o, ctx): Promise<StepOutcome> {
      const to = renderTemplate(o.to, ctx).trim();
      if (!/^[^\s@<>]+@[^\s@<>]+$/.test(to)) return { status: "skipped", detail: { reason: "no valid recipient" } };
      const messageId = `<${createHash("sha256").update(ctx.effectKey).digest("hex").slice(0, 40)}@activity-hub>`;
      const info = (await deps.mailer().sendMail({
        from: o.from ?? deps.from,
        to,
        subject: renderTemplate(o.subject, ctx),
        ...(o.text !== undefined ? { text: renderTemplate(o.text, ctx) } : {}),
        ...(o.html !== undefined ? { html: renderTemplate(o.html, ctx, escapeHtml) } : {}),
        messageId,
        headers: { "X-Hub-Effect-Key": ctx.effectKey },
      })) as { messageId?: string };
      return { detail: { to, messageId: info.messageId ?? messageId } };
    },
  });

  const webhook = defineStepType({
    type: "webhook",
    external: true,
    options: z
      .object({
        type: z.literal("webhook"),
        url: z
          .string()
          .url()
          .max(2048)
          .refine((u) => /^https?:\/\//.test(u), "must be http(s)"),
        /** HMAC-SHA256 key for the `X-Hub-Signature` header; never returned by the API. */
        secret: z.string().min(16).max(256),
        timeoutMs: z.number().int().min(100).max(30_000).default(5000),
      })
      .strict(),
    async execute(o, ctx) {
      const body = JSON.stringify({
        campaign: ctx.campaign,
        runId: ctx.runId,
        step: ctx.stepIndex,
        lead: { id: ctx.lead.leadId, score: ctx.lead.score, fields: ctx.lead.fields },
        activity: ctx.activity,
      });
      const timestamp = Math.floor(Date.now() / 1000);
      const signature = createHmac("sha256", o.secret).update(`${timestamp}.${body}`).digest("hex");
      const response = await fetch(o.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-hub-signature": `t=${timestamp},v1=${signature}`,
          "idempotency-key": ctx.effectKey,
        },
        body,
        signal: AbortSignal.timeout(o.timeoutMs),
      });
      await response.arrayBuffer();
      if (response.status >= 300) throw new Error(`webhook answered ${response.status}`);
      return { detail: { status: response.status } };
    },
  });

  const changeScore = defineStepType({
    type: "change_score",
    external: false,
    options: z.object({ type: z.literal("change_score"), delta: z.number().min(-1e6).max(1e6) }).strict(),
    async execute(o, ctx) {
      ctx.leads.changeScore(ctx.tenantId, ctx.lead.leadId, o.delta, ctx.effectKey);
      return { detail: { delta: o.delta } };
    },
  });

  const list = (type: "add_to_list" | "remove_from_list", member: boolean): CampaignStepType =>
    defineStepType({
      type,
      external: false,
      options: z.object({ type: z.literal(type), listId: z.string().min(1).max(200) }).strict(),
      async execute(o, ctx) {
        ctx.leads.setListMember(ctx.tenantId, o.listId, ctx.lead.leadId, member, ctx.effectKey);
        return { detail: { listId: o.listId } };
      },
    });

  return [email, webhook, changeScore, list("add_to_list", true), list("remove_from_list", false)];
}

/** Verifies an `X-Hub-Signature` header (for webhook receivers and tests). */
export function verifyWebhookSignature(secret: string, header: string, body: string, toleranceSeconds = 300): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!match) return false;
  if (Math.abs(Date.now() / 1000 - Number(match[1])) > toleranceSeconds) return false;
  const expected = createHmac("sha256", secret).update(`${match[1]}.${body}`).digest("hex");
  return expected === match[2];
}
