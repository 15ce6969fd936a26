import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:net";
import { after, describe, it } from "node:test";
import { AssignerProtocol, Kafka, logLevel, type Admin } from "kafkajs";
import { Pool } from "pg";
import { stores } from "../plugins/store";
import { createEffectTables } from "./support/effects-consumer";
import { eventually, tempDir } from "./support/tmp";

/**
 * Scale-out on the stack profile: one ingestion + control node and consumer nodes, separate
 * processes over the NATS transporter, sharing one Kafka consumer group. The consumer applies each
 * activity into PostgreSQL with a unique constraint and logs every delivery, so the test can show
 * across nodes that no 202'd activity is lost after a `kill -9`, that no effect is applied twice,
 * how many redeliveries the kill caused, and that a node added mid-run gets partitions.
 */
const BROKERS = (process.env.HUB_TEST_KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const NATS = process.env.HUB_TEST_NATS_URL ?? "nats://127.0.0.1:4222";
const PG_URL = process.env.HUB_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const ADMIN = "scale-out-admin-token-0123456789abcdef";
const RUN = `${Date.now().toString(36)}${randomUUID().slice(0, 4)}`;
const GROUP = `scaleout-${RUN}`;
const TABLE = `so_${RUN}`;
const PREFIX = `so-${RUN}.`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

interface Node {
  id: string;
  child: ChildProcess;
}

describe("scale-out over NATS with Kafka consumer groups", () => {
  const tmp = tempDir("hub-scaleout-");
  const nodes: Node[] = [];
  const pool = new Pool({ connectionString: PG_URL, max: 2 });
  const kafka = new Kafka({ clientId: "scaleout-test", brokers: BROKERS, logLevel: logLevel.NOTHING });
  let admin: Admin | undefined;

  const store = stores.types().includes("hbase") ? undefined : "embedded";

  function startNode(id: string, roles: string, port?: number): Node {
    const queue = {
      type: "kafka",
      options: {
        brokers: BROKERS,
        topicPrefix: PREFIX,
        clientId: `hub-${id}`,
        sessionTimeoutMs: 10_000,
        heartbeatIntervalMs: 1_000,
      },
    };
    const child = spawn(process.execPath, ["--import", "tsx", "test/support/scale-out-node.ts"], {
      env: {
        ...process.env,
        HUB_PROFILE: "stack",
        HUB_NODE_ID: `${id}-${RUN}`,
        HUB_ROLES: roles,
        HUB_TRANSPORTER: NATS,
        HUB_DATA_DIR: `${tmp.dir}/${id}`,
        HUB_QUEUE: JSON.stringify(queue),
        ...(store ? { HUB_STORE: store } : {}),
        ...(port !== undefined ? { HUB_PORT: String(port) } : {}),
        HUB_LOG_LEVEL: "warn",
        HUB_ADMIN_TOKEN: ADMIN,
        HUB_QUOTA_RATE: "1000000",
        HUB_QUOTA_BURST: "1000000",
        HUB_RECONCILE_INTERVAL_MS: "0",
        HUB_PLUGINS: JSON.stringify({ "scaleout-effects": { url: PG_URL, table: TABLE } }),
        HUB_TEST_SCALEOUT_RUN: RUN,
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const node = { id, child };
    nodes.push(node);
    return node;
  }

  async function members(): Promise<Map<string, number[]>> {
    const { groups } = await admin!.describeGroups([GROUP]);
    const out = new Map<string, number[]>();
    for (const m of groups[0]?.members ?? []) {
      const decoded = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      const partitions = Object.values(decoded?.assignment ?? {}).flat();
      out.set(
        m.clientId.replace(/^hub-/, ""),
        partitions.sort((a, b) => a - b),
      );
    }
    return out;
  }

  async function deliveredBy(node: string): Promise<number> {
    const r = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${TABLE}_deliveries WHERE node = $1`, [
      `${node}-${RUN}`,
    ]);
    return Number(r.rows[0]?.n ?? 0);
  }

  after(async () => {
    for (const node of nodes) {
      if (node.child.exitCode !== null || node.child.signalCode !== null) continue;
      node.child.kill("SIGTERM");
      const timer = setTimeout(() => node.child.kill("SIGKILL"), 30_000);
      await once(node.child, "exit");
      clearTimeout(timer);
    }
    if (admin) {
      const topics = (await admin.listTopics()).filter((t) => t.startsWith(PREFIX));
      await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.deleteGroups([GROUP]).catch(() => undefined);
      await admin.disconnect();
    }
    await pool.query(`DROP TABLE IF EXISTS ${TABLE}_effects, ${TABLE}_deliveries`).catch(() => undefined);
    await pool.end();
    tmp.cleanup();
  });

  it("loses nothing and applies nothing twice when a consumer node is killed, and rebalances onto an added node", async (t) => {
    admin = kafka.admin();
    await admin.connect();
    await createEffectTables(pool, TABLE);
    t.diagnostic(`store: ${store ?? "hbase"}; queue: kafka ${BROKERS.join(",")}; transporter: ${NATS}`);

    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    startNode("ingest", "ingestion,control", port);
    const c1 = startNode("c1", "consumer");
    startNode("c2", "consumer");
    await eventually(
      async () => {
        try {
          return (await fetch(`${base}/health/ready`)).ok ? true : undefined;
        } catch {
          return undefined;
        }
      },
      90_000,
      "ingestion node ready",
    );
    const initial = await eventually(
      async () => {
        const m = await members().catch(() => new Map<string, number[]>());
        return m.size === 2 && [...m.values()].every((p) => p.length > 0) ? m : undefined;
      },
      90_000,
      "two consumer nodes in the group",
    );
    t.diagnostic(`assignment: ${[...initial].map(([n, p]) => `${n}=[${p.join(",")}]`).join(" ")}`);

    const tenant = await fetch(`${base}/api/v1/admin/tenants`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: `scaleout-${RUN}` }),
    });
    assert.equal(tenant.status, 201);
    const { apiKey } = (await tenant.json()) as { apiKey: string };
    const headers = { authorization: `Bearer ${apiKey}`, "content-type": "application/json" };

    const acked = new Set<string>();
    let refused = 0;
    let stop = false;
    const deadline = Date.now() + 240_000;
    const sender = async (worker: number): Promise<void> => {
      for (let round = 0; round < 100_000 && !stop && Date.now() < deadline; round++) {
        const batch = Array.from({ length: 100 }, (_, i) => ({
          leadId: `lead-${worker}-${i % 25}`,
          type: "visit_web_page",
          attributes: { url: `https://example.com/${worker}/${round}/${i}` },
        }));
        let res: Response;
        try {
          res = await fetch(`${base}/api/v1/activities`, { method: "POST", headers, body: JSON.stringify(batch) });
        } catch {
          refused++;
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        if (res.status === 202) for (const id of ((await res.json()) as { ids: string[] }).ids) acked.add(id);
        else {
          refused++;
          await res.text();
        }
      }
    };
    const senders = Array.from({ length: 4 }, (_, w) => sender(w));
    t.after(async () => {
      stop = true;
      await Promise.allSettled(senders);
    });

    // Phase 1: load on two consumers; kill -9 one of them once it has applied a good share.
    await eventually(
      async () => (acked.size >= 4_000 && (await deliveredBy("c1")) >= 500 ? true : undefined),
      120_000,
      "c1 consuming under load",
    );
    c1.child.kill("SIGKILL");
    await once(c1.child, "exit");
    const killedAt = acked.size;
    t.diagnostic(`kill -9 c1 after ${killedAt} acknowledged activities (c1 had ${await deliveredBy("c1")} deliveries)`);

    // Phase 2: load continues; add a third consumer node, which must get partitions.
    await eventually(() => (acked.size >= killedAt + 3_000 ? true : undefined), 120_000, "load after the kill");
    startNode("c3", "consumer");
    const assignment = await eventually(
      async () => {
        const m = await members().catch(() => new Map<string, number[]>());
        const c3 = m.get("c3") ?? [];
        return m.size === 2 && !m.has("c1") && c3.length > 0 ? m : undefined;
      },
      90_000,
      "c3 assigned partitions, c1 gone from the group",
    ).catch(async (error: unknown) => {
      const m = await members().catch((e: unknown) => String(e));
      throw new Error(`${String(error)}; group: ${JSON.stringify(m instanceof Map ? [...m] : m)}`);
    });
    t.diagnostic(`assignment after adding c3: ${[...assignment].map(([n, p]) => `${n}=[${p.join(",")}]`).join(" ")}`);
    await eventually(
      async () => (acked.size >= killedAt + 6_000 && (await deliveredBy("c3")) > 0 ? true : undefined),
      120_000,
      "c3 consuming under load",
    );
    stop = true;
    await Promise.all(senders);

    // Every acknowledged activity applied exactly once.
    const missing = await eventually(
      async () => {
        const r = await pool.query<{ activity_id: string }>(`SELECT activity_id FROM ${TABLE}_effects`);
        const applied = new Set(r.rows.map((row) => row.activity_id));
        const lost = [...acked].filter((id) => !applied.has(id));
        return lost.length === 0 ? lost : undefined;
      },
      180_000,
      "every acknowledged activity applied",
    ).catch(async (error: unknown) => {
      const r = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${TABLE}_effects`);
      throw new Error(`${String(error)}; applied ${r.rows[0]?.n} of ${acked.size} acknowledged`);
    });
    assert.deepEqual(missing, []);

    const stats = await pool.query<{ node: string; deliveries: string; applied: string; redelivered: string }>(
      `SELECT node, count(*) AS deliveries, count(*) FILTER (WHERE applied) AS applied,
              count(*) FILTER (WHERE NOT applied) AS redelivered
         FROM ${TABLE}_deliveries GROUP BY node ORDER BY node`,
    );
    const totals = await pool.query<{ effects: string; distinct_ids: string; deliveries: string; twice: string }>(
      `SELECT (SELECT count(*) FROM ${TABLE}_effects) AS effects,
              (SELECT count(DISTINCT activity_id) FROM ${TABLE}_deliveries) AS distinct_ids,
              (SELECT count(*) FROM ${TABLE}_deliveries) AS deliveries,
              (SELECT count(*) FROM (SELECT activity_id FROM ${TABLE}_deliveries WHERE applied
                 GROUP BY activity_id HAVING count(*) > 1) x) AS twice`,
    );
    const total = totals.rows[0]!;
    for (const row of stats.rows) {
      t.diagnostic(
        `${row.node.replace(`-${RUN}`, "")}: ${row.deliveries} deliveries, ${row.applied} applied, ${row.redelivered} redeliveries deduplicated`,
      );
    }
    t.diagnostic(
      `acknowledged ${acked.size} (refused ${refused} requests), effects ${total.effects}, deliveries ${total.deliveries}, ` +
        `redeliveries ${Number(total.deliveries) - Number(total.distinct_ids)}`,
    );
    assert.equal(Number(total.twice), 0, "an activity was applied twice");
    assert.equal(Number(total.effects), Number(total.distinct_ids));
    assert.ok(Number(total.effects) >= acked.size);
    assert.ok((await deliveredBy("c3")) > 0, "the added node received activities");
  });
});
