import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { tempDir } from "../../test/support/tmp";
import { queueContractSuite } from "./contract-suite";
import { queues } from "./index";

const tmp = tempDir("hub-queue-");
queueContractSuite(
  "embedded",
  async () => {
    const queue = queues.resolve({ type: "embedded", options: { partitions: 4 } }, { dataDir: tmp.dir });
    await queue.start();
    return queue;
  },
  async () => tmp.cleanup(),
);

describe("embedded queue: in-memory head and SQLite", () => {
  const dir = tempDir("hub-queue-tail-");
  after(() => dir.cleanup());

  it("delivers every record once, in order, whether it is read from the head in memory or from disk", async () => {
    const queue = queues.resolve({ type: "embedded", options: { partitions: 2 } }, { dataDir: dir.dir });
    await queue.start();
    // ≈ 12 MB on one key: more than the in-memory head holds, so a group starting from the
    // beginning reads the first part back from SQLite and the rest from memory.
    const padding = "x".repeat(2000);
    for (let b = 0; b < 60; b++) {
      await queue.publish(
        "t",
        Array.from({ length: 100 }, (_, i) => ({ key: "k", value: JSON.stringify({ seq: b * 100 + i, padding }) })),
      );
    }
    const seen: number[] = [];
    const subscription = await queue.subscribe({
      group: "g",
      topic: "t",
      maxBatch: 700,
      fromBeginning: true,
      handler: async (batch) => {
        for (const m of batch) seen.push((JSON.parse(m.value) as { seq: number }).seq);
      },
    });
    const deadline = Date.now() + 20_000;
    while (seen.length < 6000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await subscription.stop();
    await queue.stop();
    assert.equal(seen.length, 6000);
    assert.ok(
      seen.every((s, i) => s === i),
      "in order, no gap, no repeat",
    );
  });
});
