import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { activityIdFloor, activityIdTime, isActivityId, newActivityId } from "./ids";
import { activityJson } from "./serialize";
import { builtInType } from "./types";
import { validateActivityInput, validateTypeDefinition } from "./validate";

const now = Date.UTC(2026, 10, 26, 12);

describe("activity ids", () => {
  it("are unique, time-sortable and monotonic within a millisecond", () => {
    const ids = Array.from({ length: 10_000 }, () => newActivityId(now));
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    assert.ok(ids.every(isActivityId));
    assert.equal(activityIdTime(ids[0]!), now);
    assert.ok(newActivityId(now + 1) > ids[ids.length - 1]!);
    assert.ok(activityIdFloor(now) <= ids[0]! && activityIdFloor(now + 1) > ids[0]!);
    assert.equal(activityIdTime(newActivityId(now - 86_400_000)), now - 86_400_000);
  });
});

describe("activity validation", () => {
  const check = (raw: unknown) => validateActivityInput(raw, "", builtInType, now);

  it("normalises a valid activity", () => {
    const result = check({
      leadId: "L1",
      type: "email_clicked",
      occurredAt: now - 1000,
      attributes: { emailId: "e1", url: "https://x.io/a" },
    });
    assert.ok(result.ok);
    assert.deepEqual(result.value, {
      leadId: "L1",
      type: "email_clicked",
      source: "email",
      occurredAt: new Date(now - 1000).toISOString(),
      attributes: { emailId: "e1", url: "https://x.io/a" },
    });
  });

  it("lists every problem with its field and a stable code", () => {
    const result = check({
      type: "email_bounced",
      source: "fax",
      occurredAt: "2026-13-45",
      attributes: { category: "medium", extra: 1 },
      color: "red",
    });
    assert.ok(!result.ok);
    assert.deepEqual(
      result.errors.map((e) => `${e.field}:${e.code}`).sort(),
      [
        "attributes.category:invalid_value",
        "attributes.emailId:required",
        "attributes.extra:unknown_attribute",
        "color:unknown_field",
        "leadId:required",
        "occurredAt:invalid_format",
        "source:invalid_value",
      ].sort(),
    );
  });

  it("bounds dates, nesting, sizes and Unicode", () => {
    const codes = (raw: unknown) => (check(raw) as { errors: Array<{ code: string }> }).errors.map((e) => e.code);
    assert.deepEqual(codes({ leadId: "L", type: "identify", occurredAt: now + 2 * 86_400_000 }), ["out_of_range"]);
    // Date.parse would move these to another day; they are refused instead.
    for (const occurredAt of ["2026-02-29T10:00:00.000Z", "2026-04-31T10:00:00Z", "2026-01-05T24:00:00+01:00"])
      assert.deepEqual(codes({ leadId: "L", type: "identify", occurredAt }), ["invalid_format"], occurredAt);
    const leapDay = check({ leadId: "L", type: "identify", occurredAt: "2024-02-29T23:30:00-01:00" });
    assert.ok(leapDay.ok && leapDay.value.occurredAt === "2024-03-01T00:30:00.000Z", "zones are normalised to UTC");
    let deep: unknown = 1;
    for (let i = 0; i < 20; i++) deep = [deep];
    assert.deepEqual(codes({ leadId: "L", type: "identify", attributes: { traits: deep } }), ["too_deep"]);
    assert.deepEqual(codes({ leadId: "L", type: "track_event", attributes: { event: "e", s: "\ud800" } }), [
      "invalid_string",
    ]);
    assert.deepEqual(codes({ leadId: "x".repeat(200), type: "identify" }), ["invalid_format"]);
    assert.deepEqual(codes({ leadId: "L", type: "visit_web_page", attributes: { url: "x".repeat(3000) } }), [
      "too_long",
    ]);
  });

  it("validates custom type definitions", () => {
    const ok = validateTypeDefinition({
      name: "demo_booked",
      attributes: { when: { type: "datetime", required: true } },
    });
    assert.ok(ok.ok);
    assert.equal(ok.value.defaultSource, "api");
    const bad = validateTypeDefinition({
      name: "x",
      attributes: { "bad name": { type: "string" }, n: { type: "number", maxLength: -1 } },
      other: 1,
    });
    assert.ok(!bad.ok);
    assert.deepEqual(bad.errors.map((e) => e.field).sort(), [
      "attributes.bad name",
      "attributes.n.maxLength",
      "name",
      "other",
    ]);
  });
});

describe("activity JSON", () => {
  it("is the object's JSON, for copies and frozen activities alike", () => {
    const a = {
      id: newActivityId(now),
      tenantId: "t",
      leadId: "L1",
      type: "email_opened",
      source: "email" as const,
      occurredAt: new Date(now).toISOString(),
      receivedAt: new Date(now).toISOString(),
      attributes: { emailId: "e1" },
      schemaVersion: 1,
    };
    const json = activityJson(a);
    assert.equal(activityJson(a), json);
    assert.deepEqual(JSON.parse(json), a);
    assert.deepEqual(Object.keys(a), Object.keys(JSON.parse(json)));
    const copy = { ...a, type: "email_clicked" };
    assert.equal((JSON.parse(activityJson(copy)) as { type: string }).type, "email_clicked");
    const frozen = Object.freeze({ ...a, leadId: "L2" });
    assert.equal((JSON.parse(activityJson(frozen)) as { leadId: string }).leadId, "L2");
  });
});
