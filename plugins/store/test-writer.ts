/**
 * Test helper process for `embedded.test.ts`: `<entry> test-writer.ts <dataDir> <mode> <batches>`.
 * Puts `batches` batches of 500 activities and prints one JSON line `{"ready":true,"ids":[...]}`
 * once every one of those puts resolved (durable), then:
 * - `paused`: the indexer never ran; waits to be killed (everything is in un-indexed segments);
 * - `running`: keeps putting more (unreported) batches until killed, so a kill -9 lands while
 *   the indexer is mid-work;
 * - `clean`: waits until indexed, stops the store and exits 0 (checks the worker loads under
 *   this entry point).
 */
import { newActivityId } from "../../core/activity/ids";
import { ACTIVITY_SCHEMA_VERSION, type Activity } from "../../core/activity/model";
import { EmbeddedStore } from "./embedded";

const [dataDir, mode, batchesArg] = process.argv.slice(2);
if (!dataDir || !mode) throw new Error("usage: test-writer.ts <dataDir> <paused|running|clean> <batches>");
const batches = Number(batchesArg ?? 4);

function batch(b: number): Activity[] {
  return Array.from({ length: 500 }, (_, i) => ({
    id: newActivityId(),
    tenantId: "t-crash",
    leadId: `lead-${(b * 500 + i) % 37}`,
    type: i % 3 === 0 ? "email_opened" : "visit_web_page",
    source: "web",
    occurredAt: new Date(Date.UTC(2026, 0, 1) + b * 500 + i).toISOString(),
    receivedAt: new Date().toISOString(),
    attributes: { url: `https://example.com/${b}/${i}` },
    schemaVersion: ACTIVITY_SCHEMA_VERSION,
  }));
}

async function main(): Promise<void> {
  const store = new EmbeddedStore({ dataDir: dataDir!, indexerPaused: mode === "paused", indexChunkActivities: 500 });
  await store.start();
  const written = Array.from({ length: batches }, (_, b) => batch(b));
  await Promise.all(written.map((w) => store.put(w)));
  console.log(JSON.stringify({ ready: true, ids: written.flat().map((a) => a.id) }));
  if (mode === "clean") {
    await store.whenIndexed();
    await store.stop();
    console.log(JSON.stringify({ indexed: true }));
    return;
  }
  if (mode === "running") {
    for (let b = batches; ; b++) await store.put(batch(b));
  }
  setInterval(() => undefined, 60_000);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
