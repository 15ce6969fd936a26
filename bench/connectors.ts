/**
 * CRM connector benchmark (run: `npx tsx bench/connectors.ts [count]`).
 * Against the fake Salesforce and Dynamics servers over real HTTP on 127.0.0.1, through jsforce and
 * dynamics-web-api: inbound and outbound throughput (records/s) and API calls per 1,000 records
 * outbound for the bulk/batch paths versus one call per record, measured in the same run; then
 * the kill -9 scenario (loss and duplicates). API calls are counted by the fake servers.
 */
import { runCrashScenario } from "../connectors/sync/testing/crash";
import { activityStream, dynamicsHarness, salesforceHarness, type Harness } from "../connectors/sync/testing/harness";

const COUNT = Number(process.argv[2] ?? 100_000);
const BASELINE = 1_000;

interface Row {
  scenario: string;
  records: number;
  seconds: number;
  calls: number;
}

const rows: Row[] = [];

async function measure<F extends { calls: { total: number; reset(): void } }>(
  h: Harness<F>,
  scenario: string,
  records: number,
  run: () => Promise<void>,
): Promise<Row> {
  h.fake.calls.reset();
  const started = process.hrtime.bigint();
  await run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const row = { scenario, records, seconds, calls: h.fake.calls.total };
  rows.push(row);
  return row;
}

async function outbound<F>(h: Harness<F>, instanceId: string, count: number, prefix: string): Promise<void> {
  await h.store.commitOutbound(instanceId, "-1", [], []);
  const [run] = await h.engine.run(instanceId, {
    source: activityStream(count, h.config.tenantId, prefix),
    directions: ["outbound"],
  });
  if (run.status !== "succeeded" || run.counts.written !== count)
    throw new Error(`${instanceId}: ${JSON.stringify(run)}`);
}

async function inbound<F>(h: Harness<F>, expected: number): Promise<void> {
  const [run] = await h.engine.run(h.config.instanceId);
  if (run.status !== "succeeded" || run.counts.read !== expected) throw new Error(`inbound: ${JSON.stringify(run)}`);
}

async function salesforce(): Promise<void> {
  const h = await salesforceHarness({
    emit: async () => undefined,
    config: { outbound: { leads: true, activities: true, scores: true, batchSize: 10_000 } },
  });
  try {
    await h.engine.configure(h.config, h.credentials);
    for (let offset = 0; offset < COUNT; offset += 10_000) {
      h.fake.insert(
        "Lead",
        Array.from({ length: Math.min(10_000, COUNT - offset) }, (_, i) => ({
          LastName: `L${offset + i}`,
          Company: "Acme",
          Email: `l${offset + i}@example.com`,
          Hub_Lead_Id__c: `lead-${offset + i}`,
        })),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await measure(h, "salesforce inbound (SOQL pages of 2,000)", COUNT, () => inbound(h, COUNT));
    await measure(h, "salesforce outbound Bulk API 2.0 (jobs of 10,000)", COUNT, () =>
      outbound(h, h.config.instanceId, COUNT, "bulk"),
    );

    const collections = {
      ...h.config,
      instanceId: "sf-collections",
      options: { ...h.config.options, bulkThreshold: 1_000_000 },
    };
    await h.engine.configure(collections, h.credentials);
    await measure(h, "salesforce outbound sObject Collections (200/call)", BASELINE * 10, () =>
      outbound(h, collections.instanceId, BASELINE * 10, "coll"),
    );

    const single = { ...h.config, instanceId: "sf-single", options: { ...h.config.options, writeMode: "single" } };
    await h.engine.configure(single, h.credentials);
    await measure(h, "salesforce outbound one call per record (baseline)", BASELINE, () =>
      outbound(h, single.instanceId, BASELINE, "single"),
    );
  } finally {
    await h.close();
  }
}

async function dynamics(): Promise<void> {
  const h = await dynamicsHarness({
    emit: async () => undefined,
    config: { outbound: { leads: true, activities: true, scores: true, batchSize: 10_000 } },
  });
  try {
    await h.engine.configure(h.config, h.credentials);
    for (let offset = 0; offset < COUNT; offset += 10_000) {
      h.fake.insert(
        "leads",
        Array.from({ length: Math.min(10_000, COUNT - offset) }, (_, i) => ({
          lastname: `L${offset + i}`,
          emailaddress1: `l${offset + i}@example.com`,
          hub_leadid: `lead-${offset + i}`,
        })),
      );
    }
    await measure(h, "dynamics inbound (change tracking, pages of 5,000)", COUNT, () => inbound(h, COUNT));
    await measure(h, "dynamics outbound $batch (1,000 per change set)", COUNT, () =>
      outbound(h, h.config.instanceId, COUNT, "batch"),
    );
    const single = { ...h.config, instanceId: "dyn-single", options: { ...h.config.options, writeMode: "single" } };
    await h.engine.configure(single, h.credentials);
    await measure(h, "dynamics outbound one call per record (baseline)", BASELINE, () =>
      outbound(h, single.instanceId, BASELINE, "single"),
    );
  } finally {
    await h.close();
  }
}

function perThousand(row: Row): number {
  return (row.calls / row.records) * 1000;
}

async function main(): Promise<void> {
  await salesforce();
  await dynamics();
  console.log(
    `\nCRM connector benchmark — ${COUNT.toLocaleString("en")} records; calls counted by the fake servers (token calls included)\n`,
  );
  console.log(
    [
      "scenario".padEnd(54),
      "records".padStart(9),
      "seconds".padStart(9),
      "records/s".padStart(11),
      "calls".padStart(7),
      "calls/1000".padStart(11),
    ].join(" "),
  );
  for (const row of rows) {
    console.log(
      [
        row.scenario.padEnd(54),
        String(row.records).padStart(9),
        row.seconds.toFixed(2).padStart(9),
        Math.round(row.records / row.seconds)
          .toString()
          .padStart(11),
        String(row.calls).padStart(7),
        perThousand(row).toFixed(2).padStart(11),
      ].join(" "),
    );
  }
  const find = (prefix: string): Row | undefined => rows.find((r) => r.scenario.startsWith(prefix));
  for (const [name, bulk, baseline] of [
    ["salesforce", find("salesforce outbound Bulk"), find("salesforce outbound one call")],
    ["dynamics", find("dynamics outbound $batch"), find("dynamics outbound one call")],
  ] as const) {
    if (!bulk || !baseline) continue;
    const ratio = perThousand(baseline) / perThousand(bulk);
    const verdict = perThousand(bulk) <= 2 ? "meets" : "MISSES";
    console.log(
      `${name}: ${perThousand(bulk).toFixed(2)} calls/1000 on the bulk/batch path vs ${perThousand(baseline).toFixed(0)} one-per-record → ${ratio.toFixed(0)}x fewer calls (${verdict} the ≤ 2 target)`,
    );
  }

  const crash = await runCrashScenario(COUNT);
  const inboundOk = crash.inbound.distinctRecords === COUNT && crash.inbound.activities === COUNT;
  const outboundOk = crash.outbound.tasks === COUNT && crash.outbound.distinctActivityIds === COUNT;
  console.log(
    `\nkill -9 at ${crash.killedAt.toLocaleString("en")} of ${COUNT.toLocaleString("en")}: inbound ${crash.inbound.distinctRecords} records, ` +
      `${crash.inbound.activities} distinct activities (${crash.inbound.redelivered} redelivered, deduped by id) in ${crash.inbound.seconds.toFixed(1)} s; ` +
      `outbound ${crash.outbound.tasks} tasks, ${crash.outbound.distinctActivityIds} distinct in ${crash.outbound.seconds.toFixed(1)} s → ` +
      `${inboundOk && outboundOk ? "zero loss, zero duplicates" : "LOSS OR DUPLICATES"}`,
  );
  if (!inboundOk || !outboundOk) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
