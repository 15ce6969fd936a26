import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Activity } from "../../core/activity/model";
import { segmentKeys } from "./indexer";
import { Memstore } from "./memstore";

const activity = (id: string, leadId: string, occurredAt: string, title = "a"): Activity =>
  ({
    id,
    tenantId: "t1",
    leadId,
    type: "visit_web_page",
    source: "web",
    occurredAt,
    receivedAt: occurredAt,
    attributes: { title },
    schemaVersion: 1,
  }) as unknown as Activity;

function segment(memstore: Memstore, seq: number, activities: Activity[], withKeys = true): void {
  memstore.add(
    seq,
    activities.map((a) => JSON.stringify(a)),
    withKeys ? segmentKeys(activities) : null,
  );
}

describe("memstore", () => {
  it("indexes segments on the first read after them, in seq order: first write of an id wins", () => {
    const m = new Memstore();
    segment(m, 1, [activity("A1", "ada", "2026-11-01T10:00:00.000Z", "first")]);
    segment(m, 2, [
      activity("A1", "ada", "2026-11-01T10:00:00.000Z", "second"),
      activity("B1", "bob", "2026-11-01T11:00:00.000Z"),
    ]);
    assert.equal(m.size, 3);
    assert.match(m.get("t1", "A1")!.json!, /"first"/);
    // Added after a read, from a log that predates the keys column.
    segment(m, 3, [activity("A2", "ada", "2026-11-02T10:00:00.000Z")], false);
    assert.deepEqual(
      [...m.forLead("t1", "ada")].map((e) => [e.id, e.occurredAt]),
      [
        ["A1", Date.parse("2026-11-01T10:00:00.000Z")],
        ["A2", Date.parse("2026-11-02T10:00:00.000Z")],
      ],
    );
    assert.deepEqual(
      [...m.forTenant("t1")].map((e) => e.id),
      ["A1", "B1", "A2"],
    );
  });

  it("holds a written segment by place: each entry says where its line is, and keeps no text", () => {
    const m = new Memstore();
    const written = [
      activity("A1", "ada", "2026-11-01T10:00:00.000Z"),
      activity("B1", "bob", "2026-11-01T11:00:00.000Z"),
    ];
    // Lines of 100 and 50 bytes at offsets 20 and 121 of a record written at byte 4,000 of file 7.
    m.add(3, { file: 7, at: 4_000, starts: Uint32Array.of(20, 121, 172) }, segmentKeys(written));
    assert.equal(m.size, 2);
    const [a, b] = [m.get("t1", "A1")!, m.get("t1", "B1")!];
    assert.deepEqual([a.json, a.file, a.pos, a.len], [null, 7, 4_020, 100]);
    assert.deepEqual([b.json, b.file, b.pos, b.len], [null, 7, 4_121, 50]);
    assert.throws(() => m.add(4, { file: 7, at: 0, starts: Uint32Array.of(0, 10) }, null), /needs its keys/);
  });

  it("releases segments nobody read without indexing them, and read ones from every index", () => {
    const m = new Memstore();
    segment(m, 1, [activity("A1", "ada", "2026-11-01T10:00:00.000Z")]);
    segment(m, 2, [activity("B1", "bob", "2026-11-01T11:00:00.000Z")]);
    assert.equal(m.releaseUpto(1), 1, "released unread");
    assert.equal(m.get("t1", "A1"), undefined);
    assert.equal(m.get("t1", "B1")!.leadKey, "bob");
    segment(m, 3, [activity("A2", "ada", "2026-11-02T10:00:00.000Z")]);
    assert.equal(m.releaseUpto(3), 2, "one read, one unread");
    assert.equal(m.size, 0);
    assert.equal(m.segmentCount, 0);
    assert.equal(m.get("t1", "B1"), undefined);
    assert.deepEqual([...m.forTenant("t1")], []);
  });

  it("keeps nothing of a released segment reachable", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const m = new Memstore();
    let lines: string[] | undefined = [JSON.stringify(activity("A1", "ada", "2026-11-01T10:00:00.000Z"))];
    const released = new WeakRef(lines);
    m.add(1, lines, null);
    lines = undefined;
    m.add(2, [JSON.stringify(activity("B1", "bob", "2026-11-01T11:00:00.000Z"))], null);
    m.get("t1", "A1"); // indexed, then released
    m.releaseUpto(1);
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    assert.equal(released.deref(), undefined, "the released segment's lines were collected");
    assert.equal(m.get("t1", "B1")!.id, "B1");
  });
});
