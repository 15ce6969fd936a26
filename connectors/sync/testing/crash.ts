/**
 * Kill -9 scenario shared by the test and the benchmark: sync `count` records inbound and `count`
 * activities outbound in a child process, SIGKILL it mid-run, resume in a new process, and
 * report loss and duplicates.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStateStore } from "../sqlite-state-store";
import { salesforceHarness } from "./harness";
import { openSink } from "./crash-child";

export interface CrashReport {
  count: number;
  killedAt: number;
  inbound: { distinctRecords: number; activities: number; redelivered: number; seconds: number };
  outbound: { tasks: number; distinctActivityIds: number; seconds: number };
}

function startChild(env: Record<string, string>): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "crash-child.ts")], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      if (code !== 0 && code !== null) process.stderr.write(`crash child exited ${code}: ${stderr}\n`);
      resolve(code);
    }),
  );
  return { child, exited };
}

async function killWhen(
  child: ChildProcess,
  exited: Promise<number | null>,
  progress: () => number,
  threshold: number,
): Promise<number> {
  for (let i = 0; i < 60_000; i++) {
    const done = progress();
    if (done >= threshold) {
      child.kill("SIGKILL");
      await exited;
      return done;
    }
    const finished = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5)),
    ]);
    if (finished) throw new Error(`child finished before the kill (progress ${progress()})`);
  }
  throw new Error("no progress");
}

export async function runCrashScenario(count: number): Promise<CrashReport> {
  const dir = mkdtempSync(join(tmpdir(), "connector-crash-"));
  const key = randomBytes(32);
  const stateDb = join(dir, "state.db");
  const sinkDb = join(dir, "sink.db");
  const store = new SqliteStateStore(stateDb);
  const h = await salesforceHarness({
    store,
    vaultKey: key,
    options: { queryBatchSize: 2000 },
    config: { outbound: { leads: false, activities: true, scores: false, batchSize: 5000 } },
  });
  try {
    await h.engine.configure(h.config, h.credentials);
    store.close();
    const chunk = 10_000;
    for (let offset = 0; offset < count; offset += chunk) {
      const size = Math.min(chunk, count - offset);
      h.fake.insert(
        "Lead",
        Array.from({ length: size }, (_, i) => ({
          LastName: `L${offset + i}`,
          Email: `l${offset + i}@example.com`,
          Hub_Lead_Id__c: `lead-${offset + i}`,
        })),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const env = {
      STATE_DB: stateDb,
      SINK_DB: sinkDb,
      VAULT_KEY: key.toString("hex"),
      INSTANCE_ID: h.config.instanceId,
      COUNT: String(count),
    };
    const sink = openSink(sinkDb);
    const sinkCount = sink.prepare<[], { n: number }>("SELECT count(*) AS n FROM sink");

    const inboundStarted = Date.now();
    const first = startChild({ ...env, DIRECTION: "inbound" });
    const killedAt = await killWhen(first.child, first.exited, () => sinkCount.get()?.n ?? 0, Math.floor(count * 0.3));
    const resumed = startChild({ ...env, DIRECTION: "inbound" });
    if ((await resumed.exited) !== 0) throw new Error("inbound resume failed");
    const inboundSeconds = (Date.now() - inboundStarted) / 1000;
    const stats = sink
      .prepare<[], { records: number; activities: number; deliveries: number }>(
        "SELECT count(DISTINCT crm_id) AS records, count(*) AS activities, sum(deliveries) AS deliveries FROM sink",
      )
      .get();

    const outboundStarted = Date.now();
    const second = startChild({ ...env, DIRECTION: "outbound" });
    await killWhen(second.child, second.exited, () => h.fake.count("Task"), Math.floor(count * 0.3));
    const again = startChild({ ...env, DIRECTION: "outbound" });
    if ((await again.exited) !== 0) throw new Error("outbound resume failed");
    const outboundSeconds = (Date.now() - outboundStarted) / 1000;
    const ids = new Set(h.fake.all("Task").map((task) => String(task.Hub_Activity_Id__c)));
    sink.close();
    return {
      count,
      killedAt,
      inbound: {
        distinctRecords: stats?.records ?? 0,
        activities: stats?.activities ?? 0,
        redelivered: (stats?.deliveries ?? 0) - (stats?.activities ?? 0),
        seconds: inboundSeconds,
      },
      outbound: { tasks: h.fake.count("Task"), distinctActivityIds: ids.size, seconds: outboundSeconds },
    };
  } finally {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
