import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { EmbeddedQueue } from "../../plugins/queue/embedded";
import { EmbeddedStore } from "../../plugins/store/embedded";
import { tempDir } from "../../test/support/tmp";
import { newActivityId } from "../activity/ids";
import { ACTIVITY_SCHEMA_VERSION, type Activity } from "../activity/model";
import { activityRecord } from "../activity/serialize";
import { PersistLedger } from "./ledger";
import { Reconciler } from "./reconciler";

const TOPIC = "hub.activities";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function activity(tenantId: string, n: number, at = Date.now()): Activity {
  return {
    id: newActivityId(at),
    tenantId,
    leadId: `lead-${n}`,
    type: "visit_web_page",
    source: "api",
    occurredAt: new Date(at).toISOString(),
    receivedAt: new Date(at).toISOString(),
    attributes: { url: `https://example.com/${n}` },
    schemaVersion: ACTIVITY_SCHEMA_VERSION,
  };
}

describe("persist ledger", () => {
  const tmp = tempDir("hub-ledger-");
  after(() => tmp.cleanup());

  it("records a failed write's window, widened when its writes settle; successful writes leave none", async () => {
    const ledger = new PersistLedger({ dataDir: `${tmp.dir}` });
    try {
      const ok = ledger.begin(Date.now());
      const early = Date.now() - 5_000;
      const failing = ledger.begin(early);
      assert.equal(ledger.watermark(), early, "the earliest write under way holds the watermark back");
      ledger.end(ok);
      assert.deepEqual(ledger.windows(), []);

      let settle!: () => void;
      const settled = new Promise<void>((r) => (settle = r));
      ledger.end(failing, settled);
      const [window] = ledger.windows();
      assert.equal(window!.reason, "persist_failed");
      assert.equal(window!.since, early);
      assert.equal(ledger.unsettledWrites, 1);
      assert.ok(ledger.watermark() >= Date.now() - 50);

      await sleep(30);
      const settledAt = Date.now();
      settle();
      await sleep(10);
      assert.equal(ledger.unsettledWrites, 0);
      const [widened] = ledger.windows();
      assert.equal(ledger.windows().length, 1, "merged into one window");
      assert.ok(widened!.until >= settledAt, "the window reaches the moment the late write settled");

      ledger.checked(widened!, widened!.since + 1000);
      assert.equal(ledger.windows()[0]!.since, widened!.since + 1000, "the checked part is dropped");
      ledger.checked(ledger.windows()[0]!, widened!.until + 1);
      assert.deepEqual(ledger.windows(), []);
    } finally {
      ledger.close();
    }
  });

  it("after a clean shutdown records nothing; after kill -9 records the window of the writes under way", () => {
    const dir = tempDir("hub-ledger-crash-");
    try {
      new PersistLedger({ dataDir: dir.dir }).close();
      const reopened = new PersistLedger({ dataDir: dir.dir });
      assert.deepEqual(reopened.windows(), []);
      reopened.close();

      // A process with a write under way since 5 s ago, killed after a few heartbeats.
      const child = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          "-e",
          `{ const { PersistLedger } = require(${JSON.stringify(join(__dirname, "ledger.ts"))});
             const ledger = new PersistLedger({ dataDir: ${JSON.stringify(dir.dir)}, heartbeatMs: 50 });
             ledger.begin(Date.now() - 5000);
             ledger.end(ledger.begin(Date.now()));
             setTimeout(() => process.kill(process.pid, "SIGKILL"), 400);
             setInterval(() => {}, 1000); }`,
        ],
        { timeout: 30_000 },
      );
      assert.equal(child.signal, "SIGKILL", String(child.stderr));
      const killedAt = Date.now();
      const after = new PersistLedger({ dataDir: dir.dir, heartbeatMs: 50 });
      try {
        const windows = after.windows();
        assert.equal(windows.length, 1);
        assert.equal(windows[0]!.reason, "crash");
        assert.ok(killedAt - windows[0]!.since >= 5000, "starts at the write under way");
        assert.ok(windows[0]!.until >= killedAt - 1_000, "reaches the last heartbeat before the crash");
        assert.ok(windows[0]!.until <= Date.now(), "ends by the restart");
        assert.ok(windows[0]!.until - windows[0]!.since < 10_000, "bounded by the last heartbeat");
      } finally {
        after.close();
      }
    } finally {
      dir.cleanup();
    }
  });
});

describe("reconciler", () => {
  const tmp = tempDir("hub-reconciler-");
  const queue = new EmbeddedQueue({ dataDir: tmp.dir });
  const store = new EmbeddedStore({ dataDir: tmp.dir });
  after(async () => {
    await queue.stop();
    await store.stop();
    tmp.cleanup();
  });

  it("repairs divergence inside the recorded windows only, each side from the other", async () => {
    await Promise.all([queue.start(), store.start()]);
    const ledger = new PersistLedger({ dataDir: tmp.dir });
    try {
      const tenant = "tn_reconcile";
      // Before the window: in the queue only, and left alone (nobody suspects it).
      const outside = activity(tenant, 0, Date.now() - 60_000);
      await queue.publish(TOPIC, [activityRecord(outside)]);
      await sleep(1_200);

      const since = Date.now();
      const queueOnly = activity(tenant, 1);
      const storeOnly = activity(tenant, 2);
      const both = activity(tenant, 3);
      await queue.publish(TOPIC, [queueOnly, both].map(activityRecord));
      await store.put([storeOnly, both]);
      const until = Date.now();
      ledger.record(since, until, "requested");

      const reconciler = new Reconciler(queue, store, ledger, { topic: TOPIC, graceMs: 0 });
      const report = await reconciler.run(async () => [tenant]);
      assert.equal(report.windows, 1);
      assert.equal(report.checked, 2, "the queue's records of the window, not the whole queue");
      assert.equal(report.repairedToStore, 1);
      assert.equal(report.storeChecked, 3);
      assert.equal(report.repairedToQueue, 1);
      assert.deepEqual(ledger.windows(), [], "a checked window is dropped");

      assert.ok(await store.get(tenant, queueOnly.id), "queue-only activity written to the store");
      assert.equal(await store.get(tenant, outside.id), undefined, "nothing outside the windows is touched");
      const republished: string[] = [];
      await queue.replay(TOPIC, {
        since: until,
        handler: async (batch) => void republished.push(...batch.map((m) => (JSON.parse(m.value) as Activity).id)),
      });
      assert.deepEqual(republished, [storeOnly.id], "store-only activity published");

      // A window too recent for the grace period waits for a later pass.
      ledger.record(Date.now() - 100, Date.now(), "requested");
      const later = await new Reconciler(queue, store, ledger, { topic: TOPIC, graceMs: 60_000 }).run(async () => [
        tenant,
      ]);
      assert.equal(later.windows, 0);
      assert.equal(later.pendingWindows, 1);
      assert.equal(later.checked, 0);
    } finally {
      ledger.close();
    }
  });
});
