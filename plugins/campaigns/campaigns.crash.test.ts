import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { eventually, tempDir } from "../../test/support/tmp";
import { startSmtpSink } from "./test-servers";

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

  it("misses no trigger and sends no duplicate email", { timeout: 90_000 }, async () => {
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
      await eventually(
        () => (new Set(smtp.mails.map((m) => m.to[0])).size >= LEADS ? true : undefined),
        30_000,
        "every email",
      );
      await new Promise((r) => setTimeout(r, 1000));
      const recipients = smtp.mails.map((m) => m.to[0]);
      assert.equal(new Set(recipients).size, LEADS, "no missed trigger");
      // Every email carries a Message-ID derived from (campaign, lead, activity, step): a mailbox
      // shows each once. Raw SMTP repeats can only come from sends the SMTP server accepted in the
      // instant before the kill, before the ledger recorded them: at most one per pooled connection.
      const perLead = new Map<string, Set<string>>();
      for (const m of smtp.mails) perLead.set(m.to[0]!, (perLead.get(m.to[0]!) ?? new Set()).add(m.messageId));
      assert.ok(
        [...perLead.values()].every((ids) => ids.size === 1),
        "one Message-ID per (campaign, lead, activity)",
      );
      const repeats = recipients.length - LEADS;
      process.stdout.write(`# raw SMTP repeats after kill -9: ${repeats}\n`);
      assert.ok(repeats <= 5, `at most one repeat per in-flight SMTP connection (${repeats})`);
    } finally {
      child?.kill("SIGKILL");
      await smtp.stop();
    }
  });
});
