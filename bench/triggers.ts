/**
 * Trigger latency benchmark: 100 active campaigns across 10 tenants, a steady stream of web
 * activities over REST from a separate load process, and the latency from intake (`receivedAt`)
 * to the first flow step executing.
 *
 *   npm run bench:triggers -- [--rate 11600] [--seconds 20] [--match 0.1] [--batch 200] [--unique 0]
 *
 * `--match` is the share of activities that fire a campaign (each firing runs a score step).
 * `--unique` is the share whose page URL carries a unique click id (no enrichment cache hit).
 */
import { fork } from "node:child_process";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHub } from "../core/runtime";
import { postJson } from "./lib/load";
import { createCampaignsPlugin } from "../plugins/campaigns/plugin";
import { restIngestionPlugin } from "../plugins/ingestion/plugin";
import { webEnrichmentPlugin } from "../plugins/web-enrichment/plugin";

const TENANTS = 10;
const CAMPAIGNS_PER_TENANT = 10;
const LEADS_PER_TENANT = 5000;
const ADMIN = "bench-admin-token-0123456789abcdef";

function arg(name: string, fallback: number, allowZero = false): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero)) {
    throw new Error(`--${name} must be a ${allowZero ? "non-negative" : "positive"} number`);
  }
  return value;
}

interface LoadResult {
  sent: number;
  accepted: number;
  failed: number;
  /** Accepted activities that match a campaign: each must execute exactly one flow step. */
  matching: number;
  elapsedMs: number;
  /** CPU the load process used (ms): it shares the machine with the hub. */
  cpuMs: number;
}

/** The load process: posts batches at a steady rate for a bounded time. */
async function load(
  url: string,
  keys: string[],
  rate: number,
  seconds: number,
  match: number,
  batch: number,
  unique: number,
): Promise<LoadResult> {
  const ua =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
  const started = Date.now();
  const end = started + seconds * 1000;
  const result: LoadResult = { sent: 0, accepted: 0, failed: 0, matching: 0, elapsedMs: 0, cpuMs: 0 };
  const cpu0 = process.cpuUsage();
  // Keep-alive node:http, a cheaper client than fetch: the generator shares the hub's CPU.
  const target = new URL(`${url}/api/v1/activities`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const inflight = new Set<Promise<void>>();
  let n = 0;
  while (Date.now() < end) {
    const due = Math.floor(((Date.now() - started) / 1000) * rate);
    while (result.sent < due && inflight.size < 256) {
      const tenant = n++ % keys.length;
      let matching = 0;
      const activities = Array.from({ length: batch }, (_, i) => {
        const fires = Math.random() < match;
        if (fires) matching++;
        const page = fires ? `/p${(n + i) % CAMPAIGNS_PER_TENANT}/item` : `/blog/${(n + i) % 500}`;
        // A click id makes the URL unique, as ad traffic does: no enrichment cache hit on it.
        const click = Math.random() < unique ? `&gclid=${Math.random().toString(36).slice(2)}` : "";
        return {
          type: "visit_web_page",
          leadId: `lead-${Math.floor(Math.random() * LEADS_PER_TENANT)}`,
          attributes: {
            url: `https://shop.example${page}?utm_source=bench${click}`,
            userAgent: ua,
            ip: `81.2.69.${(n + i) % 250}`,
          },
        };
      });
      result.sent += batch;
      const p = postJson(agent, target, { authorization: `Bearer ${keys[tenant]!}` }, JSON.stringify({ activities }))
        .then((status) => {
          if (status === 202) {
            result.accepted += batch;
            result.matching += matching;
          } else result.failed += batch;
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inflight);
  result.elapsedMs = Date.now() - started;
  const cpu = process.cpuUsage(cpu0);
  result.cpuMs = Math.round((cpu.user + cpu.system) / 1000);
  agent.destroy();
  return result;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const rate = arg("rate", 11_600);
  const seconds = Math.min(arg("seconds", 20), 60);
  const match = Math.min(arg("match", 0.1), 1);
  const batch = arg("batch", 200);
  const unique = Math.min(arg("unique", 0, true), 1);
  const dataDir = mkdtempSync(join(tmpdir(), "bench-triggers-"));
  const latencies: number[] = [];
  const hub = createHub(
    {
      plugins: [
        restIngestionPlugin,
        webEnrichmentPlugin,
        createCampaignsPlugin({ onStep: (_run, step, _type, ms) => void (step === 0 && latencies.push(ms)) }),
      ],
      config: {
        logLevel: "warn",
        http: { port: 0, maxBatch: 1000 },
        adminToken: ADMIN,
        quota: { rate: 1e6, burst: 1e6 },
      },
    },
    { HUB_DATA_DIR: dataDir },
  );
  await hub.start();
  try {
    const port = ((hub.broker.getLocalService("api") as unknown as { server: Server }).server.address() as AddressInfo)
      .port;
    const url = `http://127.0.0.1:${port}`;
    const call = async (
      method: string,
      path: string,
      key: string,
      body: unknown,
    ): Promise<{ [k: string]: unknown }> => {
      const r = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const parsed = (await r.json()) as { [k: string]: unknown };
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(parsed)}`);
      return parsed;
    };
    const keys: string[] = [];
    for (let t = 0; t < TENANTS; t++) {
      const tenant = await call("POST", "/api/v1/admin/tenants", ADMIN, { name: `bench-${t}` });
      const key = String(tenant.apiKey);
      keys.push(key);
      for (let c = 0; c < CAMPAIGNS_PER_TENANT; c++) {
        const campaign = await call("POST", "/api/v1/campaigns", key, {
          name: `page ${c}`,
          triggers: [
            { activityType: "visit_web_page", constraints: [{ attribute: "url", op: "contains", value: `/p${c}/` }] },
          ],
          filters: [{ kind: "score", op: "gte", value: 0 }],
          qualification: { mode: "every_time" },
          steps: [{ type: "change_score", delta: 1 }],
        });
        await call("POST", `/api/v1/campaigns/${String(campaign.id)}/activate`, key, {});
      }
    }
    process.stdout.write(
      `100 active campaigns across ${TENANTS} tenants; sending ${rate} activities/s for ${seconds} s (match ${match}, batch ${batch}, unique URLs ${unique})\n`,
    );
    const child = fork(__filename, ["--load", JSON.stringify({ url, keys, rate, seconds, match, batch, unique })], {
      execArgv: ["--import", "tsx"],
    });
    const loadResult = await new Promise<LoadResult>((resolve, reject) => {
      child.once("message", (m) => resolve(m as LoadResult));
      child.once("exit", (code) => reject(new Error(`load process exited with ${code}`)));
    });
    const expected = loadResult.matching;
    const queue = await hub.services.queue();
    const drainDeadline = Date.now() + 30_000;
    while (Date.now() < drainDeadline) {
      const lag = (await queue.lag("campaigns", hub.config.topics.activities)).reduce((s, p) => s + p.lag, 0);
      if (lag === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const achieved = loadResult.accepted / (loadResult.elapsedMs / 1000);
    const report = {
      targetRate: rate,
      achievedRate: Math.round(achieved),
      accepted: loadResult.accepted,
      failed: loadResult.failed,
      loadGeneratorCpuMs: loadResult.cpuMs,
      flowStepsExecuted: latencies.length,
      expectedFirings: expected,
      latencyMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(
      `intake → flow step: p50 ${report.latencyMs.p50} ms, p99 ${report.latencyMs.p99} ms, max ${report.latencyMs.max} ms at ${report.achievedRate} activities/s achieved (target ${rate})\n`,
    );
  } finally {
    await hub.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--load") {
  const o = JSON.parse(process.argv[3] ?? "{}") as {
    url: string;
    keys: string[];
    rate: number;
    seconds: number;
    match: number;
    batch: number;
    unique: number;
  };
  void load(o.url, o.keys, o.rate, o.seconds, o.match, o.batch, o.unique).then((r) => {
    process.send?.(r);
    process.exit(0);
  });
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
