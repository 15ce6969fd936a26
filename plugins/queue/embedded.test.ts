import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { tempDir } from "../../test/support/tmp";
import type { QueueMessage } from "./contract";
import { queueContractSuite } from "./contract-suite";
import { EmbeddedQueue } from "./embedded";
import { queues } from "./index";

/** The first column of the first row of a query, read from queue.db by a connection of its own. */
function readQueueDb(dataDir: string, sql: string): number | undefined {
  const db = new Database(join(dataDir, "queue.db"), { readonly: true });
  try {
    return db.prepare(sql).pluck().get() as number | undefined;
  } finally {
    db.close();
  }
}

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

  it("hands in-process consumers the publisher's frozen object, and the same text as value, from memory or disk", async () => {
    const queue = queues.resolve({ type: "embedded", options: { partitions: 2 } }, { dataDir: dir.dir });
    await queue.start();
    const payloads = Array.from({ length: 3 }, (_, i) => ({ seq: i, text: `Ünïcødé ${i}`, nested: { ok: true } }));
    await queue.publish(
      "decoded",
      payloads.map((p) => ({ key: "k", value: JSON.stringify(p), headers: { kind: "p" }, decoded: p })),
    );
    const seen: QueueMessage[] = [];
    const subscription = await queue.subscribe({
      group: "g-decoded",
      topic: "decoded",
      fromBeginning: true,
      handler: async (batch) => void seen.push(...batch),
    });
    const deadline = Date.now() + 10_000;
    while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await subscription.stop();
    assert.equal(seen.length, 3);
    seen.forEach((m, i) => {
      assert.equal(m.decoded, payloads[i], "the publisher's object");
      assert.ok(Object.isFrozen(payloads[i]) && Object.isFrozen(payloads[i]!.nested), "deeply frozen");
      assert.equal(m.value, JSON.stringify(payloads[i]));
      assert.deepEqual(m.headers, { kind: "p" });
      const serialised = JSON.parse(JSON.stringify(m)) as Record<string, unknown>;
      assert.equal(serialised.value, JSON.stringify(payloads[i]), "serialised with its value");
      assert.equal("decoded" in serialised, false, "never with decoded");
    });
    // Read back from SQLite (a replay), the text is the one published.
    const replayed: string[] = [];
    await (queue as EmbeddedQueue).replay("decoded", {
      since: 0,
      handler: async (b) => void replayed.push(...b.map((m) => m.value)),
    });
    assert.deepEqual(
      replayed,
      payloads.map((p) => JSON.stringify(p)),
    );
    await queue.stop();
  });
});

describe("embedded queue: files of earlier versions", () => {
  const dir = tempDir("hub-queue-migrate-");
  after(() => dir.cleanup());

  it("rewrites a WITHOUT ROWID batches table as a rowid table and keeps every record and offset", async () => {
    const old = new Database(join(dir.dir, "queue.db"));
    old.exec(`
      CREATE TABLE batches (
        topic TEXT NOT NULL, partition INTEGER NOT NULL, base_offset INTEGER NOT NULL, last_offset INTEGER NOT NULL,
        ts INTEGER NOT NULL, keys TEXT NOT NULL, key_lengths TEXT NOT NULL, vals TEXT NOT NULL,
        value_lengths TEXT NOT NULL, headers TEXT,
        PRIMARY KEY (topic, partition, base_offset)
      ) WITHOUT ROWID;
      CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO meta VALUES ('partitions', '1');
    `);
    old
      .prepare("INSERT INTO batches VALUES ('t', 0, 0, 1, ?, 'ab', '1,1', '{\"n\":0}{\"n\":1}', '7,7', NULL)")
      .run(Date.now());
    old.close();

    const queue = queues.resolve({ type: "embedded", options: { partitions: 1 } }, { dataDir: dir.dir });
    await queue.start();
    await queue.publish("t", [{ key: "c", value: JSON.stringify({ n: 2 }) }]);
    const seen: Array<[string, string, string]> = [];
    const subscription = await queue.subscribe({
      group: "g",
      topic: "t",
      fromBeginning: true,
      handler: async (batch) => {
        for (const m of batch) seen.push([m.offset, m.key, m.value]);
      },
    });
    const deadline = Date.now() + 10_000;
    while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await subscription.stop();
    await queue.stop();
    assert.deepEqual(seen, [
      ["0", "a", '{"n":0}'],
      ["1", "b", '{"n":1}'],
      ["2", "c", '{"n":2}'],
    ]);
    const after = new Database(join(dir.dir, "queue.db"), { readonly: true });
    const sql = after.prepare("SELECT sql FROM sqlite_master WHERE name = 'batches'").pluck().get() as string;
    after.close();
    assert.doesNotMatch(sql, /WITHOUT ROWID/i);
  });
});

describe("embedded queue: offset flushes", () => {
  const dir = tempDir("hub-queue-offsets-");
  after(() => dir.cleanup());

  it("keeps offsets in memory while the write lock is held, never blocks the event loop, and never throws from its timer", async () => {
    const queue = new EmbeddedQueue({ dataDir: dir.dir, partitions: 1 });
    await queue.start();
    // Another connection holds queue.db's write lock for longer than the busy timeout (5 s).
    const holder = new Database(join(dir.dir, "queue.db"));
    holder.exec("BEGIN IMMEDIATE");
    queue.commitOffset("g", "t", 0, 42);
    // The writer thread waits for the lock; the event loop keeps turning meanwhile.
    let last = Date.now();
    let longestStall = 0;
    const ticker = setInterval(() => {
      longestStall = Math.max(longestStall, Date.now() - last);
      last = Date.now();
    }, 20);
    await new Promise((r) => setTimeout(r, 5_600));
    clearInterval(ticker);
    assert.ok(longestStall < 1_000, `the event loop stalled for ${longestStall} ms`);
    assert.equal(queue.committedOffset("g", "t", 0), 42, "read from memory while unwritten");
    assert.match((await queue.health()).detail ?? "", /offset flushes retried/);
    holder.exec("COMMIT");
    holder.close();
    const deadline = Date.now() + 5_000;
    const stored = () => readQueueDb(dir.dir, "SELECT offset FROM offsets WHERE grp = 'g'");
    while (stored() !== 42 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(stored(), 42, "written once the lock is free");
    await queue.stop();
  });
});

describe("embedded queue: retention", () => {
  const dir = tempDir("hub-queue-retention-");
  after(() => dir.cleanup());

  it("deletes expired batches every group consumed, in chunks, and keeps the rest", async () => {
    const queue = new EmbeddedQueue({
      dataDir: dir.dir,
      partitions: 1,
      retentionMs: 1,
      retentionIntervalMs: 100,
      retentionChunk: 2,
    });
    await queue.start();
    for (let b = 0; b < 7; b++) await queue.publish("t", [{ key: "k", value: String(b) }]);
    const batches = () => readQueueDb(dir.dir, "SELECT COUNT(*) FROM batches") ?? 0;
    // No group has consumed anything yet: nothing goes, however old.
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(batches(), 7);
    // A group consumed the first five: those go (three chunks of at most two), the rest stays.
    queue.commitOffset("g", "t", 0, 5);
    const deadline = Date.now() + 5_000;
    while (batches() > 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(batches(), 2);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(batches(), 2, "unconsumed batches are kept");
    await queue.stop();
  });
});

describe("embedded queue: writer thread", () => {
  const dir = tempDir("hub-queue-writer-");
  after(() => dir.cleanup());

  it("rejects publishes the writer did not confirm, recovers, and leaves no gap in the offsets", async () => {
    const queue = queues.resolve({ type: "embedded", options: { partitions: 1 } }, { dataDir: dir.dir });
    await queue.start();
    const publish = (from: number, n: number) =>
      queue.publish(
        "t",
        Array.from({ length: n }, (_, i) => ({ key: "k", value: String(from + i) })),
      );
    await publish(0, 10);
    // The writer thread dies while a group may be in flight: nothing it did not confirm resolves.
    const writer = (queue as unknown as { writer: { current: { terminate(): Promise<number> } } }).writer.current;
    const lost = publish(10, 10);
    await writer.terminate();
    await assert.rejects(lost);
    await assert.rejects(publish(20, 10), /writer/);
    // A new writer is spawned; offsets continue from what is in the file.
    const deadline = Date.now() + 10_000;
    let recovered = false;
    while (!recovered && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      recovered = await publish(100, 5).then(
        () => true,
        () => false,
      );
    }
    assert.ok(recovered, "publishes succeed again after the writer is respawned");
    const values: string[] = [];
    const subscription = await queue.subscribe({
      group: "g",
      topic: "t",
      fromBeginning: true,
      handler: async (batch) => {
        for (const m of batch) values.push(m.value);
      },
    });
    const until = Date.now() + 10_000;
    while (values.length < 15 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await subscription.stop();
    const lag = await queue.lag("g", "t");
    await queue.stop();
    // The first 10 were confirmed; the terminated group may or may not have been committed.
    assert.deepEqual(values.slice(0, 10), ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    assert.deepEqual(values.slice(-5), ["100", "101", "102", "103", "104"]);
    assert.ok(values.length === 15 || values.length === 25, `whole groups only, got ${values.length}`);
    assert.equal(lag[0]!.end, String(values.length), "offsets are contiguous");
  });
});
