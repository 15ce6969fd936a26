import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { newActivityId } from "../../core/activity/ids";
import { ACTIVITY_SCHEMA_VERSION, type Activity } from "../../core/activity/model";
import { ValidationError } from "../../core/errors";
import type { ActivityStore } from "./contract";

function activity(
  tenantId: string,
  leadId: string,
  type: string,
  occurredAt: number,
  extra: Partial<Activity> = {},
): Activity {
  return {
    id: newActivityId(),
    tenantId,
    leadId,
    type,
    source: "web",
    occurredAt: new Date(occurredAt).toISOString(),
    receivedAt: new Date().toISOString(),
    attributes: {
      url: `https://example.com/${occurredAt}`,
      title: "Café — 東京 👋🏽",
      n: occurredAt % 7,
      nested: { ok: true, list: [1, "two"] },
    },
    schemaVersion: ACTIVITY_SCHEMA_VERSION,
    ...extra,
  };
}

/**
 * The store contract. Every implementation runs this suite; `open()` returns a started store.
 * Tenants are random per run, so the suite can run against a shared server.
 */
export function storeContractSuite(
  name: string,
  open: () => Promise<ActivityStore>,
  cleanup: () => Promise<void> = async () => {},
): void {
  describe(`store contract: ${name}`, () => {
    let store: ActivityStore;
    const tenant = `t-${randomUUID().slice(0, 8)}`;
    const other = `t-${randomUUID().slice(0, 8)}`;
    const base = Date.UTC(2026, 0, 1);

    before(async () => {
      store = await open();
    });
    after(async () => {
      await store.stop();
      await cleanup();
    });

    it("stores and reads back an activity by id, unchanged", async () => {
      const a = activity(tenant, "lead-1", "visit_web_page", base, {
        campaignId: "c1",
        accountId: "acc1",
        clientId: "cid-1",
      });
      await store.put([a]);
      assert.deepEqual(await store.get(tenant, a.id), a);
      assert.equal((await store.health()).ok, true);
    });

    it("never returns another tenant's activity", async () => {
      const a = activity(tenant, "lead-x", "visit_web_page", base);
      await store.put([a]);
      assert.equal(await store.get(other, a.id), undefined);
      assert.deepEqual((await store.leadHistory(other, "lead-x", { limit: 10 })).items, []);
      assert.deepEqual((await store.existing(other, [a.id])).size, 0);
    });

    it("writes idempotently by id", async () => {
      const a = activity(tenant, "lead-idem", "click_link", base);
      await store.put([a]);
      await store.put([a]);
      await store.put([a, a]);
      assert.equal((await store.leadHistory(tenant, "lead-idem", { limit: 10 })).items.length, 1);
    });

    it("pages a lead's history newest first without gaps or repeats", async () => {
      const lead = "lead-paging";
      const written = Array.from({ length: 57 }, (_, i) =>
        activity(tenant, lead, i % 2 ? "email_opened" : "visit_web_page", base + (i % 20) * 1000),
      );
      await store.put(written.slice(0, 30));
      await store.put(written.slice(30));
      await store.put([activity(tenant, "another-lead", "visit_web_page", base)]);
      const seen: Activity[] = [];
      let token: string | undefined;
      for (let page = 0; page < 20; page++) {
        const result = await store.leadHistory(tenant, lead, { limit: 10, ...(token ? { pageToken: token } : {}) });
        seen.push(...result.items);
        token = result.nextPageToken;
        if (!token) break;
      }
      assert.equal(seen.length, 57);
      assert.equal(new Set(seen.map((a) => a.id)).size, 57);
      const expected = [...written].sort(
        (x, y) => Date.parse(y.occurredAt) - Date.parse(x.occurredAt) || (x.id < y.id ? 1 : -1),
      );
      assert.deepEqual(
        seen.map((a) => a.id),
        expected.map((a) => a.id),
      );
    });

    it("filters by types and by an occurredAt window", async () => {
      const lead = "lead-filter";
      const items = Array.from({ length: 10 }, (_, i) =>
        activity(tenant, lead, i < 4 ? "email_sent" : "visit_web_page", base + i * 60_000),
      );
      await store.put(items);
      const sent = await store.leadHistory(tenant, lead, { limit: 100, types: ["email_sent"] });
      assert.equal(sent.items.length, 4);
      assert.ok(sent.items.every((a) => a.type === "email_sent"));
      const window = await store.leadHistory(tenant, lead, {
        limit: 100,
        since: base + 2 * 60_000,
        until: base + 6 * 60_000,
      });
      assert.deepEqual(
        window.items.map((a) => Date.parse(a.occurredAt) - base),
        [5, 4, 3, 2].map((m) => m * 60_000),
      );
      const both = await store.leadHistory(tenant, lead, {
        limit: 100,
        types: ["visit_web_page", "email_sent"],
        since: base + 3 * 60_000,
      });
      assert.equal(both.items.length, 7);
      assert.equal(both.nextPageToken, undefined);
    });

    it("lists a tenant's activities by arrival and type, with paging", async () => {
      const t = `t-${randomUUID().slice(0, 8)}`;
      const arrival = Date.now() - 60_000;
      const items = Array.from({ length: 25 }, (_, i) => {
        const received = arrival + i * 1000;
        return activity(t, `lead-${i % 5}`, i % 5 === 0 ? "fill_out_form" : "visit_web_page", base - i * 1000, {
          id: newActivityId(received),
          receivedAt: new Date(received).toISOString(),
        });
      });
      await store.put(items.slice(10));
      await store.put(items.slice(0, 10));
      const forms = await store.list(t, { limit: 100, types: ["fill_out_form"] });
      assert.equal(forms.items.length, 5);
      const first = await store.list(t, { limit: 10 });
      assert.deepEqual(
        first.items.map((a) => a.id),
        items
          .slice(15)
          .reverse()
          .map((a) => a.id),
        "newest arrival first",
      );
      const rest = await store.list(t, { limit: 100, pageToken: first.nextPageToken! });
      assert.equal(rest.items.length, 15);
      assert.equal(rest.nextPageToken, undefined);
      const windowed = await store.list(t, { limit: 100, since: arrival + 10_000, until: arrival + 20_000 });
      assert.deepEqual(
        windowed.items.map((a) => a.id),
        items
          .slice(10, 20)
          .reverse()
          .map((a) => a.id),
      );
    });

    it("keeps anonymous visitors' history under anon:<id>", async () => {
      const a: Activity = { ...activity(tenant, "x", "visit_web_page", base), anonymousId: "cookie-9" };
      delete a.leadId;
      await store.put([a]);
      const page = await store.leadHistory(tenant, "anon:cookie-9", { limit: 10 });
      assert.deepEqual(
        page.items.map((x) => x.id),
        [a.id],
      );
    });

    it("binds a client id to the first id claimed, per tenant", async () => {
      const firstId = newActivityId();
      const secondId = newActivityId();
      assert.deepEqual(await store.claimClientIds(tenant, [{ clientId: "order-1", proposedId: firstId }]), [firstId]);
      assert.deepEqual(
        await store.claimClientIds(tenant, [
          { clientId: "order-1", proposedId: secondId },
          { clientId: "order-2", proposedId: secondId },
        ]),
        [firstId, secondId],
      );
      const otherId = newActivityId();
      assert.deepEqual(await store.claimClientIds(other, [{ clientId: "order-1", proposedId: otherId }]), [otherId]);
    });

    it("reports which ids exist", async () => {
      const a = activity(tenant, "lead-exists", "visit_web_page", base);
      await store.put([a]);
      const missing = newActivityId();
      assert.deepEqual([...(await store.existing(tenant, [a.id, missing]))], [a.id]);
    });

    it("rejects a page token it did not issue", async () => {
      await assert.rejects(
        store.leadHistory(tenant, "lead-1", { limit: 10, pageToken: "not-a-token" }),
        ValidationError,
      );
    });
  });
}
