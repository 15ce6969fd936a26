import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { ConfigError } from "../../core/errors";
import { queueContractSuite } from "./contract-suite";
import { queues } from "./index";
import type { KafkaQueue } from "./kafka";

/** Runs against the stack's Kafka (`npm run stack:up`, or HUB_TEST_KAFKA_BROKERS). */
const brokers = (process.env.HUB_TEST_KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const prefix = `it-${Date.now().toString(36)}-${randomUUID().slice(0, 6)}.`;

const open = async (options: Record<string, unknown> = {}): Promise<KafkaQueue> => {
  const queue = queues.resolve(
    { type: "kafka", options: { brokers, topicPrefix: prefix, partitions: 4, ...options } },
    { dataDir: "/nonexistent" },
  ) as KafkaQueue;
  await queue.start();
  return queue;
};

queueContractSuite("kafka", () => open());

describe("kafka queue specifics", () => {
  it("rejects bad options field by field", () => {
    assert.throws(
      () =>
        queues.resolve(
          { type: "kafka", options: { brokers: ["nohost"], partitions: 0, compression: "brotli", extra: 1 } },
          { dataDir: "/" },
        ),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        const fields = error.details.map((d) => d.field).sort();
        assert.deepEqual(fields, [
          "queue.options",
          "queue.options.brokers.0",
          "queue.options.compression",
          "queue.options.partitions",
        ]);
        return true;
      },
    );
  });

  it("places records with Java's murmur2 partitioner, so every Kafka client agrees on key → partition", async () => {
    const queue = await open({ partitions: 12 });
    try {
      const topic = `placement-${randomUUID().slice(0, 8)}`;
      // Computed with org.apache.kafka.common.utils.Utils.murmur2 (kafka-clients 3.9), 12 partitions.
      const java: Record<string, number> = {
        "tenant-a/lead-1": 1,
        "tenant-a/lead-2": 5,
        "tenant-b/lead-1": 3,
        "t1/ä-lead": 7,
        "acme/visitor:42": 8,
        x: 10,
      };
      await queue.publish(
        topic,
        Object.keys(java).map((key) => ({ key, value: "{}" })),
      );
      const seen = new Map<string, number>();
      const sub = await queue.subscribe({
        group: "g-placement",
        topic,
        handler: async (batch) => {
          for (const m of batch) seen.set(m.key, m.partition);
        },
      });
      for (let i = 0; i < 600 && seen.size < Object.keys(java).length; i++) await new Promise((r) => setTimeout(r, 50));
      await sub.stop();
      assert.deepEqual(Object.fromEntries(seen), java);
    } finally {
      await queue.stop();
    }
  });

  it("coalesces concurrent publishes and compresses with gzip when asked", async () => {
    const queue = await open({ compression: "gzip" });
    try {
      const topic = `gzip-${randomUUID().slice(0, 8)}`;
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          queue.publish(
            topic,
            Array.from({ length: 20 }, (_, j) => ({ key: `k${j}`, value: JSON.stringify({ i, j }) })),
          ),
        ),
      );
      const lag = await queue.lag("g-gzip", topic);
      assert.equal(
        lag.reduce((s, p) => s + p.lag, 0),
        1000,
      );
    } finally {
      await queue.stop();
    }
  });

  it("rejects a publish within its timeout when no broker answers, and reports unhealthy", async () => {
    const queue = queues.resolve(
      {
        type: "kafka",
        options: {
          brokers: ["127.0.0.1:1"],
          topicPrefix: prefix,
          publishTimeoutMs: 1500,
          connectionTimeoutMs: 300,
          retries: 1,
          logLevel: "nothing",
        },
      },
      { dataDir: "/" },
    );
    const started = Date.now();
    await queue.start();
    const t0 = Date.now();
    await assert.rejects(queue.publish("down", [{ key: "k", value: "{}" }]));
    const publishMs = Date.now() - t0;
    assert.ok(publishMs < 3_000, `publish rejected after ${publishMs} ms`);
    assert.equal((await queue.health()).ok, false);
    await queue.stop();
    assert.ok(Date.now() - started < 20_000);
  });
});
