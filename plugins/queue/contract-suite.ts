import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { eventually } from "../../test/support/tmp";
import type { ActivityQueue, QueueMessage } from "./contract";

/**
 * The queue contract. Every implementation runs this suite: `open()` returns a started queue on
 * the same underlying data each time it is called (so restarts can be tested), `cleanup()` runs
 * once at the end.
 */
export function queueContractSuite(
  name: string,
  open: () => Promise<ActivityQueue>,
  cleanup: () => Promise<void> = async () => {},
): void {
  describe(`queue contract: ${name}`, () => {
    let queue: ActivityQueue;
    before(async () => {
      queue = await open();
    });
    after(async () => {
      await queue.stop();
      await cleanup();
    });

    const topic = (): string => `contract-${randomUUID().slice(0, 8)}`;
    const collect = async (
      q: ActivityQueue,
      t: string,
      group: string,
      count: number,
      maxBatch = 100,
    ): Promise<QueueMessage[]> => {
      const seen: QueueMessage[] = [];
      const sub = await q.subscribe({ group, topic: t, maxBatch, handler: async (batch) => void seen.push(...batch) });
      await eventually(() => (seen.length >= count ? true : undefined), 30_000, `${count} messages on ${t}`);
      await sub.stop();
      return seen;
    };

    it("reports healthy once started", async () => {
      assert.equal((await queue.health()).ok, true);
    });

    it("delivers every published record with its key, value and headers", async () => {
      const t = topic();
      await queue.publish(t, [{ key: "k1", value: '{"n":1}', headers: { tenant: "t1", type: "x" } }]);
      const [message] = await collect(queue, t, "g-basic", 1);
      assert.equal(message!.key, "k1");
      assert.equal(message!.value, '{"n":1}');
      assert.deepEqual(message!.headers, { tenant: "t1", type: "x" });
      assert.equal(message!.topic, t);
      assert.ok(message!.timestamp > Date.now() - 60_000);
    });

    it("keeps the order of records with the same key", async () => {
      const t = topic();
      const keys = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
      for (let round = 0; round < 5; round++) {
        await queue.publish(
          t,
          keys.flatMap((key) => [0, 1].map((i) => ({ key, value: JSON.stringify({ key, seq: round * 2 + i }) }))),
        );
      }
      const seen = await collect(queue, t, "g-order", 100, 7);
      const perKey = new Map<string, number[]>();
      for (const m of seen) {
        const { key, seq } = JSON.parse(m.value) as { key: string; seq: number };
        perKey.set(key, [...(perKey.get(key) ?? []), seq]);
      }
      for (const key of keys) assert.deepEqual(perKey.get(key), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], `order of key ${key}`);
    });

    it("redelivers a batch whose handler failed, and nothing is lost", async () => {
      const t = topic();
      await queue.publish(
        t,
        Array.from({ length: 20 }, (_, i) => ({ key: "same", value: String(i) })),
      );
      const delivered: string[] = [];
      let failures = 0;
      const sub = await queue.subscribe({
        group: "g-retry",
        topic: t,
        maxBatch: 5,
        handler: async (batch) => {
          if (failures < 2 && batch.some((m) => m.value === "7")) {
            failures++;
            throw new Error("transient");
          }
          delivered.push(...batch.map((m) => m.value));
        },
      });
      await eventually(() => (delivered.length >= 20 ? true : undefined), 30_000, "redelivery");
      await sub.stop();
      assert.equal(failures, 2);
      assert.deepEqual(
        delivered,
        Array.from({ length: 20 }, (_, i) => String(i)),
      );
    });

    it("gives each consumer group every record, independently", async () => {
      const t = topic();
      await queue.publish(
        t,
        Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: String(i) })),
      );
      const one = await collect(queue, t, "g-one", 10);
      const two = await collect(queue, t, "g-two", 10);
      assert.deepEqual(one.map((m) => m.value).sort(), two.map((m) => m.value).sort());
    });

    it("resumes a group from its committed offsets after a restart, skipping nothing", async () => {
      const t = topic();
      await queue.publish(
        t,
        Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 3}`, value: String(i) })),
      );
      const first = await collect(queue, t, "g-resume", 30);
      assert.equal(first.length, 30);
      await queue.stop();
      queue = await open();
      await queue.publish(
        t,
        Array.from({ length: 10 }, (_, i) => ({ key: `k${i % 3}`, value: String(100 + i) })),
      );
      const second = await collect(queue, t, "g-resume", 10);
      assert.deepEqual(
        second.map((m) => Number(m.value)).sort((a, b) => a - b),
        Array.from({ length: 10 }, (_, i) => 100 + i),
      );
    });

    it("keeps values and keys unchanged whatever their characters, also read back after a restart", async () => {
      const t = topic();
      const texts = ["Café crème", "東京 — 日本語", "emoji 👋🏽 and ☕", '{"q":"\\u00e9 é","n":"line\\nbreak"}', ""];
      const records = texts.map((text, i) => ({ key: `clé-${i % 2}-ü`, value: `${i}:${text}` }));
      await queue.publish(t, records);
      await queue.stop();
      queue = await open();
      const got = await collect(queue, t, "g-unicode", records.length);
      assert.deepEqual(
        got.map((m) => ({ key: m.key, value: m.value })).sort((a, b) => (a.value < b.value ? -1 : 1)),
        records,
      );
    });

    it("replays a time window outside any group, from every partition, committing nothing", async () => {
      const t = topic();
      const values = (prefix: string) => Array.from({ length: 20 }, (_, i) => `{"${prefix}":${i}}`);
      const publishAll = (prefix: string) =>
        queue.publish(
          t,
          values(prefix).map((value, i) => ({ key: `k${i}`, value })),
        );
      const pause = () => new Promise((r) => setTimeout(r, 1100));
      await publishAll("before");
      await pause();
      const since = Date.now();
      await publishAll("inside");
      await pause();
      const until = Date.now();
      await publishAll("after");

      const seen: string[] = [];
      const perPartition = new Map<number, number[]>();
      const count = await queue.replay(t, {
        since,
        maxBatch: 7,
        handler: async (batch) => {
          assert.ok(batch.length <= 7);
          for (const m of batch) {
            seen.push(m.value);
            const offsets = perPartition.get(m.partition) ?? [];
            offsets.push(Number(m.offset));
            perPartition.set(m.partition, offsets);
          }
        },
      });
      assert.equal(count, 40);
      assert.deepEqual([...seen].sort(), [...values("inside"), ...values("after")].sort());
      for (const offsets of perPartition.values())
        assert.deepEqual(
          offsets,
          [...offsets].sort((a, b) => a - b),
          "in offset order per partition",
        );

      const windowed: string[] = [];
      await queue.replay(t, {
        since,
        until,
        handler: async (batch) => void windowed.push(...batch.map((m) => m.value)),
      });
      assert.deepEqual(windowed.sort(), values("inside").sort());

      assert.equal(await queue.replay(t, { since: Date.now() + 60_000, handler: async () => undefined }), 0);
      const failing = queue.replay(t, {
        since,
        handler: async () => {
          throw new Error("handler failed");
        },
      });
      await assert.rejects(failing, /handler failed/);
      // A replay is not a group: a new group still starts from the oldest record.
      assert.equal((await collect(queue, t, "g-after-replay", 60)).length, 60);
    });

    it("reports lag per partition for a group", async () => {
      const t = topic();
      await queue.publish(
        t,
        Array.from({ length: 12 }, (_, i) => ({ key: `k${i}`, value: String(i) })),
      );
      const before = await eventually(
        async () => {
          const lag = await queue.lag("g-lag", t);
          const total = lag.reduce((sum, p) => sum + p.lag, 0);
          return total === 12 ? total : undefined;
        },
        15_000,
        "lag of 12",
      );
      assert.equal(before, 12);
      await collect(queue, t, "g-lag", 12);
      const after = await eventually(
        async () => {
          const total = (await queue.lag("g-lag", t)).reduce((sum, p) => sum + p.lag, 0);
          return total === 0 ? total : undefined;
        },
        15_000,
        "lag of 0",
      );
      assert.equal(after, 0);
    });
  });
}
