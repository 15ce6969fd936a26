import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RecentCache } from "./recent-cache";

describe("RecentCache", () => {
  it("stays within its capacity and keeps entries that are used", () => {
    const cache = new RecentCache<number, string>(100);
    for (let i = 0; i < 1_000; i++) {
      cache.set(i, `v${i}`);
      // Entry 0 is read once per 10 insertions: always within half the capacity.
      if (i % 10 === 0) assert.equal(cache.get(0), "v0");
      assert.ok(cache.size <= 100, `size ${cache.size}`);
    }
    assert.equal(cache.get(0), "v0");
    assert.equal(cache.get(1), undefined, "an entry never read again is evicted");
    assert.equal(cache.get(999), "v999");
  });

  it("computes a missing value once", () => {
    const cache = new RecentCache<string, number>(10);
    let calls = 0;
    const compute = (key: string) => {
      calls++;
      return key.length;
    };
    assert.equal(cache.getOrCompute("abc", compute), 3);
    assert.equal(cache.getOrCompute("abc", compute), 3);
    assert.equal(calls, 1);
  });

  it("refuses a capacity below 2", () => {
    assert.throws(() => new RecentCache(1), RangeError);
  });
});
