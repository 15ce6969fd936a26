import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Activity } from "../core/activity/model";
import { benchActivityBatches } from "./lib/fixtures";
import { newActivityId } from "../core/activity/ids";
import { activityJson } from "../core/activity/serialize";
import { HBaseStore, hbaseStoreOptions } from "../plugins/store/hbase";

/**
 * `npx tsx bench/hbase.ts`: the HBase store's `put` through the REST gateway, batches of 500
 * (one multi-row PUT per table per batch), with 1 and with 4 batches in flight; then the latency
 * of a lead-history page and a tenant list page. Needs `npx tsx stack/cli.ts up hbase`.
 * Tables get a unique prefix and are dropped at the end.
 * HBASE_URL (default http://127.0.0.1:8080), HBASE_BENCH_ACTIVITIES (default 20,000), HBASE_BENCH_SALT (16).
 */
const url = process.env.HBASE_URL ?? "http://127.0.0.1:8080";
const total = Number(process.env.HBASE_BENCH_ACTIVITIES ?? 20_000);
const salt = Number(process.env.HBASE_BENCH_SALT ?? 16);
const BATCH = 500;

function batches(tenantId: string): Activity[][] {
  return benchActivityBatches(tenantId, total, BATCH);
}

async function putAll(store: HBaseStore, work: Activity[][], inFlight: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < work.length) await store.put(work[next++]!);
    }),
  );
  return performance.now() - started;
}

async function timeIt(n: number, fn: () => Promise<unknown>): Promise<{ p50: number; max: number }> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(n / 2)]!, max: times[n - 1]! };
}

async function main(): Promise<void> {
  const store = new HBaseStore(
    hbaseStoreOptions({ url, tablePrefix: `bench_${randomUUID().slice(0, 8)}_`, saltBuckets: salt }),
  );
  await store.start();
  try {
    const tenant = `bench-${randomUUID().slice(0, 6)}`;
    await store.put(batches(tenant)[0]!.slice(0, 50)); // warm-up: connections, regions
    const avgBytes = batches(tenant)[0]!.reduce((s, a) => s + Buffer.byteLength(activityJson(a)), 0) / BATCH;
    console.log(
      `HBase REST ${url}, ${total} activities in batches of ${BATCH}, ~${Math.round(avgBytes)} B JSON each, ${salt} salt buckets`,
    );
    for (const inFlight of [1, 4]) {
      const ms = await putAll(store, batches(tenant), inFlight);
      console.log(
        `put, ${inFlight} batch(es) in flight: ${((ms * 1000) / total).toFixed(1)} µs/activity, ${Math.round((total / ms) * 1000)} activities/s`,
      );
    }
    const lead = await timeIt(50, () => store.leadHistory(tenant, "lead-7", { limit: 50 }));
    const list = await timeIt(20, () => store.list(tenant, { limit: 100 }));
    const get = await timeIt(50, () => store.existing(tenant, [newActivityId()]));
    console.log(`leadHistory page of 50: p50 ${lead.p50.toFixed(1)} ms, max ${lead.max.toFixed(1)} ms`);
    console.log(
      `list page of 100 (${salt} bucket scans merged): p50 ${list.p50.toFixed(1)} ms, max ${list.max.toFixed(1)} ms`,
    );
    console.log(`existing (1 id, multiget): p50 ${get.p50.toFixed(1)} ms`);
  } finally {
    await store.dropTables();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
