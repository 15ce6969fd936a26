import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PartitionLag } from "../../plugins/queue/contract";
import { LagEvaluator } from "./queue-lag";

const p = (committed: number, end: number): PartitionLag[] => [
  { partition: 0, committed: String(committed), end: String(end), lag: end - committed },
];

describe("Burrow-style lag evaluation", () => {
  it("is OK when the group catches up at any point of the window", () => {
    const e = new LagEvaluator({ window: 5, stopAfterMs: 60_000 });
    let r;
    for (let i = 0; i < 5; i++) r = e.record("g", "t", p(i * 10, i * 10 + (i === 2 ? 0 : 5)), i * 5000);
    assert.equal(r!.status, "OK");
  });

  it("warns when the group moves but falls further behind at every sample", () => {
    const e = new LagEvaluator({ window: 5, stopAfterMs: 60_000 });
    let r;
    for (let i = 0; i < 5; i++) r = e.record("g", "t", p(i * 10, i * 20 + 5), i * 5000);
    assert.equal(r!.status, "WARNING");
  });

  it("reports STALL when the committed offset stands still with lag, then STOP", () => {
    const e = new LagEvaluator({ window: 5, stopAfterMs: 60_000 });
    let r;
    for (let i = 0; i < 5; i++) r = e.record("g", "t", p(100, 100 + (i + 1) * 10), i * 5000);
    assert.equal(r!.status, "STALL");
    for (let i = 5; i < 14; i++) r = e.record("g", "t", p(100, 100 + (i + 1) * 10), i * 5000);
    assert.equal(r!.status, "STOP");
  });

  it("estimates lag in seconds from when the end offset passed the committed one", () => {
    const e = new LagEvaluator();
    e.record("g", "t", p(100, 100), 0);
    e.record("g", "t", p(100, 100), 5000);
    e.record("g", "t", p(100, 110), 10_000);
    const r = e.record("g", "t", p(100, 130), 25_000);
    assert.equal(r.seconds, 15);
    assert.equal(r.messages, 30);
    assert.equal(e.record("g", "t", p(130, 130), 30_000).seconds, 0);
  });
});
