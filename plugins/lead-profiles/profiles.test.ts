import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { newActivityId } from "../../core/activity/ids";
import type { Activity } from "../../core/activity/model";
import { tempDir } from "../../test/support/tmp";
import { LeadProfiles } from "./profiles";

const activity = (id: string, leadId: string, type: string, occurredAt: string): Activity =>
  ({
    id,
    tenantId: "t1",
    leadId,
    type,
    source: "web",
    occurredAt,
    receivedAt: occurredAt,
    attributes: {},
    schemaVersion: 1,
  }) as unknown as Activity;

describe("lead profiles", () => {
  const tmp = tempDir("lead-profiles-");
  after(() => tmp.cleanup());

  it("counts each activity once across redeliveries and restarts, and keeps first and last", async () => {
    let profiles = await LeadProfiles.open(tmp.dir);
    const [id1, id2, id3, id4, id5] = Array.from({ length: 5 }, () => newActivityId());
    const a1 = activity(id1!, "ada", "visit_web_page", "2026-11-01T10:00:00.000Z");
    const a2 = activity(id2!, "ada", "email_opened", "2026-11-02T10:00:00.000Z");
    const a3 = activity(id3!, "ada", "visit_web_page", "2026-10-30T10:00:00.000Z"); // late, older
    const b1 = activity(id4!, "bob", "visit_web_page", "2026-11-01T11:00:00.000Z");
    await profiles.apply([a1, a2, b1]);
    await profiles.apply([a2, a3]); // a2 is a redelivery
    let ada = profiles.get("t1", "ada")!;
    assert.equal(ada.activityCount, 3, "a redelivered activity is not counted again");
    assert.deepEqual(ada.countsByType, { visit_web_page: 2, email_opened: 1 });
    assert.equal(ada.firstActivityAt, "2026-10-30T10:00:00.000Z");
    assert.equal(ada.lastActivityId, id2);
    await profiles.close();

    // A new instance reads what the first wrote; its applier's cache starts empty.
    profiles = await LeadProfiles.open(tmp.dir);
    await profiles.apply([a1, b1]);
    const a5 = activity(id5!, "ada", "email_opened", "2026-11-03T10:00:00.000Z");
    await profiles.apply([a5, a5]); // the same id twice in one group counts once
    ada = profiles.get("t1", "ada")!;
    assert.equal(ada.activityCount, 4);
    assert.deepEqual(ada.countsByType, { visit_web_page: 2, email_opened: 2 });
    assert.equal(ada.lastActivityType, "email_opened");
    assert.equal(profiles.get("t1", "bob")!.activityCount, 1);
    assert.equal(applied(tmp.dir), 5);
    await profiles.close();
  });

  it("applies hundreds of activities over hundreds of leads in bulks, and counts a redelivered bulk's ids once", async () => {
    mkdirSync(join(tmp.dir, "bulk"), { recursive: true });
    const profiles = await LeadProfiles.open(join(tmp.dir, "bulk"));
    try {
      const at = (i: number): string => new Date(Date.UTC(2026, 10, 1) + i * 1000).toISOString();
      const first = Array.from({ length: 300 }, (_, i) =>
        activity(newActivityId(), `lead-${i % 150}`, "visit_web_page", at(i)),
      );
      await profiles.apply(first);
      // 200 new activities with 100 of the first interleaved: every bulk holds some of each.
      const fresh = Array.from({ length: 200 }, (_, i) =>
        activity(newActivityId(), `lead-${i % 150}`, "email_opened", at(1000 + i)),
      );
      const mixed = fresh.flatMap((a, i) => (i % 2 === 0 ? [a, first[i]!] : [a]));
      await profiles.apply(mixed);
      for (const lead of [0, 49, 50, 149]) {
        const p = profiles.get("t1", `lead-${lead}`)!;
        const opened = fresh.filter((a) => a.leadId === `lead-${lead}`).length;
        assert.deepEqual(p.countsByType, { visit_web_page: 2, email_opened: opened }, `lead-${lead}`);
        assert.equal(p.activityCount, 2 + opened);
      }
      assert.equal(applied(join(tmp.dir, "bulk")), 500);
    } finally {
      await profiles.close();
    }
  });

  it("applies the batches handed over in one event-loop turn together, and rejects them together", async () => {
    const dir = tempDir("lead-profiles-grouped-");
    try {
      const profiles = await LeadProfiles.open(dir.dir);
      const first = [activity(newActivityId(), "ada", "visit_web_page", "2026-11-01T10:00:00.000Z")];
      const second = [
        activity(newActivityId(), "ada", "email_opened", "2026-11-01T11:00:00.000Z"),
        activity(newActivityId(), "bob", "visit_web_page", "2026-11-01T12:00:00.000Z"),
      ];
      await Promise.all([profiles.apply(first), profiles.apply(second), profiles.apply(first)]);
      assert.equal(profiles.get("t1", "ada")!.activityCount, 2);
      assert.equal(profiles.get("t1", "bob")!.activityCount, 1);
      await profiles.close();
      const results = await Promise.allSettled([profiles.apply(second), profiles.apply(first)]);
      assert.deepEqual(
        results.map((r) => r.status),
        ["rejected", "rejected"],
      );
    } finally {
      dir.cleanup();
    }
  });

  it("fails the group an applier died with, restarts it, and counts a redelivery once", async () => {
    const dir = tempDir("lead-profiles-restart-");
    try {
      const profiles = await LeadProfiles.open(dir.dir);
      const batch = [activity(newActivityId(), "ada", "visit_web_page", "2026-11-01T10:00:00.000Z")];
      const thread = profiles.applierThread!;
      const lost = profiles.apply(batch);
      await thread.terminate();
      await assert.rejects(lost, /exited|is down/);
      // The queue redelivers the batch: once the applier is back, it is applied, once.
      const deadline = Date.now() + 5_000;
      while (profiles.applierThread === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.notEqual(profiles.applierThread, thread, "a new applier thread");
      await profiles.apply(batch);
      await profiles.apply(batch);
      assert.equal(profiles.get("t1", "ada")!.activityCount, 1);
      await profiles.close();
    } finally {
      dir.cleanup();
    }
  });

  it("forgets applied ids older than the dedup window, oldest first, a bounded number per batch", async () => {
    const dir = tempDir("lead-profiles-prune-");
    try {
      const hour = 3600_000;
      const profiles = await LeadProfiles.open(dir.dir, { dedupWindowMs: 24 * hour });
      const old = Array.from({ length: 150 }, (_, i) =>
        activity(newActivityId(Date.now() - 48 * hour + i), "old", "visit_web_page", "2026-11-01T10:00:00.000Z"),
      );
      await profiles.apply(old);
      assert.equal(profiles.get("t1", "old")!.activityCount, 150);
      const recent = activity(newActivityId(), "new", "visit_web_page", "2026-11-02T10:00:00.000Z");
      // Each batch forgets at most max(100, 2 per activity) expired ids before it applies.
      await profiles.apply([recent]);
      assert.equal(applied(dir.dir), 150 - 100 + 1);
      await profiles.apply([recent]);
      assert.equal(profiles.get("t1", "new")!.activityCount, 1, "a redelivery inside the window is recognised");
      assert.equal(applied(dir.dir), 1, "every expired id is gone, the recent one is kept");
      await profiles.close();
    } finally {
      dir.cleanup();
    }
  });

  it("keeps the applied ids of a file written by an earlier version", async () => {
    const dir = tempDir("lead-profiles-migrate-");
    try {
      const id = newActivityId();
      const db = new Database(join(dir.dir, "lead-profiles.db"));
      db.exec(
        "CREATE TABLE applied (tenant_id TEXT NOT NULL, activity_id TEXT NOT NULL, PRIMARY KEY (tenant_id, activity_id)) WITHOUT ROWID",
      );
      db.prepare("INSERT INTO applied VALUES (?, ?)").run("t1", id);
      db.close();
      const profiles = await LeadProfiles.open(dir.dir);
      await profiles.apply([activity(id, "ada", "visit_web_page", "2026-11-01T10:00:00.000Z")]);
      assert.equal(profiles.get("t1", "ada"), undefined, "the migrated id is recognised");
      await profiles.apply([activity(newActivityId(), "ada", "visit_web_page", "2026-11-01T11:00:00.000Z")]);
      assert.equal(profiles.get("t1", "ada")!.activityCount, 1);
      await profiles.close();
      const after = new Database(join(dir.dir, "lead-profiles.db"), { readonly: true });
      const tables = after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
      after.close();
      assert.ok(!tables.includes("applied") && tables.includes("applied_ids"));
    } finally {
      dir.cleanup();
    }
  });
});

function applied(dir: string): number {
  const db = new Database(join(dir, "lead-profiles.db"), { readonly: true });
  try {
    return db.prepare("SELECT COUNT(*) FROM applied_ids").pluck().get() as number;
  } finally {
    db.close();
  }
}
