/**
 * Child process for the kill -9 tests and benchmark: runs one sync direction of a connector whose
 * config and encrypted credentials are already in the SQLite state store, delivering inbound
 * activities into a SQLite sink (deduplicated by activity id, deliveries counted).
 * Env: STATE_DB, SINK_DB, VAULT_KEY (hex), INSTANCE_ID, DIRECTION (inbound|outbound), COUNT.
 */
import Database from "better-sqlite3";
import { SyncEngine } from "../engine";
import { BudgetRegistry } from "../budget";
import { SqliteStateStore } from "../sqlite-state-store";
import { AesGcmCredentialVault } from "../vault";
import { activityStream } from "./harness";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

export function openSink(path: string): Database.Database {
  const sink = new Database(path);
  sink.pragma("journal_mode = WAL");
  sink.pragma("synchronous = FULL");
  sink.pragma("busy_timeout = 5000");
  sink.exec("CREATE TABLE IF NOT EXISTS sink (id TEXT PRIMARY KEY, crm_id TEXT NOT NULL, deliveries INTEGER NOT NULL)");
  return sink;
}

async function main(): Promise<void> {
  const store = new SqliteStateStore(env("STATE_DB"));
  const sink = openSink(env("SINK_DB"));
  const insert = sink.prepare(
    "INSERT INTO sink (id, crm_id, deliveries) VALUES (?, ?, 1) ON CONFLICT(id) DO UPDATE SET deliveries = deliveries + 1",
  );
  const engine = new SyncEngine({
    store,
    vault: new AesGcmCredentialVault(store, { id: "k1", key: Buffer.from(env("VAULT_KEY"), "hex") }),
    emit: async (activities) => {
      sink.transaction(() => {
        for (const activity of activities) insert.run(activity.id, activity.attributes.crmId);
      })();
    },
    budgets: new BudgetRegistry({
      salesforce: { callsPerSecond: 10_000, burst: 10_000 },
      dynamics: { callsPerSecond: 10_000, burst: 10_000 },
    }),
    lockTtlMs: 30_000,
  });
  const direction = env("DIRECTION") === "outbound" ? "outbound" : "inbound";
  const config = await store.getConfig(env("INSTANCE_ID"));
  const runs = await engine.run(env("INSTANCE_ID"), {
    directions: [direction],
    source: direction === "outbound" ? activityStream(Number(env("COUNT")), config?.tenantId ?? "") : undefined,
  });
  process.stdout.write(JSON.stringify(runs) + "\n");
  store.close();
  sink.close();
  process.exit(runs.every((run) => run.status === "succeeded") ? 0 : 2);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
