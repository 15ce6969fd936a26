import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { stores } from "../plugins/store";
import { stackClasspath } from "../stack/index";
import { percentile, runLoad } from "./lib/load";
import { startProcess, stopProcess } from "./lib/processes";

/**
 * `npm run bench:stack`: sustained activities/s through REST → Kafka + store (HBase when the
 * `hbase` store is registered and its REST server answers, else the embedded store, and it says
 * so; BENCH_STORE=embedded forces the embedded store) with p50/p99 intake latency; then, in the same run on the same broker, Kafka's own
 * `org.apache.kafka.tools.ProducerPerformance` with the same record size, acks=all and
 * idempotence. Prints both and the ratio. Bounded: BENCH_SECONDS of load (default 30) plus at most
 * BENCH_PERF_TIMEOUT_S (default 120) for the Kafka tool.
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 30);
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 5);
const batchSize = Number(process.env.BENCH_BATCH ?? 200);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 8);
const brokers = (process.env.BENCH_KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const hbaseUrl = process.env.BENCH_HBASE_URL ?? "http://127.0.0.1:8080";
const compression = process.env.BENCH_COMPRESSION ?? "none";
const perfRecords = Number(process.env.BENCH_PERF_RECORDS ?? 1_500_000);
const perfTimeoutMs = Number(process.env.BENCH_PERF_TIMEOUT_S ?? 120) * 1000;
const PORT = Number(process.env.BENCH_PORT ?? 8873);
const ADMIN = "bench-stack-admin-token-0123456789abcdef";
const RUN = `${Date.now().toString(36)}${randomUUID().slice(0, 4)}`;
const PREFIX = `bench-${RUN}.`;

function activity(i: number): Record<string, unknown> {
  return {
    leadId: `lead-${i % 20_000}`,
    type: "visit_web_page",
    occurredAt: new Date().toISOString(),
    attributes: {
      url: `https://www.example.com/products/item-${i % 300}?utm_source=newsletter&utm_campaign=fall`,
      title: "Product page: fall collection, item details, sizes and reviews",
      referrer: "https://www.google.com/search?q=fall+collection+items",
      userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
      ip: "203.0.113.7",
    },
  };
}

async function hbaseReachable(): Promise<boolean> {
  try {
    return (await fetch(`${hbaseUrl}/version/cluster`, { signal: AbortSignal.timeout(3000) })).ok;
  } catch {
    return false;
  }
}

interface PerfResult {
  recordsPerSec: number;
  mbPerSec: number;
  avgMs: number;
  p50Ms: number;
  p99Ms: number;
  line: string;
}

/** Runs ProducerPerformance; parses its final summary (or the last periodic line if it was cut off). */
async function producerPerformance(topic: string, recordSize: number): Promise<PerfResult> {
  const classpath = await stackClasspath("kafka");
  const args = [
    "-Xmx512m",
    "-cp",
    classpath,
    "org.apache.kafka.tools.ProducerPerformance",
    "--topic",
    topic,
    "--num-records",
    String(perfRecords),
    "--record-size",
    String(recordSize),
    "--throughput",
    "-1",
    "--producer-props",
    `bootstrap.servers=${brokers.join(",")}`,
    "acks=all",
    "enable.idempotence=true",
    `compression.type=${compression}`,
  ];
  const child = spawn("java", args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), perfTimeoutMs);
  await new Promise<void>((resolve) => child.on("exit", () => resolve()));
  clearTimeout(timer);
  const lines = out.split("\n").filter((l) => /records sent/.test(l));
  const line = lines.find((l) => /50th/.test(l)) ?? lines[lines.length - 1];
  if (!line) throw new Error(`ProducerPerformance printed no result:\n${out.slice(-2000)}`);
  const num = (re: RegExp): number => Number(re.exec(line)?.[1] ?? NaN);
  return {
    recordsPerSec: num(/([\d.]+) records\/sec/),
    mbPerSec: num(/\(([\d.]+) MB\/sec\)/),
    avgMs: num(/([\d.]+) ms avg latency/),
    p50Ms: num(/(\d+) ms 50th/),
    p99Ms: num(/(\d+) ms 99th/),
    line: line.trim(),
  };
}

async function main(): Promise<void> {
  const wanted = process.env.BENCH_STORE ?? "hbase";
  const useHbase = wanted === "hbase" && stores.types().includes("hbase") && (await hbaseReachable());
  const dataDir = mkdtempSync(join(tmpdir(), "hub-bench-stack-"));
  const kafka = new Kafka({ clientId: "bench-stack", brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const queue = { type: "kafka", options: { brokers, topicPrefix: PREFIX, partitions: 12, compression } };
  console.log(
    `bench:stack — REST → Kafka (${brokers.join(",")}, 12 partitions, acks=all, idempotent, compression ${compression}) ` +
      `+ ${useHbase ? `HBase store (${hbaseUrl})` : `EMBEDDED store (${wanted === "hbase" ? "no hbase store registered or HBase REST not answering" : "BENCH_STORE=embedded"})`}; ` +
      `${seconds} s after ${warmupSeconds} s warm-up, batches of ${batchSize}, ${concurrency} connections, loopback, generator on the same machine`,
  );
  const hub = await startProcess(
    ["bench/stack-hub.ts"],
    {
      HUB_PROFILE: "stack",
      HUB_ROLES: "ingestion,control",
      HUB_TRANSPORTER: "none",
      HUB_DATA_DIR: dataDir,
      HUB_PORT: String(PORT),
      HUB_LOG_LEVEL: "warn",
      HUB_ADMIN_TOKEN: ADMIN,
      HUB_QUOTA_RATE: "10000000",
      HUB_QUOTA_BURST: "10000000",
      HUB_RECONCILE_INTERVAL_MS: "0",
      HUB_QUEUE: JSON.stringify(queue),
      ...(useHbase
        ? { HUB_STORE: JSON.stringify({ type: "hbase", options: { url: hbaseUrl } }) }
        : { HUB_STORE: "embedded" }),
    },
    `http://127.0.0.1:${PORT}/health/ready`,
    120_000,
  );
  let hubResult: { rate: number; p50: number; p99: number; errors: number; statuses: Record<number, number> };
  let recordSize = 600;
  try {
    const tenant = await fetch(`http://127.0.0.1:${PORT}/api/v1/admin/tenants`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: `bench-${RUN}` }),
    });
    if (tenant.status !== 201) throw new Error(`tenant creation: ${tenant.status} ${await tenant.text()}`);
    const { apiKey } = (await tenant.json()) as { apiKey: string };
    const headers = { authorization: `Bearer ${apiKey}` };
    let seq = 0;
    const body = (): string => JSON.stringify(Array.from({ length: batchSize }, () => activity(seq++)));
    const url = `http://127.0.0.1:${PORT}/api/v1/activities`;
    await runLoad({ url, headers, body, concurrency, seconds: warmupSeconds });
    const r = await runLoad({ url, headers, body, concurrency, seconds });
    hubResult = {
      rate: ((r.requests - r.errors) * batchSize) / r.seconds,
      p50: percentile(r.latenciesMs, 50),
      p99: percentile(r.latenciesMs, 99),
      errors: r.errors,
      statuses: r.statuses,
    };
    // The record size Kafka's tool should use: an activity as the hub queued it.
    const sample = await fetch(`http://127.0.0.1:${PORT}/api/v1/activities?limit=20`, { headers });
    const items = ((await sample.json()) as { items?: unknown[] }).items ?? [];
    if (items.length > 0) {
      recordSize = Math.round(
        items.reduce<number>((s, a) => s + Buffer.byteLength(JSON.stringify(a)), 0) / items.length,
      );
    }
  } finally {
    await stopProcess(hub);
    rmSync(dataDir, { recursive: true, force: true });
  }
  const lag = await admin.fetchTopicOffsets(`${PREFIX}hub.activities`);
  const queued = lag.reduce((s, p) => s + Number(p.high) - Number(p.low), 0);
  console.log(
    `hub  REST → Kafka + ${useHbase ? "HBase" : "embedded store"}: ${hubResult.rate.toFixed(0)} activities/s, ` +
      `intake p50 ${hubResult.p50.toFixed(1)} ms, p99 ${hubResult.p99.toFixed(1)} ms per request of ${batchSize} ` +
      `(errors ${hubResult.errors}, statuses ${JSON.stringify(hubResult.statuses)}; ${queued} records in the topic; record ≈ ${recordSize} B)`,
  );

  const perfTopic = `${PREFIX}producer-perf`;
  await admin.createTopics({
    topics: [{ topic: perfTopic, numPartitions: 12, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  const perf = await producerPerformance(perfTopic, recordSize);
  console.log(
    `kafka ProducerPerformance (${perfRecords} records of ${recordSize} B, acks=all, idempotent, compression ${compression}): ` +
      `${perf.recordsPerSec.toFixed(0)} records/s (${perf.mbPerSec} MB/s), avg ${perf.avgMs} ms, p50 ${perf.p50Ms} ms, p99 ${perf.p99Ms} ms`,
  );
  console.log(`  ${perf.line}`);
  console.log(`ratio hub / Kafka producer: ${(hubResult.rate / perf.recordsPerSec).toFixed(3)}`);

  const topics = (await admin.listTopics()).filter((t) => t.startsWith(PREFIX));
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
