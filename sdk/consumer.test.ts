import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { z } from "zod";
import { deadLetter, defineConsumer, drop, ok, retry, type Outcome } from "./index";
import { startConsumerHarness, type ConsumerHarness } from "./testing";

const sent: string[] = [];
const attempts = new Map<string, number>();

const demo = defineConsumer({
  id: "sdk-demo",
  version: "1.0.0",
  description: "exercises every outcome",
  config: z.object({ greeting: z.string().default("hi") }).strict(),
  subscribe: { types: ["track_event"] },
  delivery: { batchSize: 10, retries: { max: 2, initialBackoffMs: 5 } },
  start: (ctx) => ({ greeting: ctx.config.greeting }),
  async handle(batch, ctx) {
    const outcomes: Outcome[] = [];
    for (const activity of batch) {
      const event = String(activity.attributes.event);
      const seen = (attempts.get(activity.id) ?? 0) + 1;
      attempts.set(activity.id, seen);
      if (event === "ignore") outcomes.push(drop("not interesting"));
      else if (event === "poison") outcomes.push(deadLetter("cannot handle"));
      else if (event === "flaky" && seen < 2) outcomes.push(retry("first try fails"));
      else if (event === "broken") outcomes.push(retry("always fails"));
      else {
        await ctx.effects.once(`send:${activity.id}`, async () => {
          sent.push(`${ctx.state.greeting} ${activity.leadId}`);
        });
        outcomes.push(ok());
      }
    }
    return outcomes;
  },
});

describe("defineConsumer", () => {
  let harness: ConsumerHarness;
  before(async () => {
    harness = await startConsumerHarness(demo, { config: { greeting: "hello" } });
  });
  after(() => harness.stop());

  it("handles, drops, retries, dead-letters and skips unsubscribed types", async () => {
    const reports = await harness.deliver([
      { type: "track_event", leadId: "a", attributes: { event: "signup" } },
      { type: "track_event", leadId: "b", attributes: { event: "ignore" } },
      { type: "track_event", leadId: "c", attributes: { event: "poison" } },
      { type: "track_event", leadId: "d", attributes: { event: "flaky" } },
      { type: "track_event", leadId: "e", attributes: { event: "broken" } },
      { type: "visit_web_page", leadId: "f", attributes: { url: "https://x.test/" } },
    ]);
    assert.deepEqual(sent.sort(), ["hello a", "hello d"]);
    const kinds = reports.flatMap((r) => r.outcomes.map((o) => o.kind));
    assert.ok(kinds.includes("drop"));
    assert.equal(kinds.filter((k) => k === "retry").length, 4); // flaky once, broken three times
    for (let i = 0; i < 100 && harness.deadLetters().length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const reasons = harness.deadLetters().map((m) => m.headers?.reason ?? "");
    assert.equal(reasons.length, 2);
    assert.ok(reasons.includes("cannot handle"));
    assert.ok(reasons.some((r) => r.startsWith("retries exhausted")));
  });

  it("never repeats an effect for a redelivered activity", async () => {
    const [report] = await harness.deliver([{ type: "track_event", leadId: "z", attributes: { event: "signup" } }]);
    const again = report!.activities[0]!;
    await harness.deliver([{ ...again }]);
    assert.equal(sent.filter((s) => s === "hello z").length, 1);
  });
});
