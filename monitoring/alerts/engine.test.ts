import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ServiceBroker } from "moleculer";
import { SMTPServer } from "smtp-server";
import { EmbeddedMetricsSink } from "../sinks/embedded";
import { AlertEngine } from "./engine";
import { createNotifier, type AlertNotification } from "./notify";
import { AlertStore } from "./store";

describe("alert engine", () => {
  const dir = mkdtempSync(join(tmpdir(), "alerts-"));
  const sink = new EmbeddedMetricsSink({ dataDir: dir });
  let store: AlertStore;
  let engine: AlertEngine;
  let webhook: Server;
  let webhookUrl: string;
  const received: AlertNotification[] = [];
  let smtp: SMTPServer;
  let smtpPort: number;
  const mails: string[] = [];
  const logger = new ServiceBroker({ logger: false }).getLogger("test");
  const t0 = Date.now();

  before(async () => {
    await sink.start();
    store = new AlertStore(dir);
    webhook = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        received.push(JSON.parse(body) as AlertNotification);
        res.end("ok");
      });
    });
    await new Promise<void>((r) => webhook.listen(0, "127.0.0.1", r));
    webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`;
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      onData(stream, _session, done) {
        let text = "";
        stream.on("data", (c: Buffer) => (text += c.toString()));
        stream.on("end", () => {
          mails.push(text);
          done();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, "127.0.0.1", r));
    smtpPort = (smtp.server.address() as AddressInfo).port;
    engine = new AlertEngine(
      store,
      sink,
      createNotifier({ host: "127.0.0.1", port: smtpPort, secure: false, from: "alerts@hub.test" }),
      { carryMs: 60_000, logger },
    );
  });

  after(async () => {
    store.close();
    await sink.stop();
    await new Promise((r) => webhook.close(r));
    await new Promise<void>((r) => smtp.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it("moves a breach through pending to firing, notifies once per group, and resolves", async () => {
    engine.createRule(
      {
        kind: "threshold",
        name: "Lag high",
        query: { metric: "hub.queue.lag.seconds", groupBy: ["group"], aggregator: "max", windowMs: 5000 },
        op: ">",
        value: 10,
        forMs: 5000,
        severity: "critical",
        notify: { webhooks: [webhookUrl], emails: ["oncall@hub.test"] },
      },
      "test",
      "lag-high",
    );
    await sink.write([
      { metric: "hub.queue.lag.seconds", timestamp: t0 - 1000, value: 20, tags: { host: "h", group: "a" } },
      { metric: "hub.queue.lag.seconds", timestamp: t0 - 1000, value: 30, tags: { host: "h", group: "b" } },
      { metric: "hub.queue.lag.seconds", timestamp: t0 - 1000, value: 1, tags: { host: "h", group: "c" } },
    ]);
    await engine.evaluate(t0);
    assert.deepEqual(
      engine.board().map((a) => [a.labels.group, a.state]),
      [
        ["a", "pending"],
        ["b", "pending"],
      ],
    );
    await engine.evaluate(t0 + 5000);
    await engine.drainNotifications();
    assert.deepEqual(
      engine.board().map((a) => a.state),
      ["firing", "firing"],
    );
    assert.equal(received.length, 1, "one notification for the group");
    assert.equal(received[0]!.status, "firing");
    assert.equal(received[0]!.alerts.length, 2);
    assert.equal(mails.length, 1);
    assert.match(mails[0]!, /FIRING:2/);

    await sink.write([
      { metric: "hub.queue.lag.seconds", timestamp: t0 + 9000, value: 0, tags: { host: "h", group: "a" } },
    ]);
    await engine.evaluate(t0 + 10_000);
    await engine.drainNotifications();
    assert.deepEqual(
      engine.board().map((a) => a.labels.group),
      ["b"],
    );
    assert.equal(received[1]!.status, "resolved");
    const events = engine.history({ limit: 50, ruleId: "lag-high" }).map((e) => e.event);
    for (const e of ["pending", "firing", "resolved", "notified"]) assert.ok(events.includes(e), e);
  });

  it("keeps acknowledgements with a comment and applies silences", async () => {
    const [alert] = engine.board();
    const acked = engine.acknowledge(alert!.id, "alice", "restarting the consumer");
    assert.deepEqual(
      { by: acked.ack!.by, comment: acked.ack!.comment },
      { by: "alice", comment: "restarting the consumer" },
    );
    engine.silence({ ruleId: "lag-high", durationMs: 3_600_000, comment: "noisy" }, "alice");
    const before = received.length;
    await sink.write([
      { metric: "hub.queue.lag.seconds", timestamp: t0 + 11_000, value: 50, tags: { host: "h", group: "d" } },
    ]);
    await engine.evaluate(t0 + 12_000);
    await engine.evaluate(t0 + 18_000);
    await engine.drainNotifications();
    const d = engine.board().find((a) => a.labels.group === "d")!;
    assert.equal(d.state, "firing");
    assert.ok(d.silencedBy !== undefined);
    assert.equal(received.length, before, "silenced alerts do not notify");
    assert.equal(engine.board().find((a) => a.labels.group === "b")!.ack?.comment, "restarting the consumer");
  });

  it("fires on absence of data and on a burning error budget", async () => {
    engine.createRule(
      {
        kind: "absence",
        name: "No intake",
        query: { metric: "hub.never.written" },
        absentForMs: 60_000,
        severity: "warning",
      },
      "test",
      "no-intake",
    );
    const points = [];
    for (let i = 0; i <= 10; i++) {
      points.push({ metric: "req.total", timestamp: t0 - 600_000 + i * 60_000, value: i * 1000, tags: { host: "h" } });
      points.push({ metric: "req.errors", timestamp: t0 - 600_000 + i * 60_000, value: i * 100, tags: { host: "h" } });
    }
    await sink.write(points);
    engine.createRule(
      {
        kind: "burn_rate",
        name: "Budget",
        errors: { metric: "req.errors", aggregator: "sum" },
        total: { metric: "req.total", aggregator: "sum" },
        objective: 0.99,
        longWindowMs: 600_000,
        shortWindowMs: 120_000,
        factor: 5,
        severity: "critical",
      },
      "test",
      "budget",
    );
    await engine.evaluate(t0 + 20_000);
    const board = engine.board();
    assert.ok(board.some((a) => a.ruleId === "no-intake" && a.state === "firing"));
    const budget = board.find((a) => a.ruleId === "budget")!;
    assert.equal(budget.state, "firing");
    assert.ok(Math.abs(budget.value! - 10) < 0.01, `burn ${budget.value}`);
  });

  it("validates rules with field-level errors", () => {
    assert.throws(
      () =>
        engine.createRule(
          { kind: "threshold", name: "x", query: { metric: "bad metric!" }, op: "!", value: 1 },
          "test",
        ),
      (e: { details?: Array<{ field: string }> }) => {
        const fields = (e.details ?? []).map((d) => d.field);
        return fields.includes("query.metric") && fields.includes("op");
      },
    );
  });
});
