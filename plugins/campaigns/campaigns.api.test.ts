import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startTestHub, type TestHub } from "../../test/support/hub";
import { eventually } from "../../test/support/tmp";
import { restIngestionPlugin } from "../ingestion/plugin";
import { webEnrichmentPlugin } from "../web-enrichment/plugin";
import { campaignsPlugin } from "./plugin";
import { verifyWebhookSignature } from "./steps";
import { startSmtpSink, startWebhookSink } from "./test-servers";

const SECRET = "webhook-secret-0123456789";

describe("triggered campaigns over REST, with a real SMTP server and webhook receiver", () => {
  let t: TestHub;
  let smtp: Awaited<ReturnType<typeof startSmtpSink>>;
  let hooks: Awaited<ReturnType<typeof startWebhookSink>>;
  let failNext = 0;
  let apiKey: string;

  before(async () => {
    smtp = await startSmtpSink();
    hooks = await startWebhookSink(() => (failNext-- > 0 ? 500 : 204));
    t = await startTestHub({
      plugins: [restIngestionPlugin, webEnrichmentPlugin, campaignsPlugin],
      config: { plugins: { campaigns: { smtp: { port: smtp.port }, waitPollMs: 100 } } },
    });
    ({ apiKey } = await t.createTenant());
  });
  after(async () => {
    await t.stop();
    await smtp.stop();
    await hooks.stop();
  });

  const post = (body: unknown) => t.request("POST", "/api/v1/activities", apiKey, body);

  it("fires the pricing campaign within a second, once per lead, with email, score and webhook", async () => {
    const created = await t.request("POST", "/api/v1/campaigns", apiKey, {
      name: "Pricing visitors who read our emails",
      triggers: [
        { activityType: "visit_web_page", constraints: [{ attribute: "url", op: "contains", value: "/pricing" }] },
      ],
      filters: [{ kind: "history", activityType: "email_opened", withinDays: 30 }],
      qualification: { mode: "once" },
      steps: [
        { type: "send_email", subject: "Hi {{lead.firstName}}", text: "You looked at {{activity.attributes.url}}" },
        { type: "change_score", delta: 10 },
        { type: "webhook", url: hooks.url, secret: SECRET },
      ],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.steps[2].secret, undefined);
    assert.equal(created.body.steps[2].secretSet, true);
    const id = created.body.id as string;
    const activated = await t.request("POST", `/api/v1/campaigns/${id}/activate`, apiKey, {});
    assert.equal(activated.body.status, "active", JSON.stringify(activated.body));

    await post({
      type: "identify",
      leadId: "ada",
      attributes: { traits: { email: "ada@example.com", firstName: "Ada" } },
    });
    await post({
      type: "identify",
      leadId: "bob",
      attributes: { traits: { email: "bob@example.com", firstName: "Bob" } },
    });
    await post({
      type: "email_opened",
      leadId: "ada",
      occurredAt: new Date(Date.now() - 5 * 86_400_000).toISOString(),
      attributes: { emailId: "e1" },
    });
    // Bob never opened an email: filtered out. Ada visits pricing twice: fires once.
    await new Promise((r) => setTimeout(r, 300));
    const sentAt = Date.now();
    await post({ type: "visit_web_page", leadId: "ada", attributes: { url: "https://example.com/pricing" } });
    await post({ type: "visit_web_page", leadId: "bob", attributes: { url: "https://example.com/pricing" } });
    await eventually(
      () => (smtp.mails.length >= 1 && hooks.hooks.length >= 1 ? true : undefined),
      5000,
      "email and webhook",
    );
    assert.ok(Date.now() - sentAt < 1000, `fired after ${Date.now() - sentAt} ms`);
    await post({ type: "visit_web_page", leadId: "ada", attributes: { url: "https://example.com/pricing?again=1" } });
    await new Promise((r) => setTimeout(r, 500));

    assert.equal(smtp.mails.length, 1);
    assert.deepEqual(smtp.mails[0]!.to, ["ada@example.com"]);
    assert.match(smtp.mails[0]!.raw, /Subject: Hi Ada/);
    assert.equal(hooks.hooks.length, 1);
    const hook = hooks.hooks[0]!;
    assert.ok(verifyWebhookSignature(SECRET, String(hook.headers["x-hub-signature"]), hook.body));
    assert.equal(JSON.parse(hook.body).lead.id, "ada");
    const state = await t.request("GET", "/api/v1/leads/ada/campaign-state", apiKey);
    assert.equal(state.body.score, 10);

    const log = await t.request("GET", `/api/v1/campaigns/${id}/log`, apiKey);
    assert.deepEqual(log.body.items.map((e: { status: string }) => e.status).reverse(), [
      "triggered",
      "done",
      "done",
      "done",
      "completed",
    ]);
    const leadLog = await t.request("GET", "/api/v1/leads/bob/campaign-log", apiKey);
    assert.equal(leadLog.body.items.length, 0);
  });

  it("retries a failing webhook, waits durably, and keeps tenants apart", async () => {
    const created = await t.request("POST", "/api/v1/campaigns", apiKey, {
      name: "Form fill follow-up",
      triggers: [
        { activityType: "fill_out_form", constraints: [{ attribute: "formId", op: "in", value: ["demo", "trial"] }] },
      ],
      qualification: { mode: "every_time" },
      steps: [
        { type: "wait", minutes: 0.005 },
        { type: "webhook", url: hooks.url, secret: SECRET },
        { type: "add_to_list", listId: "hot" },
      ],
    });
    const id = created.body.id as string;
    await t.request("POST", `/api/v1/campaigns/${id}/activate`, apiKey, {});
    const before = hooks.hooks.length;
    failNext = 2;
    await post({ type: "fill_out_form", leadId: "cy", attributes: { formId: "demo" } });
    await eventually(() => (hooks.hooks.length > before ? true : undefined), 10_000, "webhook after retries");
    await eventually(
      async () =>
        (await t.request("GET", "/api/v1/leads/cy/campaign-state", apiKey)).body.lists[0] === "hot" ? true : undefined,
      5000,
      "list",
    );
    // The run's last log line is written after its list change is visible: wait for it.
    const statuses = await eventually(
      async () => {
        const log = await t.request("GET", `/api/v1/campaigns/${id}/log`, apiKey);
        const all = log.body.items.map((e: { status: string }) => e.status) as string[];
        return all.includes("completed") ? all : undefined;
      },
      5000,
      "run completed",
    );
    assert.ok(
      statuses.includes("waiting") && statuses.includes("error") && statuses.includes("completed"),
      statuses.join(","),
    );

    const other = await t.createTenant();
    assert.equal((await t.request("GET", `/api/v1/campaigns/${id}`, other.apiKey)).status, 404);
    assert.equal((await t.request("GET", "/api/v1/campaigns", other.apiKey)).body.items.length, 0);
  });

  it("rejects invalid campaigns with field-level errors", async () => {
    const bad = await t.request("POST", "/api/v1/campaigns", apiKey, {
      name: "bad",
      triggers: [{ activityType: "visit_web_page", constraints: [{ attribute: "url", op: "regex", value: "(" }] }],
      steps: [{ type: "teleport" }],
    });
    assert.equal(bad.status, 400);
    const fields = bad.body.error.details.map((d: { field: string }) => d.field);
    assert.ok(fields.includes("triggers.0.constraints.0.value"), fields.join(","));
  });
});
