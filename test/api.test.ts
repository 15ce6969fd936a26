import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Analytics } from "@segment/analytics-node";
import { eventually } from "./support/tmp";
import { startTestHub, TEST_ADMIN_TOKEN, type TestHub } from "./support/hub";

const visit = (leadId: string, path = "/pricing", extra: Record<string, unknown> = {}) => ({
  leadId,
  type: "visit_web_page",
  attributes: { url: `https://example.com${path}` },
  ...extra,
});

describe("REST API on the embedded profile", () => {
  let t: TestHub;
  let acme: { tenantId: string; apiKey: string; writeKey: string };
  let globex: { tenantId: string; apiKey: string; writeKey: string };

  before(async () => {
    t = await startTestHub();
    acme = await t.createTenant("acme");
    globex = await t.createTenant("globex");
  });
  after(async () => t.stop());

  it("accepts one activity with 202 and its id, and reads it back", async () => {
    const res = await t.request("POST", "/api/v1/activities", acme.apiKey, visit("lead-1"));
    assert.equal(res.status, 202);
    assert.match(res.body.id, /^[0-9A-Z]{26}$/);
    const got = await t.request("GET", `/api/v1/activities/${res.body.id}`, acme.apiKey);
    assert.equal(got.status, 200);
    assert.equal(got.body.tenantId, acme.tenantId);
    assert.equal(got.body.leadId, "lead-1");
    assert.equal(got.body.source, "web");
    assert.equal(got.body.attributes.url, "https://example.com/pricing");
    assert.ok(Date.parse(got.body.receivedAt) <= Date.now());
  });

  it("accepts a batch as an array and as {activities}", async () => {
    const a = await t.request("POST", "/api/v1/activities", acme.apiKey, [visit("lead-b"), visit("lead-b", "/docs")]);
    assert.equal(a.status, 202);
    assert.equal(a.body.accepted, 2);
    assert.equal(a.body.ids.length, 2);
    const b = await t.request("POST", "/api/v1/activities", acme.apiKey, { activities: [visit("lead-b", "/x")] });
    assert.equal(b.status, 202);
    assert.equal(b.body.accepted, 1);
  });

  it("rejects an invalid batch whole, with per-item field errors, storing nothing", async () => {
    const before = await t.request("GET", "/api/v1/leads/lead-bad/activities", acme.apiKey);
    const res = await t.request("POST", "/api/v1/activities", acme.apiKey, [
      visit("lead-bad"),
      { leadId: "lead-bad", type: "visit_web_page", attributes: { url: 42 } },
      { leadId: "lead-bad", type: "no_such_type" },
      { type: "email_sent", attributes: { emailId: "e1" } },
    ]);
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, "validation_failed");
    const fields = res.body.error.details.map((d: { field: string; code: string }) => `${d.field}:${d.code}`);
    assert.deepEqual(fields, [
      "activities[1].attributes.url:invalid_type",
      "activities[2].type:unknown_type",
      "activities[3].leadId:required",
    ]);
    const after = await t.request("GET", "/api/v1/leads/lead-bad/activities", acme.apiKey);
    assert.equal(after.body.items.length, before.body.items.length);
  });

  it("with ?partial=true stores the valid items and lists the invalid ones by index", async () => {
    const res = await t.request("POST", "/api/v1/activities?partial=true", acme.apiKey, [
      visit("lead-p"),
      { leadId: "lead-p", type: "nope" },
      visit("lead-p", "/b"),
    ]);
    assert.equal(res.status, 202);
    assert.equal(res.body.accepted, 2);
    assert.equal(res.body.rejected, 1);
    assert.equal(res.body.ids[1], null);
    assert.equal(res.body.errors[0].index, 1);
    const history = await t.request("GET", "/api/v1/leads/lead-p/activities", acme.apiKey);
    assert.equal(history.body.items.length, 2);
  });

  it("answers 401 without or with a wrong key, and 403 without the scope", async () => {
    assert.equal((await t.request("POST", "/api/v1/activities", undefined, visit("x"))).status, 401);
    const wrong = await t.request("GET", "/api/v1/activities", "ahk_0000000000000000_" + "A".repeat(43));
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, "invalid_credentials");
    const readOnly = await t.request("POST", "/api/v1/keys", acme.apiKey, { name: "reader", scopes: ["read"] });
    assert.equal(readOnly.status, 201);
    assert.match(readOnly.body.key, /^ahk_/);
    const denied = await t.request("POST", "/api/v1/activities", readOnly.body.key, visit("x"));
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, "insufficient_scope");
    assert.equal((await t.request("GET", "/api/v1/activities", readOnly.body.key)).status, 200);
    const keys = await t.request("GET", "/api/v1/keys", acme.apiKey);
    assert.ok(keys.body.keys.length >= 3);
    assert.ok(!JSON.stringify(keys.body).includes(readOnly.body.key.slice(22)), "key secrets are never listed");
    assert.equal((await t.request("DELETE", `/api/v1/keys/${readOnly.body.keyId}`, acme.apiKey)).status, 204);
    assert.equal((await t.request("GET", "/api/v1/activities", readOnly.body.key)).status, 401);
  });

  it("never lets a tenant reach another tenant's data", async () => {
    const res = await t.request("POST", "/api/v1/activities", acme.apiKey, visit("shared-lead"));
    assert.equal((await t.request("GET", `/api/v1/activities/${res.body.id}`, globex.apiKey)).status, 404);
    assert.equal((await t.request("GET", "/api/v1/leads/shared-lead/activities", globex.apiKey)).body.items.length, 0);
    const list = await t.request("GET", "/api/v1/activities?limit=1000", globex.apiKey);
    assert.ok(list.body.items.every((a: { tenantId: string }) => a.tenantId === globex.tenantId));
    const spoof = await t.request("POST", "/api/v1/activities", globex.apiKey, {
      ...visit("x"),
      tenantId: acme.tenantId,
    });
    assert.equal(spoof.status, 400);
    assert.equal(spoof.body.error.details[0].code, "field_not_allowed");
    assert.equal((await t.request("GET", "/api/v1/admin/tenants", acme.apiKey)).status, 401);
  });

  it("rejects malformed input with 4xx and stable codes, never 5xx", async () => {
    const raw = async (body: string | Buffer, contentType = "application/json") => {
      const r = await fetch(`${t.url}/api/v1/activities`, {
        method: "POST",
        headers: { authorization: `Bearer ${acme.apiKey}`, "content-type": contentType },
        body,
      });
      return { status: r.status, body: (await r.json()) as { error: { code: string } } };
    };
    assert.deepEqual([(await raw("{oops")).status, (await raw("{oops")).body.error.code], [400, "invalid_json"]);
    assert.deepEqual(
      [(await raw("{}", "text/plain")).status, (await raw("{}", "text/plain")).body.error.code],
      [415, "unsupported_media_type"],
    );
    const badUtf8 = Buffer.concat([
      Buffer.from('{"leadId":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('","type":"identify"}'),
    ]);
    assert.deepEqual([(await raw(badUtf8)).status, (await raw(badUtf8)).body.error.code], [400, "invalid_utf8"]);
    const surrogate = await raw('{"leadId":"a","type":"track_event","attributes":{"event":"x","v":"\\ud800"}}');
    assert.equal(surrogate.status, 400);
    const deep = await raw(
      `{"leadId":"a","type":"track_event","attributes":{"event":"x","v":${"[".repeat(5000)}${"]".repeat(5000)}}}`,
    );
    assert.equal(deep.status, 400);
    assert.equal((await raw("x".repeat(2 * 1024 * 1024))).status, 413);
    const tooMany = await t.request(
      "POST",
      "/api/v1/activities",
      acme.apiKey,
      Array.from({ length: 1001 }, () => visit("l")),
    );
    assert.equal(tooMany.status, 413);
    assert.equal(tooMany.body.error.code, "batch_too_large");
    assert.equal((await raw("[]")).body.error.code, "empty_batch");
    assert.equal((await raw("null")).status, 400);
    assert.equal((await raw('"text"')).status, 400);
    assert.equal(
      (await raw('{"leadId":"a","type":"visit_web_page","occurredAt":"yesterday","attributes":{"url":"https://x"}}'))
        .status,
      400,
    );
    assert.equal((await raw('{"leadId":["a"],"type":"visit_web_page"}')).status, 400);
    const empty = await fetch(`${t.url}/api/v1/activities`, {
      method: "POST",
      headers: { authorization: `Bearer ${acme.apiKey}`, "content-type": "application/json" },
    });
    assert.equal(empty.status, 400);
  });

  it("de-duplicates retries carrying an Idempotency-Key or a client id", async () => {
    const body = [visit("lead-idem"), visit("lead-idem", "/2")];
    const first = await t.request("POST", "/api/v1/activities", acme.apiKey, body, { "idempotency-key": "req-123" });
    const second = await t.request("POST", "/api/v1/activities", acme.apiKey, body, { "idempotency-key": "req-123" });
    assert.equal(first.status, 202);
    assert.deepEqual(second.body.ids, first.body.ids);
    const one = await t.request(
      "POST",
      "/api/v1/activities",
      acme.apiKey,
      visit("lead-idem", "/3", { id: "client-abc" }),
    );
    const again = await t.request(
      "POST",
      "/api/v1/activities",
      acme.apiKey,
      visit("lead-idem", "/3", { id: "client-abc" }),
    );
    assert.equal(again.body.id, one.body.id);
    const history = await t.request("GET", "/api/v1/leads/lead-idem/activities", acme.apiKey);
    assert.equal(history.body.items.length, 3);
    const sameKeyOtherTenant = await t.request(
      "POST",
      "/api/v1/activities",
      globex.apiKey,
      visit("lead-idem", "/3", { id: "client-abc" }),
    );
    assert.notEqual(sameKeyOtherTenant.body.id, one.body.id);
  });

  it("pages a lead's history newest first and filters by type and time", async () => {
    const base = Date.now() - 3600_000;
    const batch = Array.from({ length: 25 }, (_, i) => ({
      leadId: "lead-page",
      type: i % 5 === 0 ? "email_opened" : "visit_web_page",
      occurredAt: new Date(base + i * 1000).toISOString(),
      attributes: i % 5 === 0 ? { emailId: "e" } : { url: `https://example.com/${i}` },
    }));
    assert.equal((await t.request("POST", "/api/v1/activities", acme.apiKey, batch)).status, 202);
    const seen: string[] = [];
    let token: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await t.request(
        "GET",
        `/api/v1/leads/lead-page/activities?limit=10${token ? `&pageToken=${token}` : ""}`,
        acme.apiKey,
      );
      assert.equal(page.status, 200);
      seen.push(...page.body.items.map((a: { occurredAt: string }) => a.occurredAt));
      token = page.body.nextPageToken;
      if (!token) break;
    }
    assert.equal(seen.length, 25);
    assert.deepEqual(seen, [...seen].sort().reverse());
    const opened = await t.request("GET", "/api/v1/leads/lead-page/activities?types=email_opened", acme.apiKey);
    assert.equal(opened.body.items.length, 5);
    const window = await t.request(
      "GET",
      `/api/v1/leads/lead-page/activities?since=${base + 10_000}&until=${new Date(base + 20_000).toISOString()}`,
      acme.apiKey,
    );
    assert.equal(window.body.items.length, 10);
    const tenantWide = await t.request("GET", "/api/v1/activities?types=email_opened&limit=3", acme.apiKey);
    assert.equal(tenantWide.body.items.length, 3);
    assert.ok(tenantWide.body.nextPageToken);
    const bad = await t.request("GET", "/api/v1/leads/lead-page/activities?limit=0&pageToken=zzz&bogus=1", acme.apiKey);
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.error.details.map((d: { field: string }) => d.field).sort(), ["bogus", "limit"]);
    const badToken = await t.request("GET", "/api/v1/leads/lead-page/activities?pageToken=zzz", acme.apiKey);
    assert.equal(badToken.body.error.details[0].code, "invalid_page_token");
  });

  it("manages custom activity types and validates activities against them", async () => {
    const def = {
      name: "webinar_attended",
      description: "Attended a webinar",
      attributes: { webinarId: { type: "string", required: true }, minutes: { type: "integer" } },
    };
    assert.equal((await t.request("POST", "/api/v1/activity-types", acme.apiKey, def)).status, 201);
    assert.equal((await t.request("POST", "/api/v1/activity-types", acme.apiKey, def)).status, 409);
    const builtIn = await t.request("POST", "/api/v1/activity-types", acme.apiKey, { ...def, name: "visit_web_page" });
    assert.equal(builtIn.body.error.code, "type_is_built_in");
    const badDef = await t.request("POST", "/api/v1/activity-types", acme.apiKey, {
      name: "Bad Name",
      attributes: { x: { type: "blob" } },
    });
    assert.deepEqual(
      badDef.body.error.details.map((d: { field: string }) => d.field),
      ["name", "attributes.x.type"],
    );
    const ok = await t.request("POST", "/api/v1/activities", acme.apiKey, {
      leadId: "l",
      type: "webinar_attended",
      attributes: { webinarId: "w1", minutes: 42 },
    });
    assert.equal(ok.status, 202);
    const bad = await t.request("POST", "/api/v1/activities", acme.apiKey, {
      leadId: "l",
      type: "webinar_attended",
      attributes: { minutes: 4.5 },
    });
    assert.deepEqual(bad.body.error.details.map((d: { field: string }) => d.field).sort(), [
      "attributes.minutes",
      "attributes.webinarId",
    ]);
    const other = await t.request("POST", "/api/v1/activities", globex.apiKey, {
      leadId: "l",
      type: "webinar_attended",
      attributes: { webinarId: "w1" },
    });
    assert.equal(other.body.error.details[0].code, "unknown_type", "custom types are per tenant");
    const listed = await t.request("GET", "/api/v1/activity-types", acme.apiKey);
    assert.ok(listed.body.builtIn.length >= 15);
    assert.deepEqual(
      listed.body.custom.map((d: { name: string }) => d.name),
      ["webinar_attended"],
    );
    assert.equal(
      (
        await t.request("PUT", "/api/v1/activity-types/webinar_attended", acme.apiKey, {
          ...def,
          additionalAttributes: true,
        })
      ).status,
      200,
    );
    assert.equal((await t.request("DELETE", "/api/v1/activity-types/webinar_attended", acme.apiKey)).status, 204);
    const gone = await t.request("POST", "/api/v1/activities", acme.apiKey, {
      leadId: "l",
      type: "webinar_attended",
      attributes: { webinarId: "w1" },
    });
    assert.equal(gone.status, 400);
    const audit = await t.request("GET", "/api/v1/audit", acme.apiKey);
    assert.ok(audit.body.entries.some((e: { action: string }) => e.action === "type.delete"));
  });

  it("throttles a tenant over its quota with 429 and Retry-After", async () => {
    const small = await t.createTenant("small", { rate: 1, burst: 5 });
    assert.equal(
      (
        await t.request(
          "POST",
          "/api/v1/activities",
          small.apiKey,
          Array.from({ length: 5 }, () => visit("q")),
        )
      ).status,
      202,
    );
    const limited = await t.request("POST", "/api/v1/activities", small.apiKey, visit("q"));
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, "rate_limited");
    assert.ok(Number(limited.headers.get("retry-after")) >= 1);
    assert.equal(
      (await t.request("POST", "/api/v1/activities", acme.apiKey, visit("q"))).status,
      202,
      "other tenants are unaffected",
    );
  });

  it("takes Segment-spec calls from the real @segment/analytics-node client", async () => {
    const analytics = new Analytics({
      writeKey: acme.writeKey,
      host: t.url,
      flushAt: 3,
      flushInterval: 200,
      maxRetries: 1,
    });
    analytics.track({ userId: "seg-user", event: "Signed Up", properties: { plan: "pro" }, messageId: "m-1" });
    analytics.page({
      userId: "seg-user",
      name: "Pricing",
      properties: { url: "https://example.com/pricing", title: "Pricing" },
    });
    analytics.identify({ userId: "seg-user", traits: { email: "a@example.com" } });
    analytics.screen({ anonymousId: "device-1", name: "Home" });
    await analytics.closeAndFlush({ timeout: 10_000 });
    const history = await eventually(async () => {
      const h = await t.request("GET", "/api/v1/leads/seg-user/activities", acme.apiKey);
      return h.body.items.length >= 3 ? h.body.items : undefined;
    });
    const types = history.map((a: { type: string }) => a.type).sort();
    assert.deepEqual(types, ["identify", "track_event", "visit_web_page"]);
    const track = history.find((a: { type: string }) => a.type === "track_event");
    assert.equal(track.attributes.event, "Signed Up");
    assert.equal(track.attributes.plan, "pro");
    const anon = await t.request("GET", "/api/v1/leads/anon:device-1/activities", acme.apiKey);
    assert.equal(anon.body.items[0].type, "mobile_event");
  });

  it("answers Segment batches per message and refuses API keys on Segment routes", async () => {
    const basic = `Basic ${Buffer.from(`${acme.writeKey}:`).toString("base64")}`;
    const send = (body: unknown, auth = basic) =>
      fetch(`${t.url}/v1/batch`, {
        method: "POST",
        headers: { authorization: auth, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const mixed = await send({
      batch: [
        { type: "track", userId: "u", event: "E" },
        { type: "track", userId: "u" },
        { type: "alias", userId: "u" },
      ],
    });
    assert.equal(mixed.status, 200);
    const body = (await mixed.json()) as { accepted: number; rejected: Array<{ index: number }> };
    assert.equal(body.accepted, 1);
    assert.deepEqual(
      body.rejected.map((r) => r.index),
      [1, 2],
    );
    const none = await send({ batch: [{ type: "track", userId: "u" }] });
    assert.equal(none.status, 400);
    const withApiKey = await send({ batch: [] }, `Basic ${Buffer.from(`${acme.apiKey}:`).toString("base64")}`);
    assert.equal(withApiKey.status, 401);
  });

  it("keeps lead profiles from the queue", async () => {
    await t.request("POST", "/api/v1/activities", acme.apiKey, [
      visit("lead-prof"),
      visit("lead-prof"),
      { leadId: "lead-prof", type: "email_opened", attributes: { emailId: "e" } },
    ]);
    const profile = await eventually(async () => {
      const p = await t.request("GET", "/api/v1/leads/lead-prof", acme.apiKey);
      return p.status === 200 && p.body.activityCount === 3 ? p.body : undefined;
    });
    assert.deepEqual(profile.countsByType, { visit_web_page: 2, email_opened: 1 });
    assert.equal((await t.request("GET", "/api/v1/leads/lead-prof", globex.apiKey)).status, 404);
  });

  it("runs a reconciliation pass on demand over the recorded windows and an operator's window", async () => {
    const path = "/api/v1/admin/reconcile";
    assert.equal((await t.request("POST", path, acme.apiKey)).status, 401, "platform token only");
    const bad = await t.request("POST", path, TEST_ADMIN_TOKEN, { since: "yesterday-ish", until: Date.now() });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.details[0].field, "since");
    assert.equal(bad.body.error.details[0].code, "invalid_time");
    const backwards = await t.request("POST", path, TEST_ADMIN_TOKEN, { since: Date.now(), until: Date.now() - 1 });
    assert.equal(backwards.body.error.details[0].code, "invalid_window");

    // No write failed and the hub never crashed: nothing to check.
    const idle = await t.request("POST", path, TEST_ADMIN_TOKEN);
    assert.equal(idle.status, 200);
    assert.equal(idle.body.windows, 0);
    assert.equal(idle.body.checked, 0);

    // An operator's window: checked once the grace period (30 s) is behind it, pending until then.
    const old = await t.request("POST", path, TEST_ADMIN_TOKEN, {
      since: new Date(Date.now() - 600_000).toISOString(),
      until: new Date(Date.now() - 60_000).toISOString(),
    });
    assert.equal(old.status, 200);
    assert.equal(old.body.windows, 1);
    assert.equal(old.body.repairedToStore + old.body.repairedToQueue, 0);
    const recent = await t.request("POST", path, TEST_ADMIN_TOKEN, { since: Date.now() - 5_000, until: Date.now() });
    assert.equal(recent.body.windows, 0);
    assert.equal(recent.body.pendingWindows, 1);
    assert.deepEqual((await t.request("GET", path, TEST_ADMIN_TOKEN)).body, recent.body);
  });

  it("serves health checks and the OpenAPI document", async () => {
    assert.equal((await t.request("GET", "/health/live", undefined)).status, 200);
    const ready = await t.request("GET", "/health/ready", undefined);
    assert.equal(ready.status, 200);
    assert.equal(ready.body.status, "ready");
    const doc = await t.request("GET", "/api/openapi.json", undefined);
    assert.equal(doc.body.openapi, "3.1.0");
    assert.ok(doc.body.paths["/api/v1/activities"].post);
    assert.equal((await t.request("GET", "/api/v1/nope", acme.apiKey)).status, 404);
  });
});
