import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { QuotaBuckets } from "./quota";

describe("per-tenant token buckets", () => {
  it("admits up to the burst, refills at the rate, and keeps tenants apart", () => {
    let clock = 0;
    const buckets = new QuotaBuckets(() => clock);
    const quota = { rate: 100, burst: 200 };
    assert.equal(buckets.take("a", quota, 150), 0);
    assert.equal(buckets.take("a", quota, 100), 1, "50 left, 100 wanted: wait ~0.5 s, rounded up");
    assert.equal(buckets.take("b", quota, 200), 0, "another tenant has its own bucket");
    clock += 500;
    assert.equal(buckets.take("a", quota, 100), 0);
    assert.equal(buckets.take("a", quota, 1), 1);
  });

  it("admits a batch larger than the burst only from a full bucket, leaving it in debt", () => {
    let clock = 0;
    const buckets = new QuotaBuckets(() => clock);
    const quota = { rate: 10, burst: 5 };
    assert.equal(buckets.take("a", quota, 20), 0);
    assert.ok(buckets.take("a", quota, 1) >= 1);
    clock += 1000;
    assert.ok(buckets.take("a", quota, 1) >= 1, "still paying off the debt");
    clock += 1000;
    assert.equal(buckets.take("a", quota, 1), 0);
  });
});
