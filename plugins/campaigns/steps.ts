import { createHash, createHmac } from "node:crypto";
import { PassThrough } from "node:stream";
import type { LoggerInstance } from "moleculer";
import type { Transporter } from "nodemailer";
import MailComposer from "nodemailer/lib/mail-composer";
import { z } from "zod";
import type { Activity, JsonValue } from "../../core/activity/model";
import { ValidationError, type FieldError } from "../../core/errors";
import { EffectNotPerformed, type InDoubtPolicy } from "../../sdk/effects";
import { pathValue, type LeadView } from "./rules";

/** Changes to lead state that internal steps make; each applies once per effect key. */
export interface LeadStateWriter {
  changeScore(tenantId: string, leadId: string, delta: number, effectKey: string): Promise<void>;
  setListMember(tenantId: string, listId: string, leadId: string, member: boolean, effectKey: string): Promise<void>;
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
  /**
   * For external steps, the effect ledger's commit point: await it right before the irrevocable
   * instant (the last byte that makes the receiver act); it resolves once the mark is written (see
   * `CommitPoint`: it survives a process crash at once). Throw
   * `EffectNotPerformed` when the receiver then refused. A no-op for internal steps.
   */
  commit: () => Promise<void>;
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
  /** For external steps: `execute` calls `ctx.commit()` right before its irrevocable instant. */
  commitPoint?: boolean;
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
    commitPoint: true,
    // Past the commit point only the final dot's round trip is in doubt: never send twice.
    inDoubt: "skip",
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
      const mime = new MailComposer({
        from: o.from ?? deps.from,
        to,
        subject: renderTemplate(o.subject, ctx),
        ...(o.text !== undefined ? { text: renderTemplate(o.text, ctx) } : {}),
        ...(o.html !== undefined ? { html: renderTemplate(o.html, ctx, escapeHtml) } : {}),
        messageId,
        headers: { "X-Hub-Effect-Key": ctx.effectKey },
      }).compile();
      const from = mime.getEnvelope().from;
      if (from === false) throw new Error("send_email: no valid sender address");
      await sendAtCommitPoint(deps.mailer(), { from, to: [to] }, await mime.build(), ctx.commit);
      return { detail: { to, messageId } };
    },
  });

  const webhook = defineStepType({
    type: "webhook",
    external: true,
    commitPoint: true,
    // Receivers de-duplicate by Idempotency-Key: a webhook left in doubt is sent again.
    inDoubt: "repeat",
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
      const status = await postAtCommitPoint(
        o.url,
        {
          "content-type": "application/json",
          "x-hub-signature": `t=${timestamp},v1=${signature}`,
          "idempotency-key": ctx.effectKey,
        },
        Buffer.from(body),
        o.timeoutMs,
        ctx.commit,
      );
      return { detail: { status } };
    },
  });

  const changeScore = defineStepType({
    type: "change_score",
    external: false,
    options: z.object({ type: z.literal("change_score"), delta: z.number().min(-1e6).max(1e6) }).strict(),
    async execute(o, ctx) {
      await ctx.leads.changeScore(ctx.tenantId, ctx.lead.leadId, o.delta, ctx.effectKey);
      return { detail: { delta: o.delta } };
    },
  });

  const list = (type: "add_to_list" | "remove_from_list", member: boolean): CampaignStepType =>
    defineStepType({
      type,
      external: false,
      options: z.object({ type: z.literal(type), listId: z.string().min(1).max(200) }).strict(),
      async execute(o, ctx) {
        await ctx.leads.setListMember(ctx.tenantId, o.listId, ctx.lead.leadId, member, ctx.effectKey);
        return { detail: { listId: o.listId } };
      },
    });

  return [email, webhook, changeScore, list("add_to_list", true), list("remove_from_list", false)];
}

/** Raw message streams waiting for their SMTP data phase, and the transporters that report it. */
const dataPhaseWaiters = new WeakMap<object, () => void>();
const reportingTransporters = new WeakSet<Transporter>();

/**
 * Reports when the SMTP connection starts streaming a message (after the server's 354 reply to
 * DATA): the pool connection pipes the message's output stream only then, so its `resume` is the
 * signal. (A DKIM signer reads the whole message earlier; the report then comes earlier too.)
 */
function reportDataPhase(mailer: Transporter): void {
  if (reportingTransporters.has(mailer)) return;
  reportingTransporters.add(mailer);
  mailer.use("stream", (mail, done) => {
    const raw = mail.data.raw;
    const waiter = typeof raw === "object" && raw !== null ? dataPhaseWaiters.get(raw) : undefined;
    if (waiter) {
      mail.message.processFunc((output) => {
        output.once("resume", waiter);
        return output;
      });
    }
    done();
  });
}

/**
 * Sends a composed message through the pooled transporter with the final dot held back: the whole
 * message is handed over as a raw stream whose end is only pushed after `commit()` resolved.
 * Nodemailer writes the terminating `\r\n.\r\n` only once that stream ends, and an SMTP server
 * discards a message whose DATA never terminated; so a crash before the commit point delivers
 * nothing. Commits once the server took the envelope and the body is streaming (not while the
 * message waits in the pool queue or for the 354). Refusals (a 4xx/5xx reply, or a failure
 * before the dot was released) throw `EffectNotPerformed`; other failures after it are in doubt.
 */
export async function sendAtCommitPoint(
  mailer: Transporter,
  envelope: { from: string; to: string[] },
  message: Buffer,
  commit: () => Promise<void>,
): Promise<void> {
  const raw = new PassThrough();
  raw.write(message);
  const streaming = new Promise<void>((resolve) => dataPhaseWaiters.set(raw, resolve));
  reportDataPhase(mailer);
  let failed = false;
  const sending = mailer.sendMail({ envelope, raw }).catch((error: unknown) => {
    failed = true;
    throw error;
  });
  sending.catch(() => undefined); // awaited below; settles early only on failure
  const refused = (error: unknown): unknown => {
    const code = Number((error as { responseCode?: unknown }).responseCode);
    return code >= 400
      ? new EffectNotPerformed(`SMTP refused the message: ${String((error as Error).message)}`, { cause: error })
      : error;
  };
  try {
    await Promise.race([streaming, sending]);
  } catch (error) {
    throw refused(error);
  }
  await passCommitPoint(
    commit,
    (error) => raw.destroy(error instanceof Error ? error : new Error(String(error))),
    sending,
    () => failed,
    "SMTP send failed before the final dot",
  );
  raw.end(); // releases the terminating dot: the irrevocable instant
  try {
    await sending;
  } catch (error) {
    throw refused(error);
  }
}

/**
 * The commit point of a send whose last part is still held back: runs `commit()`, aborting the
 * send if that throws. If the send failed meanwhile, the receiver never got the whole of it:
 * `EffectNotPerformed` (`what` says which part). Otherwise the caller releases the last part.
 */
async function passCommitPoint(
  commit: () => Promise<void>,
  abort: (error: unknown) => void,
  sending: Promise<unknown>,
  failed: () => boolean,
  what: string,
): Promise<void> {
  try {
    await commit();
  } catch (error) {
    abort(error);
    await sending.catch(() => undefined);
    throw error;
  }
  if (failed()) {
    const error = await sending.then(
      () => undefined,
      (e: unknown) => e,
    );
    throw new EffectNotPerformed(`${what}: ${String(error)}`, { cause: error });
  }
}

/**
 * POSTs `body` with its last byte held back until `commit()` resolved: an HTTP receiver only acts
 * on a request once its body is complete. Commits once the request is on its way (the connection
 * took all but the last byte). Any status received means the receiver answered: 2xx resolves with
 * it, others throw `EffectNotPerformed`; a failure before the last byte was released does too.
 * Failures after it (timeout, reset) are left in doubt.
 */
export async function postAtCommitPoint(
  url: string,
  headers: Record<string, string>,
  body: Buffer,
  timeoutMs: number,
  commit: () => Promise<void>,
): Promise<number> {
  let started!: () => void;
  const reading = new Promise<void>((resolve) => (started = resolve));
  let release!: (go: boolean) => void;
  const released = new Promise<boolean>((resolve) => (release = resolve));
  let pulls = 0;
  let lastByteSent = false;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        pulls++;
        if (pulls === 1 && body.length > 1) {
          controller.enqueue(body.subarray(0, body.length - 1));
          return;
        }
        started(); // the connection took everything but the last byte
        if (!(await released)) return controller.error(new Error("commit point not reached"));
        lastByteSent = true;
        if (body.length > 0) controller.enqueue(body.subarray(body.length - 1));
        controller.close();
      },
    },
    { highWaterMark: 0 },
  );
  let failed = false;
  const responding = fetch(url, {
    method: "POST",
    headers: { ...headers, "content-length": String(body.length) },
    body: stream,
    duplex: "half",
    // A redirect is an answer: the receiver did not take the request (a streamed body cannot be resent).
    redirect: "manual",
    signal: AbortSignal.timeout(timeoutMs),
  }).catch((error: unknown) => {
    failed = true;
    throw error;
  });
  responding.catch(() => undefined); // awaited below; settles early only on failure or an early answer
  const answered = (status: number): number => {
    if (status >= 200 && status < 300) return status;
    throw new EffectNotPerformed(`webhook answered ${status}`);
  };
  let early: Response | undefined;
  try {
    early = await Promise.race([reading.then(() => undefined), responding]);
  } catch (error) {
    release(false);
    throw error;
  }
  if (early) {
    // Answered before the whole body arrived (e.g. 401 without reading it).
    release(false);
    await early.arrayBuffer().catch(() => undefined);
    return answered(early.status);
  }
  await passCommitPoint(
    commit,
    () => release(false),
    responding,
    () => failed,
    "webhook failed before the last byte",
  );
  release(true);
  let response: Response;
  try {
    response = await responding;
  } catch (error) {
    if (!lastByteSent)
      throw new EffectNotPerformed(`webhook failed before the last byte: ${String(error)}`, { cause: error });
    throw error;
  }
  await response.arrayBuffer().catch(() => undefined);
  return answered(response.status);
}

/** Verifies an `X-Hub-Signature` header (for webhook receivers and tests). */
export function verifyWebhookSignature(secret: string, header: string, body: string, toleranceSeconds = 300): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!match) return false;
  if (Math.abs(Date.now() / 1000 - Number(match[1])) > toleranceSeconds) return false;
  const expected = createHmac("sha256", secret).update(`${match[1]}.${body}`).digest("hex");
  return expected === match[2];
}
