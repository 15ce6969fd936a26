/**
 * Integration test of the local stack: brings it up (reusing running servers) and makes one real
 * request round trip against each server. It leaves the stack running; `tsx stack/cli.ts down`
 * stops it.
 *
 *   node --import tsx --test stack/stack.integration.test.ts
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Kafka, logLevel, Partitioners } from "kafkajs";

import {
  HBASE_REST_URL,
  KAFKA_BROKERS,
  OPENTSDB_TABLES,
  OPENTSDB_URL,
  SERVER_NAMES,
  SOLR_URL,
  kafkaMetadata,
  stackStatus,
  stackUp,
  type ServerStatus,
} from "./index";

const run = promisify(execFile);
const suffix = `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: string) => Buffer.from(s, "base64").toString("utf8");

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ""}`);
}

describe("local stack", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    // first run on a fresh machine downloads the servers with Maven: allow for it
    await stackUp([], { log: (l) => console.error(`[stack] ${l}`) });
  });

  test("kafka: metadata probe, then produce and consume one message with kafkajs", { timeout: 120_000 }, async () => {
    const md = await kafkaMetadata();
    assert.ok(md.brokers.length >= 1);
    assert.ok(md.controllerId >= 0);

    const kafka = new Kafka({ clientId: "hub-stack-test", brokers: [...KAFKA_BROKERS], logLevel: logLevel.ERROR });
    const topic = `hub-stack-test-${suffix}`;
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const value = JSON.stringify({ id: `act-${suffix}`, tenantId: "t-stack", type: "visit_web_page" });
    try {
      await producer.send({ topic, acks: -1, messages: [{ key: "lead-1", value }] });
    } finally {
      await producer.disconnect();
    }

    const consumer = kafka.consumer({ groupId: `hub-stack-test-${suffix}` });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      const received = new Promise<string>((resolve, reject) => {
        consumer.run({ eachMessage: async ({ message }) => resolve(message.value?.toString() ?? "") }).catch(reject);
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no message within 60 s")), 60_000);
      });
      try {
        assert.equal(await Promise.race([received, timeout]), value);
      } finally {
        clearTimeout(timer);
      }
    } finally {
      await consumer.disconnect();
      const cleanup = kafka.admin();
      await cleanup.connect();
      await cleanup.deleteTopics({ topics: [topic] }).catch(() => {});
      await cleanup.disconnect();
    }
  });

  test("hbase: create a table, put and get a row through the REST gateway", { timeout: 120_000 }, async () => {
    const version = await fetch(`${HBASE_REST_URL}/version/cluster`, { headers: { Accept: "application/json" } });
    assert.equal(version.status, 200);
    assert.match(JSON.stringify(await version.json()), /2\.6\./);

    const table = `hub_stack_test_${suffix}`;
    const json = { "Content-Type": "application/json", Accept: "application/json" };
    const created = await fetch(`${HBASE_REST_URL}/${table}/schema`, {
      method: "PUT",
      headers: json,
      body: JSON.stringify({ name: table, ColumnSchema: [{ name: "a", VERSIONS: "1" }] }),
    });
    assert.ok([200, 201].includes(created.status), `create table: HTTP ${created.status}`);
    try {
      const row = `t1|lead-1|${suffix}`;
      const put = await fetch(`${HBASE_REST_URL}/${table}/${encodeURIComponent(row)}`, {
        method: "PUT",
        headers: json,
        body: JSON.stringify({ Row: [{ key: b64(row), Cell: [{ column: b64("a:type"), $: b64("visit_web_page") }] }] }),
      });
      assert.equal(put.status, 200, `put: HTTP ${put.status}`);
      const get = await fetch(`${HBASE_REST_URL}/${table}/${encodeURIComponent(row)}`, { headers: json });
      assert.equal(get.status, 200);
      const body = (await get.json()) as { Row: { key: string; Cell: { column: string; $: string }[] }[] };
      assert.equal(unb64(body.Row[0].key), row);
      assert.equal(unb64(body.Row[0].Cell[0].column), "a:type");
      assert.equal(unb64(body.Row[0].Cell[0].$), "visit_web_page");
    } finally {
      await fetch(`${HBASE_REST_URL}/${table}/schema`, { method: "DELETE" });
    }

    // OpenTSDB's tables were created by `up`
    for (const t of Object.keys(OPENTSDB_TABLES)) {
      const r = await fetch(`${HBASE_REST_URL}/${t}/schema`, { headers: { Accept: "application/json" } });
      assert.equal(r.status, 200, `table ${t}`);
      await r.arrayBuffer();
    }
  });

  test("solr: index and query an activity in the activities core", { timeout: 60_000 }, async () => {
    const id = `act-${suffix}`;
    const doc = {
      id,
      tenantId: "t-stack",
      leadId: "lead-1",
      type: "fill_out_form",
      source: "web",
      occurredAt: "2026-01-02T03:04:05Z",
      receivedAt: new Date().toISOString(),
      campaignId: "c-1",
      formName_s: "Contact us",
      fields_i: 4,
      comment_txt: "Interested in the enterprise plan",
    };
    const upd = await fetch(`${SOLR_URL}/activities/update?commit=true`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify([doc]),
    });
    assert.equal(upd.status, 200, await upd.text());
    try {
      const q = new URLSearchParams({ q: "enterprise", fq: `tenantId:t-stack AND id:"${id}"`, wt: "json" });
      const res = await fetch(`${SOLR_URL}/activities/select?${q}`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { response: { numFound: number; docs: Record<string, unknown>[] } };
      assert.equal(body.response.numFound, 1);
      assert.equal(body.response.docs[0].type, "fill_out_form");
      assert.equal(body.response.docs[0].fields_i, 4);

      const ping = await fetch(`${SOLR_URL}/leads/admin/ping?wt=json`);
      assert.equal(((await ping.json()) as { status: string }).status, "OK");
    } finally {
      await fetch(`${SOLR_URL}/activities/update?commit=true`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ delete: { id } }),
      });
    }
  });

  test("opentsdb: put a data point and query it back", { timeout: 60_000 }, async () => {
    const version = (await (await fetch(`${OPENTSDB_URL}/api/version`)).json()) as { version: string };
    assert.ok(version.version);
    const metric = `hub.stack.test.${suffix}`;
    const ts = Math.floor(Date.now() / 1000);
    const put = await fetch(`${OPENTSDB_URL}/api/put?details`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify([{ metric, timestamp: ts, value: 42, tags: { tenant: "t-stack" } }]),
    });
    const putBody = (await put.json()) as { success: number; failed: number };
    assert.equal(put.status, 200, JSON.stringify(putBody));
    assert.equal(putBody.success, 1);
    const dps = await eventually("query", async () => {
      const r = await fetch(`${OPENTSDB_URL}/api/query?start=${ts - 60}&m=sum:${metric}{tenant=t-stack}`);
      if (r.status !== 200) return undefined;
      const body = (await r.json()) as { dps: Record<string, number> }[];
      return body.length > 0 && Object.keys(body[0].dps).length > 0 ? body[0].dps : undefined;
    });
    assert.equal(dps[String(ts)], 42);
  });

  test(
    "status --json lists every server as up (started here, or an answering server it reuses)",
    { timeout: 60_000 },
    async () => {
      const cli = path.join(__dirname, "cli.ts");
      const { stdout } = await run(process.execPath, ["--import", "tsx", cli, "status", "--json"], {
        cwd: path.join(__dirname, ".."),
        timeout: 50_000,
      });
      const status = JSON.parse(stdout) as ServerStatus[];
      assert.deepEqual(
        status.map((s) => s.name),
        [...SERVER_NAMES],
      );
      for (const s of status) {
        assert.ok(s.state === "running" || s.state === "external", `${s.name} is ${s.state}`);
        if (s.state === "running") assert.ok(s.pid && s.pid > 0, `${s.name} pid`);
        assert.ok(Object.values(s.ports).every((p) => Number.isInteger(p)));
      }
      const direct = await stackStatus();
      assert.deepEqual(
        direct.map((s) => [s.name, s.state, s.pid]),
        status.map((s) => [s.name, s.state, s.pid]),
      );
    },
  );
});
