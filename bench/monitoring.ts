import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { HubPlugin } from "../core/plugins/contract";
import { createHub, type Hub } from "../core/runtime";
import { monitoringPlugin } from "../monitoring/plugin";
import { restIngestionPlugin } from "../plugins/ingestion/plugin";
import { leadProfilesPlugin } from "../plugins/lead-profiles/plugin";
import { definePlugin } from "../core/plugins/contract";
import type { Subscription } from "../plugins/queue/contract";
import { z } from "zod";
import { runLoad } from "./lib/load";

/**
 * `npm run bench:monitoring`
 *
 * 1. Cost: intake throughput of a hub process with and without the monitoring plugin, in the same
 *    run, alternating A/B rounds so machine noise hits both; prints the with/without ratio
 *    (bar: the monitoring path costs at most 5%).
 * 2. Alert latency: a hub with a consumer that is paused mid-stream; time from the pause to the
 *    `consumer-lag` alert showing as firing on the console's API, with default intervals
 *    (bar: within 30 s of the breach).
 */
const ADMIN_TOKEN = "bench-admin-token-0123456789abcdef";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

// ---------------------------------------------------------------- child: one hub process
async function serve(): Promise<void> {
  const plugins: HubPlugin[] = [restIngestionPlugin, leadProfilesPlugin];
  if (process.env.BENCH_MONITORING === "1") plugins.push(monitoringPlugin);
  const monitoringConfig = process.env.BENCH_MONITORING_CONFIG;
  const hub = createHub({
    plugins,
    config: {
      logLevel: "warn",
      ...(monitoringConfig && process.env.BENCH_MONITORING === "1"
        ? { plugins: { monitoring: JSON.parse(monitoringConfig) as unknown } }
        : {}),
    },
  });
  await hub.start();
  // The parent asks for CPU time: CPU per activity is a steadier measure of cost than
  // throughput on a machine shared with other work.
  process.on("message", (message) => {
    if (message === "cpu") {
      const usage = process.cpuUsage();
      process.send?.({ cpuUs: usage.user + usage.system });
    }
  });
  process.send?.("ready");
  process.on("SIGTERM", () => void hub.stop().then(() => process.exit(0)));
}

let seq = 0;
function activity(): Record<string, unknown> {
  const i = seq++;
  if (i % 3 === 0)
    return {
      leadId: `lead-${i % 5000}`,
      type: "email_opened",
      source: "email",
      attributes: { emailId: `mail-${i % 50}` },
    };
  return {
    leadId: `lead-${i % 5000}`,
    type: "visit_web_page",
    source: "web",
    attributes: { url: `https://www.example.com/p/${i % 300}?utm_source=news`, title: "Product" },
  };
}

async function startChild(monitoring: boolean, port: number, dataDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", __filename, "--serve"], {
    env: {
      ...process.env,
      BENCH_MONITORING: monitoring ? "1" : "0",
      HUB_DATA_DIR: dataDir,
      HUB_PORT: String(port),
      HUB_ADMIN_TOKEN: ADMIN_TOKEN,
      HUB_QUOTA_RATE: "100000000",
      HUB_QUOTA_BURST: "100000000",
      HUB_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("hub did not start within 60 s")), 60_000);
    child.once("message", () => {
      clearTimeout(timer);
      resolve();
    });
    child.once("exit", (code) => reject(new Error(`hub exited with ${code}`)));
  });
  return child;
}

function cpuOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown) => {
      if (typeof message === "object" && message !== null && "cpuUs" in message) {
        child.off("message", onMessage);
        resolve((message as { cpuUs: number }).cpuUs);
      }
    };
    child.on("message", onMessage);
    child.send("cpu");
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

async function createTenant(base: string): Promise<string> {
  const res = await fetch(`${base}/api/v1/admin/tenants`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: `bench-${Date.now()}` }),
  });
  if (res.status !== 201) throw new Error(`tenant creation failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { apiKey: string }).apiKey;
}

async function costBenchmark(): Promise<void> {
  const all = [
    {
      name: "batches of 100",
      body: () => JSON.stringify(Array.from({ length: 100 }, activity)),
      per: 100,
      concurrency: 4,
    },
    { name: "single activity", body: () => JSON.stringify(activity()), per: 1, concurrency: 32 },
  ];
  const only = process.env.BENCH_SCENARIOS?.split(",");
  const scenarios = all.filter((s) => !only || only.includes(s.name));
  console.log(
    `\n1) monitoring cost — ${ROUNDS} A/B rounds × ${SECONDS} s per scenario, hub in a child process, load from this process`,
  );
  const rates: Record<string, { with: number[]; without: number[] }> = {};
  const cpu: Record<string, { with: number[]; without: number[] }> = {};
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? [false, true] : [true, false];
    for (const monitoring of order) {
      const dataDir = mkdtempSync(join(tmpdir(), "bench-mon-"));
      const port = 8890 + (monitoring ? 1 : 0);
      const child = await startChild(monitoring, port, dataDir);
      try {
        const base = `http://127.0.0.1:${port}`;
        const apiKey = await createTenant(base);
        for (const s of scenarios) {
          const target = {
            url: `${base}/api/v1/activities`,
            headers: { authorization: `Bearer ${apiKey}` },
            body: s.body,
            concurrency: s.concurrency,
          };
          await runLoad({ ...target, seconds: 2 });
          const cpuBefore = await cpuOf(child);
          const r = await runLoad({ ...target, seconds: SECONDS });
          const ok = r.requests - r.errors;
          const cpuPerActivity = (await cpuOf(child)) - cpuBefore;
          const usPerActivity = cpuPerActivity / Math.max(1, ok * s.per);
          const rate = (ok * s.per) / r.seconds;
          const entry = (rates[s.name] ??= { with: [], without: [] });
          (monitoring ? entry.with : entry.without).push(rate);
          const cpuEntry = (cpu[s.name] ??= { with: [], without: [] });
          (monitoring ? cpuEntry.with : cpuEntry.without).push(usPerActivity);
          console.log(
            `   round ${round + 1} ${monitoring ? "with   " : "without"} monitoring, ${s.name.padEnd(16)} ${rate.toFixed(0).padStart(7)} activities/s  ${usPerActivity.toFixed(1).padStart(7)} µs CPU/activity (${r.errors} failed)`,
          );
        }
      } finally {
        await stopChild(child);
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const [name, r] of Object.entries(rates)) {
    const ratio = mean(r.with) / mean(r.without);
    const c = cpu[name]!;
    const cpuRatio = median(c.without) / median(c.with);
    console.log(
      `   ${name}: throughput with/without ${ratio.toFixed(3)} (cost ${((1 - ratio) * 100).toFixed(1)}%); ` +
        `CPU per activity without/with ${cpuRatio.toFixed(3)} (cost ${((1 - cpuRatio) * 100).toFixed(1)}%); bar ≤ 5%`,
    );
  }
}

// ---------------------------------------------------------------- alert latency
/** A consumer whose handler can be held, to inject an SLA breach. */
function pausableConsumer(gate: { paused: boolean }) {
  let subscription: Subscription | undefined;
  return definePlugin({
    manifest: {
      id: "bench-consumer",
      kind: "consumer",
      version: "0.0.0",
      description: "pausable bench consumer",
      config: z.object({}).strict(),
      roles: ["consumer"],
    },
    services: ({ hub }) => [
      {
        name: "benchConsumer",
        async started() {
          subscription = await (
            await hub.queue()
          ).subscribe({
            group: "bench-consumer",
            topic: hub.config.topics.activities,
            handler: async () => {
              for (let i = 0; i < 2400 && gate.paused; i++) await new Promise((r) => setTimeout(r, 250));
            },
          });
        },
        async stopped() {
          gate.paused = false;
          await subscription?.stop();
        },
      },
    ],
  });
}

async function alertLatency(): Promise<void> {
  console.log(
    "\n2) alert latency — default intervals (collect lag 5 s, publish 5 s, evaluate 5 s), rule consumer-lag: lag > 10 s",
  );
  const dataDir = mkdtempSync(join(tmpdir(), "bench-alert-"));
  const gate = { paused: false };
  const hub: Hub = createHub(
    {
      plugins: [restIngestionPlugin, monitoringPlugin, pausableConsumer(gate)],
      config: {
        logLevel: "warn",
        http: { port: 8895 },
        adminToken: ADMIN_TOKEN,
        plugins: { monitoring: { consumerGroups: ["bench-consumer"] } },
      },
    },
    { HUB_DATA_DIR: dataDir },
  );
  await hub.start();
  const base = "http://127.0.0.1:8895";
  let producing = true;
  try {
    const apiKey = await createTenant(base);
    const producer = (async () => {
      for (let i = 0; i < 100_000 && producing; i++) {
        const res = await fetch(`${base}/api/v1/activities`, {
          method: "POST",
          headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
          body: JSON.stringify(Array.from({ length: 10 }, activity)),
        });
        if (res.status !== 202 && i < 3) console.log(`   producer: HTTP ${res.status} ${await res.text()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await new Promise((r) => setTimeout(r, 15_000)); // steady state: consumer keeping up, no alert
    const firing = async () => {
      const res = await fetch(`${base}/api/v1/monitoring/alerts`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      const body = (await res.json()) as {
        alerts: Array<{ ruleId: string; state: string; labels: Record<string, string> }>;
      };
      return body.alerts.some(
        (a) => a.ruleId === "consumer-lag" && a.labels.group === "bench-consumer" && a.state === "firing",
      );
    };
    if (await firing()) throw new Error("the alert fired before the breach");
    gate.paused = true;
    const pausedAt = Date.now();
    let firedAt: number | undefined;
    for (let i = 0; i < 480 && firedAt === undefined; i++) {
      await new Promise((r) => setTimeout(r, 250));
      if (await firing()) firedAt = Date.now();
    }
    producing = false;
    gate.paused = false;
    await producer;
    if (firedAt === undefined) console.log("   the alert did not fire within 120 s");
    else {
      const fromPause = (firedAt - pausedAt) / 1000;
      console.log(`   consumer paused → alert firing on the console API: ${fromPause.toFixed(1)} s`);
      console.log(
        `   of which the rule's own threshold (lag > 10 s) is 10 s; detection after the SLA was breached: ${(fromPause - 10).toFixed(1)} s (bar ≤ 30 s; Prometheus + Alertmanager defaults ≈ 120 s)`,
      );
    }
  } finally {
    producing = false;
    await hub.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.argv.includes("--serve")) return serve();
  console.log(`bench:monitoring — ${process.env.BENCH_NOTE ?? "2-core machine, load generator on the same machine"}`);
  if (process.env.BENCH_ONLY !== "latency") await costBenchmark();
  if (process.env.BENCH_ONLY !== "cost") await alertLatency();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
