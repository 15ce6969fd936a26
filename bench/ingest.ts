import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HUB_NODE_FLAGS } from "../core/node-flags";
import { benchActivityInput } from "./lib/fixtures";
import { percentile, runLoad, type LoadResult } from "./lib/load";
import { cpuSeconds, startProcess, stopProcess, waitForIdle, writtenBytes } from "./lib/processes";

/**
 * `npm run bench:ingest`: the hub on the embedded profile (every 202 durable: fsync in queue and
 * store) against a bare Node HTTP server that only parses the same JSON, in the same run, with
 * the same load generator. Prints activities/s, p50/p99 and the hub/baseline ratio.
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 15);
const HUB_PORT = 8871;
const BARE_PORT = 8872;

/**
 * Request bodies come from a pool serialised before any run, so the load generator, which shares
 * the machine's two cores with the server, spends them on sending, not on building JSON: a
 * batch of 500 costs the generator about as much CPU to build as a bare server needs to parse.
 * The pools hold 100,000 batched and 20,000 single activities over the fixtures' 5,000 leads;
 * the hub gives every activity of every request a new id all the same.
 */
function pool(count: number, size: number): () => string {
  let seq = 0;
  const bodies = Array.from({ length: count }, () =>
    size === 1
      ? JSON.stringify(benchActivityInput(seq++))
      : JSON.stringify(Array.from({ length: size }, () => benchActivityInput(seq++))),
  );
  let next = 0;
  return () => bodies[next++ % bodies.length]!;
}
const batchBody = pool(200, 500);
const singleBody = pool(20_000, 1);

/**
 * One scenario's line. `cpu`: CPU seconds the server process used during the run (all threads).
 * Per activity it is steadier than the rate on a shared machine, whose speed drifts from run to
 * run; the server's share of the cores shows how much of the machine the generator left it.
 * `written`: bytes the server handed to write() meanwhile (hub only: its queue, store and state
 * files, and the responses), shown per activity.
 */
function report(
  name: string,
  r: LoadResult,
  perRequest: number,
  cpu: number,
  written?: number,
): { rate: number; p50: number; p99: number; cpuUs: number } {
  const accepted = (r.requests - r.errors) * perRequest;
  const rate = accepted / r.seconds;
  const p50 = percentile(r.latenciesMs, 50);
  const p99 = percentile(r.latenciesMs, 99);
  const cpuUs = accepted > 0 ? (cpu * 1e6) / accepted : NaN;
  console.log(
    `${name.padEnd(34)} ${rate.toFixed(0).padStart(8)} activities/s  ${(r.requests / r.seconds).toFixed(0).padStart(6)} req/s  p50 ${p50.toFixed(1).padStart(6)} ms  p99 ${p99.toFixed(1).padStart(6)} ms  server CPU ${cpuUs.toFixed(1).padStart(6)} µs/activity (${(cpu / r.seconds).toFixed(2)} cores)${written === undefined || !(accepted > 0) ? "" : `  written ${(written / accepted / 1024).toFixed(1)} KB/activity`}  errors ${r.errors} ${JSON.stringify(r.statuses)}`,
  );
  return { rate, p50, p99, cpuUs };
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "hub-bench-"));
  // BENCH_HUB_ROLES=ingestion,control measures the intake without in-process consumers.
  const roles = process.env.BENCH_HUB_ROLES;
  const adminToken = randomBytes(24).toString("base64url");
  const env = {
    ...(roles ? { HUB_ROLES: roles } : {}),
    HUB_ADMIN_TOKEN: adminToken,
    HUB_DATA_DIR: dataDir,
    HUB_PORT: String(HUB_PORT),
    HUB_LOG_LEVEL: "warn",
    HUB_QUOTA_RATE: "10000000",
    HUB_QUOTA_BURST: "10000000",
  };
  const created = JSON.parse(
    execFileSync(process.execPath, ["--import", "tsx", "core/cli/hub.ts", "tenant", "create", "bench"], {
      env: { ...process.env, ...env },
    }).toString(),
  ) as { apiKey: string };
  const headers = { authorization: `Bearer ${created.apiKey}` };
  console.log(
    `bench:ingest — ${seconds} s per scenario, loopback, ${process.env.BENCH_NOTE ?? "2-core machine, generator in the same machine"}`,
  );

  const scenarios = [
    {
      name: "batches of 500",
      body: batchBody,
      perRequest: 500,
      concurrency: Number(process.env.BENCH_BATCH_CONCURRENCY ?? 8),
    },
    {
      name: "single activity",
      body: singleBody,
      perRequest: 1,
      concurrency: Number(process.env.BENCH_SINGLE_CONCURRENCY ?? 64),
    },
  ];
  const results: Record<string, { hub?: ReturnType<typeof report>; bare?: ReturnType<typeof report> }> = {};

  const bare = await startProcess(
    ["bench/lib/bare-server.ts"],
    { PORT: String(BARE_PORT) },
    `http://127.0.0.1:${BARE_PORT}/`,
  );
  for (const s of scenarios) {
    const cpuBefore = cpuSeconds(bare);
    const r = await runLoad({
      url: `http://127.0.0.1:${BARE_PORT}/`,
      headers,
      body: s.body,
      concurrency: s.concurrency,
      seconds,
    });
    (results[s.name] ??= {}).bare = report(
      `baseline (bare HTTP), ${s.name}`,
      r,
      s.perRequest,
      cpuSeconds(bare) - cpuBefore,
    );
  }
  await stopProcess(bare);

  const hub = await startProcess([...HUB_NODE_FLAGS, "core/main.ts"], env, `http://127.0.0.1:${HUB_PORT}/health/ready`);
  for (const s of scenarios) {
    // Each scenario starts on a settled hub: the store indexes earlier writes in the background.
    await waitForIdle(hub);
    // A short warm-up so JIT and SQLite caches are hot, then the measured run.
    await runLoad({
      url: `http://127.0.0.1:${HUB_PORT}/api/v1/activities`,
      headers,
      body: s.body,
      concurrency: s.concurrency,
      seconds: 2,
    });
    const cpuBefore = cpuSeconds(hub);
    const writtenBefore = writtenBytes(hub);
    const r = await runLoad({
      url: `http://127.0.0.1:${HUB_PORT}/api/v1/activities`,
      headers,
      body: s.body,
      concurrency: s.concurrency,
      seconds,
    });
    (results[s.name] ??= {}).hub = report(
      `hub (embedded, durable), ${s.name}`,
      r,
      s.perRequest,
      cpuSeconds(hub) - cpuBefore,
      writtenBytes(hub) - writtenBefore,
    );
  }
  const sustained = await sustain(hub, headers, { authorization: `Bearer ${adminToken}` });
  await stopProcess(hub);
  rmSync(dataDir, { recursive: true, force: true });

  console.log("");
  if (sustained.length > 1)
    console.log(
      `sustained batches of 500: last window / first window ${(sustained[sustained.length - 1]! / sustained[0]!).toFixed(2)}`,
    );
  for (const [name, r] of Object.entries(results)) {
    if (r.hub && r.bare)
      console.log(
        `ratio hub/baseline, ${name}: ${(r.hub.rate / r.bare.rate).toFixed(3)} (server CPU per activity: ${(r.hub.cpuUs / r.bare.cpuUs).toFixed(1)}x)`,
      );
  }
}

/**
 * Batches of 500 for `BENCH_SUSTAIN_SECONDS` (default 120; 0 skips) on the hub that already took
 * the scenarios above, in windows of 30 s: the short scenarios write into a nearly empty store,
 * this one shows what is left of the rate as the store grows.
 */
async function sustain(
  hub: Awaited<ReturnType<typeof startProcess>>,
  headers: Record<string, string>,
  adminHeaders: Record<string, string>,
): Promise<number[]> {
  const total = Number(process.env.BENCH_SUSTAIN_SECONDS ?? 120);
  const rates: number[] = [];
  if (total <= 0) return rates;
  await waitForIdle(hub);
  const window = Math.min(30, total);
  for (let at = 0; at < total; at += window) {
    const cpuBefore = cpuSeconds(hub);
    const writtenBefore = writtenBytes(hub);
    const r = await runLoad({
      url: `http://127.0.0.1:${HUB_PORT}/api/v1/activities`,
      headers,
      body: batchBody,
      concurrency: Number(process.env.BENCH_BATCH_CONCURRENCY ?? 8),
      seconds: window,
    });
    rates.push(
      report(
        `hub, sustained, ${at}-${at + window} s`,
        r,
        500,
        cpuSeconds(hub) - cpuBefore,
        writtenBytes(hub) - writtenBefore,
      ).rate,
    );
    console.log(`${"".padEnd(34)} consumer lag: ${await consumerLag(adminHeaders)}`);
  }
  return rates;
}

/**
 * The in-process consumers' lag as the monitoring plugin last evaluated it (every 5 s): a rate
 * the consumers do not keep up with is not sustained, whatever the intake answers.
 */
async function consumerLag(headers: Record<string, string>): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${HUB_PORT}/api/v1/monitoring/status`, { headers });
  if (!response.ok) return `unavailable (HTTP ${response.status})`;
  const status = (await response.json()) as {
    consumerGroups?: Record<string, { status: string; messages: number; seconds: number }>;
  };
  const groups = Object.entries(status.consumerGroups ?? {});
  if (groups.length === 0) return "no consumer groups";
  return groups
    .map(([group, g]) => `${group} ${g.messages} messages, ${g.seconds.toFixed(1)} s (${g.status})`)
    .join("; ");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
