import assert from "node:assert/strict";
import { test } from "node:test";
import { runCrashScenario } from "./testing/crash";

// 100,000 by default; CONNECTOR_CRASH_COUNT lowers it for quick local runs.
const COUNT = Number(process.env.CONNECTOR_CRASH_COUNT ?? 100_000);

test(
  `kill -9 mid-run: ${COUNT} records inbound and ${COUNT} activities outbound, zero loss, zero duplicates`,
  { timeout: 600_000 },
  async () => {
    const report = await runCrashScenario(COUNT);
    assert.ok(report.killedAt > 0 && report.killedAt < COUNT, "the child was killed mid-run");
    assert.equal(report.inbound.distinctRecords, COUNT, "every CRM record arrived");
    assert.equal(report.inbound.activities, COUNT, "one activity per record version (ids dedupe redelivery)");
    assert.equal(report.outbound.tasks, COUNT, "no task lost, none duplicated in the CRM");
    assert.equal(report.outbound.distinctActivityIds, COUNT);
  },
);
