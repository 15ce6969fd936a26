import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { LoggerInstance } from "moleculer";
import nodemailer from "nodemailer";
import type { Activity } from "../../core/activity/model";
import { EffectNotPerformed } from "../../sdk/effects";
import { eventually, tempDir } from "../../test/support/tmp";
import { builtInStepTypes, type StepContext } from "./steps";
import { startSmtpSink, startWebhookSink, type ReceivedMail } from "./test-servers";

const ADMIN = "crash-admin-token-0123456789abcdef";
const LEADS = 240;

function startChild(dataDir: string, smtpPort: number): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "crash-child.ts")], {
    env: { ...process.env, HUB_DATA_DIR: dataDir, HUB_TEST_SMTP_PORT: String(smtpPort), HUB_TEST_ADMIN: ADMIN },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("child did not start")), 20_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /READY (\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]! });
      }
    });
    child.once("exit", (code) => reject(new Error(`child exited with ${code}`)));
  });
}

async function call(
  url: string,
  method: string,
  path: string,
  key: string,
  body: unknown,
): Promise<{ status: number; body: { [k: string]: unknown } }> {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as { [k: string]: unknown } };
}

describe("campaigns survive kill -9 mid-stream", () => {
  const tmp = tempDir("campaigns-crash-");
  let child: ChildProcess | undefined;
  after(() => {
    child?.kill("SIGKILL");
    tmp.cleanup();
  });

  it("misses no trigger and never repeats an email", { timeout: 90_000 }, async () => {
    const smtp = await startSmtpSink();
    try {
      let hub = await startChild(tmp.dir, smtp.port);
      child = hub.child;
      const tenant = await call(hub.url, "POST", "/api/v1/admin/tenants", ADMIN, { name: "crash" });
      const key = String(tenant.body.apiKey);
      const campaign = await call(hub.url, "POST", "/api/v1/campaigns", key, {
        name: "every pricing visit",
        triggers: [
          { activityType: "visit_web_page", constraints: [{ attribute: "url", op: "contains", value: "/pricing" }] },
        ],
        qualification: { mode: "every_time" },
        steps: [
          { type: "send_email", to: "{{lead.id}}@example.com", subject: "Pricing", text: "activity {{activity.id}}" },
        ],
      });
      await call(hub.url, "POST", `/api/v1/campaigns/${String(campaign.body.id)}/activate`, key, {});

      const visit = (i: number) => ({
        type: "visit_web_page",
        leadId: `lead-${i}`,
        id: `visit-${i}`,
        attributes: { url: "https://example.com/pricing" },
      });
      let next = 0;
      // Stream in small batches; kill -9 once some emails are out and more are in flight.
      while (next < LEADS / 2) {
        const batch = Array.from({ length: 10 }, (_, j) => visit(next + j));
        assert.equal((await call(hub.url, "POST", "/api/v1/activities", key, { activities: batch })).status, 202);
        next += 10;
      }
      await eventually(() => (smtp.mails.length >= 20 ? true : undefined), 20_000, "first emails");
      hub.child.kill("SIGKILL");
      await new Promise((r) => hub.child.once("exit", r));
      const beforeRestart = smtp.mails.length;
      assert.ok(
        beforeRestart < LEADS / 2,
        `the crash should interrupt the stream (${beforeRestart} emails already out)`,
      );

      hub = await startChild(tmp.dir, smtp.port);
      child = hub.child;
      // A client retrying the last batches (same ids) must not cause duplicates either.
      next -= 20;
      while (next < LEADS) {
        const batch = Array.from({ length: 10 }, (_, j) => visit(next + j));
        assert.equal((await call(hub.url, "POST", "/api/v1/activities", key, { activities: batch })).status, 202);
        next += 10;
      }
      // Wait until every run is done: its email step was performed, or settled as in doubt.
      const campaignsDb = new Database(join(tmp.dir, "campaigns.db"), { readonly: true });
      const ledger = new Database(join(tmp.dir, "effects", "campaigns.db"), { readonly: true });
      try {
        await eventually(
          () =>
            (campaignsDb.prepare("SELECT count(*) AS n FROM runs WHERE status = 'done'").get() as { n: number }).n >=
            LEADS
              ? true
              : undefined,
          30_000,
          "every run done",
        );
        await new Promise((r) => setTimeout(r, 500));
        const leadOfStep = new Map(
          (campaignsDb.prepare("SELECT id, lead_id FROM runs").all() as Array<{ id: string; lead_id: string }>).map(
            (r) => [`${r.id}:0`, r.lead_id],
          ),
        );
        const inDoubt = (
          ledger.prepare("SELECT key FROM effects WHERE status = 'in_doubt'").all() as Array<{ key: string }>
        ).map((r) => r.key);
        const loggedInDoubt = (
          campaignsDb
            .prepare("SELECT run_id FROM log WHERE status = 'skipped' AND detail LIKE '%in_doubt%'")
            .all() as Array<{ run_id: string }>
        ).map((r) => `${r.run_id}:0`);
        const effectKeyOf = (m: ReceivedMail): string => /^X-Hub-Effect-Key:\s*(\S+)/im.exec(m.raw)?.[1] ?? "";
        const delivered = new Set(smtp.mails.map(effectKeyOf));
        const lost = inDoubt.filter((k) => !delivered.has(k));
        const recipients = smtp.mails.map((m) => m.to[0]!);
        const repeats = recipients.length - new Set(recipients).size;
        process.stdout.write(`# raw SMTP repeats after kill -9: ${repeats}\n`);
        process.stdout.write(
          `# emails in doubt after restart: ${inDoubt.length} (${inDoubt.length - lost.length} delivered before the kill, ` +
            `${lost.length} killed after the commit mark was written, before the final dot)\n`,
        );

        // The final dot leaves only after the commit mark is written, and a step found committing
        // after the restart is skipped: the SMTP server never sees a message twice.
        assert.equal(repeats, 0, "no raw SMTP repeat");
        // No missed trigger: every lead got its email, except an email the kill left in doubt
        // (at most one per pooled SMTP connection), which is skipped and logged as such.
        const doubtful = new Set(inDoubt.map((k) => leadOfStep.get(k)));
        const missing = Array.from({ length: LEADS }, (_, i) => `lead-${i}`).filter(
          (lead) => !recipients.includes(`${lead}@example.com`) && !doubtful.has(lead),
        );
        assert.deepEqual(missing, [], "every lead got its email or has it settled in doubt");
        assert.ok(inDoubt.length <= 5, `at most one email in doubt per SMTP connection (${inDoubt.length})`);
        assert.deepEqual(loggedInDoubt.sort(), [...inDoubt].sort(), "in-doubt steps are logged as skipped");
        const perMessage = new Map<string, number>();
        for (const m of smtp.mails) perMessage.set(m.messageId, (perMessage.get(m.messageId) ?? 0) + 1);
        assert.ok(
          [...perMessage.values()].every((n) => n === 1),
          "one Message-ID per (campaign, lead, activity)",
        );
      } finally {
        ledger.close();
        campaignsDb.close();
      }
    } finally {
      child?.kill("SIGKILL");
      await smtp.stop();
    }
  });
});

/** A minimal step context for one external step; `commit` is the effect ledger's commit point. */
function stepContext(effectKey: string, commit: () => Promise<void>): StepContext {
  const activity = {
    id: "act-1",
    tenantId: "t1",
    leadId: "ada",
    type: "visit_web_page",
    source: "api",
    occurredAt: new Date().toISOString(),
    receivedAt: new Date().toISOString(),
    attributes: { url: "https://example.com/pricing" },
    schemaVersion: 1,
  } as unknown as Activity;
  return {
    tenantId: "t1",
    campaign: { id: "cmp", name: "Pricing" },
    lead: { leadId: "ada", fields: { email: "ada@example.com" }, score: 0, lists: new Set() },
    activity,
    runId: "cmp:act-1",
    stepIndex: 0,
    effectKey,
    leads: { changeScore: async () => undefined, setListMember: async () => undefined },
    logger: { warn: () => undefined } as unknown as LoggerInstance,
    commit,
  };
}

describe("the commit point of external steps", () => {
  const settle = (ms = 300): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it("SMTP: a sender killed at its commit point delivers nothing; releasing the dot delivers one", async () => {
    const smtp = await startSmtpSink();
    let sender: ChildProcess | undefined;
    try {
      // A real process holding the message at its commit point (the whole message written, the
      // final dot held back), then killed -9.
      const script = `
        const nodemailer = require("nodemailer");
        const { sendAtCommitPoint } = require(${JSON.stringify(join(__dirname, "steps.ts"))});
        const mailer = nodemailer.createTransport({ pool: true, host: "127.0.0.1", port: ${smtp.port} });
        const message = Buffer.from("From: hub@example.com\\r\\nTo: ada@example.com\\r\\nSubject: held\\r\\n" +
          "Message-ID: <held@example.com>\\r\\n\\r\\nnever delivered\\r\\n");
        sendAtCommitPoint(mailer, { from: "hub@example.com", to: ["ada@example.com"] }, message, () => {
          process.stdout.write("AT COMMIT POINT\\n");
          return new Promise(() => undefined);
        });
      `;
      sender = spawn(process.execPath, ["--import", "tsx", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      sender.stdout!.on("data", (c: Buffer) => (out += c.toString()));
      await eventually(() => (out.includes("AT COMMIT POINT") ? true : undefined), 20_000, "the commit point");
      await settle();
      assert.equal(smtp.mails.length, 0, "nothing is delivered while the dot is held");
      const exited = new Promise((r) => sender!.once("exit", r));
      sender.kill("SIGKILL");
      await exited;
      await settle();
      assert.equal(smtp.mails.length, 0, "a message whose DATA never terminated is discarded");

      // The send_email step, in this process: the commit point resolves, the dot goes out.
      const mailer = nodemailer.createTransport({ pool: true, host: "127.0.0.1", port: smtp.port });
      try {
        const [email] = builtInStepTypes({ mailer: () => mailer, from: "Hub <hub@example.com>" });
        assert.equal(email!.type, "send_email");
        assert.equal(email!.commitPoint, true);
        assert.equal(email!.inDoubt, "skip");
        const options = email!.options.parse({
          type: "send_email",
          subject: "Hi",
          text: "about {{activity.attributes.url}}",
        });

        // A commit point that cannot be made durable (e.g. disk full): the step fails, nothing is sent.
        await assert.rejects(
          email!.execute(
            options,
            stepContext("cmp:act-1:0", async () => {
              throw new Error("disk full");
            }),
          ),
          /disk full/,
        );
        await settle();
        assert.equal(smtp.mails.length, 0);

        let atCommit: number | undefined;
        const outcome = await email!.execute(
          options,
          stepContext("cmp:act-1:0", async () => {
            atCommit = smtp.mails.length;
          }),
        );
        await settle();
        assert.equal(atCommit, 0, "commit() is called before the server has the message");
        assert.equal(smtp.mails.length, 1, "exactly one message after the dot");
        assert.deepEqual(smtp.mails[0]!.to, ["ada@example.com"]);
        assert.match(smtp.mails[0]!.raw, /^X-Hub-Effect-Key: cmp:act-1:0$/m);
        assert.match(smtp.mails[0]!.raw, /about https:\/\/example\.com\/pricing/);
        assert.equal((outcome as { detail: { messageId: string } }).detail.messageId, smtp.mails[0]!.messageId);
      } finally {
        mailer.close();
      }
    } finally {
      sender?.kill("SIGKILL");
      await smtp.stop();
    }
  });

  it("SMTP: a refusal at the end of DATA is EffectNotPerformed", async () => {
    const smtp = await startSmtpSink({ refuse: () => true });
    const mailer = nodemailer.createTransport({ pool: true, host: "127.0.0.1", port: smtp.port });
    try {
      const [email] = builtInStepTypes({ mailer: () => mailer, from: "hub@example.com" });
      const options = email!.options.parse({ type: "send_email", subject: "Hi", text: "x" });
      let committed = false;
      await assert.rejects(
        email!.execute(
          options,
          stepContext("cmp:act-2:0", async () => {
            committed = true;
          }),
        ),
        (error: unknown) => error instanceof EffectNotPerformed && /552/.test(String((error as Error).message)),
      );
      assert.ok(committed);
      assert.equal(smtp.mails.length, 0);
    } finally {
      mailer.close();
      await smtp.stop();
    }
  });

  it("webhook: the receiver gets the last byte only after the commit point; non-2xx is not performed", async () => {
    let status = 204;
    const hooks = await startWebhookSink(() => status);
    try {
      const webhook = builtInStepTypes({ mailer: () => nodemailer.createTransport({}), from: "" }).find(
        (s) => s.type === "webhook",
      )!;
      assert.equal(webhook.commitPoint, true);
      assert.equal(webhook.inDoubt, "repeat");
      const options = webhook.options.parse({ type: "webhook", url: hooks.url, secret: "webhook-secret-0123456789" });
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let reached = false;
      const sending = webhook.execute(
        options,
        stepContext("cmp:act-3:0", async () => {
          reached = true;
          await held;
        }),
      );
      await eventually(() => (reached ? true : undefined), 5000, "the commit point");
      await settle();
      assert.equal(hooks.hooks.length, 0, "the receiver has not got the whole body yet");
      release();
      assert.deepEqual(await sending, { detail: { status: 204 } });
      assert.equal(hooks.hooks.length, 1);
      assert.equal(hooks.hooks[0]!.headers["idempotency-key"], "cmp:act-3:0");
      assert.equal(JSON.parse(hooks.hooks[0]!.body).lead.id, "ada");

      status = 500;
      await assert.rejects(
        webhook.execute(
          options,
          stepContext("cmp:act-4:0", async () => undefined),
        ),
        (error: unknown) => error instanceof EffectNotPerformed && /500/.test(String((error as Error).message)),
      );
    } finally {
      await hooks.stop();
    }
  });
});
