import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Activity } from "../../core/activity/model";
import { constraintSchema, type Campaign } from "./model";
import { compileActivityTest, compileConstraint, compileFilter, qualifies, TriggerIndex, type LeadView } from "./rules";

const c = (op: string, value?: unknown) =>
  constraintSchema.parse({ attribute: "x", op, ...(value !== undefined ? { value } : {}) });
const visit = (url: string, extra: Partial<Activity> = {}): Activity => ({
  id: "a1",
  tenantId: "t1",
  leadId: "l1",
  type: "visit_web_page",
  source: "web",
  occurredAt: "2025-01-31T00:00:00.000Z",
  receivedAt: "",
  attributes: { url, enrichment: { utm: { source: "Ads" } } },
  schemaVersion: 1,
  ...extra,
});
const lead: LeadView = { leadId: "l1", fields: { country: "DE", employees: 250 }, score: 42, lists: new Set(["vip"]) };

describe("campaign rules", () => {
  it("evaluates every constraint operator", () => {
    assert.ok(compileConstraint(c("equals", "Hello"))("hello"));
    assert.ok(!compileConstraint(c("equals", "a"))(undefined));
    assert.ok(compileConstraint(c("not_equals", "a"))("b"));
    assert.ok(compileConstraint(c("contains", "/pricing"))("https://x/PRICING/pro"));
    assert.ok(compileConstraint(c("not_contains", "/pricing"))("https://x/blog"));
    assert.ok(compileConstraint(c("starts_with", "https://"))("https://x"));
    assert.ok(compileConstraint(c("ends_with", ".pdf"))("/a/b.PDF"));
    assert.ok(compileConstraint(c("regex", "^/p\\d+/"))("/p12/x"));
    assert.ok(compileConstraint(c("gt", 10))(11) && !compileConstraint(c("gt", 10))(10));
    assert.ok(compileConstraint(c("gte", 10))("10"));
    assert.ok(compileConstraint(c("lt", 0))(-1) && !compileConstraint(c("lt", 0))("abc"));
    assert.ok(compileConstraint(c("lte", 5))(5));
    assert.ok(compileConstraint(c("in", ["DE", "FR"]))("de"));
    assert.ok(compileConstraint(c("not_in", ["DE"]))("US"));
    assert.ok(compileConstraint(c("exists"))(0) && !compileConstraint(c("exists"))(null));
    assert.ok(compileConstraint(c("not_exists"))(undefined));
  });

  it("rejects malformed constraints", () => {
    assert.equal(constraintSchema.safeParse({ attribute: "x", op: "in", value: "a" }).success, false);
    assert.equal(constraintSchema.safeParse({ attribute: "x", op: "gt", value: "a" }).success, false);
    assert.equal(constraintSchema.safeParse({ attribute: "x", op: "regex", value: "(" }).success, false);
    assert.equal(constraintSchema.safeParse({ attribute: "x", op: "equals" }).success, false);
  });

  it("reads dotted attribute paths, including enrichment", () => {
    const test = compileActivityTest([
      constraintSchema.parse({ attribute: "enrichment.utm.source", op: "equals", value: "ads" }),
    ]);
    assert.ok(test(visit("https://x/")));
  });

  it("evaluates lead filters: fields, lists, score, history window", async () => {
    assert.ok(
      compileFilter({
        kind: "field",
        constraint: constraintSchema.parse({ attribute: "employees", op: "gte", value: 100 }),
      }).sync!(lead),
    );
    assert.ok(compileFilter({ kind: "list", listId: "vip", member: true }).sync!(lead));
    assert.ok(compileFilter({ kind: "list", listId: "churned", member: false }).sync!(lead));
    assert.ok(!compileFilter({ kind: "score", op: "gt", value: 50 }).sync!(lead));
    const history = compileFilter({
      kind: "history",
      activityType: "email_opened",
      constraints: [],
      withinDays: 30,
      min: 1,
    }).history!;
    let asked: { since: number; until: number } | undefined;
    assert.ok(await history(lead, visit("u"), async (q) => ((asked = q), 1)));
    assert.equal(asked!.until - asked!.since, 30 * 86_400_000);
    assert.ok(!(await history(lead, visit("u"), async () => 0)));
    const never = compileFilter({
      kind: "history",
      activityType: "email_unsubscribed",
      constraints: [],
      withinDays: 365,
      min: 0,
      max: 0,
    }).history!;
    assert.ok(await never(lead, visit("u"), async () => 0));
    assert.ok(!(await never(lead, visit("u"), async () => 1)));
  });

  it("applies qualification rules", () => {
    const day = 86_400_000;
    assert.ok(qualifies({ mode: "once" }, undefined, 0));
    assert.ok(!qualifies({ mode: "once" }, { lastAt: 0, count: 1 }, day));
    assert.ok(qualifies({ mode: "every_time" }, { lastAt: 0, count: 9 }, 1));
    assert.ok(!qualifies({ mode: "once_per", days: 7 }, { lastAt: 0, count: 1 }, 6 * day));
    assert.ok(qualifies({ mode: "once_per", days: 7 }, { lastAt: 0, count: 1 }, 7 * day));
  });

  it("indexes triggers by tenant and type, ignoring inactive campaigns", () => {
    const campaign = (
      id: string,
      tenantId: string,
      type: string,
      status: "active" | "inactive" = "active",
    ): Campaign => ({
      id,
      tenantId,
      status,
      name: id,
      version: 1,
      createdAt: "",
      updatedAt: "",
      filters: [],
      qualification: { mode: "once" },
      steps: [{ type: "change_score", delta: 1 }],
      triggers: [
        {
          activityType: type,
          constraints: [constraintSchema.parse({ attribute: "url", op: "contains", value: "/pricing" })],
        },
      ],
    });
    const index = new TriggerIndex([
      campaign("c1", "t1", "visit_web_page"),
      campaign("c2", "t2", "visit_web_page"),
      campaign("c3", "t1", "fill_out_form"),
      campaign("c4", "t1", "visit_web_page", "inactive"),
    ]);
    assert.deepEqual(
      index.matches(visit("https://x/pricing")).map((m) => m.campaign.id),
      ["c1"],
    );
    assert.deepEqual(index.matches(visit("https://x/blog")), []);
  });
});
