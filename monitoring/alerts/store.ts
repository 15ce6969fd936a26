import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { openSqlite, type SqliteDatabase } from "../../core/sqlite";
import type { Rule, RuleSpec, Severity } from "./rules";

export type AlertState = "pending" | "firing" | "resolved";

export interface Alert {
  id: string;
  ruleId: string;
  ruleName: string;
  /** The judged series within the rule (canonical tags). */
  key: string;
  labels: Record<string, string>;
  severity: Severity;
  state: AlertState;
  value: number | null;
  startedAt: string;
  firingAt?: string;
  resolvedAt?: string;
  lastEvaluatedAt: string;
  ack?: { by: string; comment: string; at: string };
  /** Set when a silence matches at the last evaluation. */
  silencedBy?: string;
}

export interface Silence {
  id: string;
  /** Silences one rule's alerts, or (without it) every alert matching `matchers`. */
  ruleId?: string;
  matchers: Record<string, string>;
  startsAt: string;
  endsAt: string;
  comment: string;
  createdBy: string;
}

export interface AlertEvent {
  id: number;
  at: string;
  alertId: string | null;
  ruleId: string | null;
  /** `pending`, `firing`, `resolved`, `cleared`, `acknowledged`, `silenced`, `rule_*`, `notified`, `notify_failed`. */
  event: string;
  detail: Record<string, unknown>;
}

interface AlertRow {
  id: string;
  rule_id: string;
  rule_name: string;
  key: string;
  labels: string;
  severity: Severity;
  state: AlertState;
  value: number | null;
  started_at: string;
  firing_at: string | null;
  resolved_at: string | null;
  last_evaluated_at: string;
  ack_by: string | null;
  ack_comment: string | null;
  ack_at: string | null;
  silenced_by: string | null;
}

const MAX_EVENTS = 100_000;

/** Rules, alerts, silences and the history of the alert engine, in `alerts.db` under the data dir. */
export class AlertStore {
  private readonly db: SqliteDatabase;

  constructor(dataDir: string) {
    this.db = openSqlite(join(dataDir, "alerts.db"));
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS rules (id TEXT PRIMARY KEY, spec TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS alerts (
        id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, rule_name TEXT NOT NULL, key TEXT NOT NULL, labels TEXT NOT NULL,
        severity TEXT NOT NULL, state TEXT NOT NULL, value REAL, started_at TEXT NOT NULL, firing_at TEXT, resolved_at TEXT,
        last_evaluated_at TEXT NOT NULL, ack_by TEXT, ack_comment TEXT, ack_at TEXT, silenced_by TEXT
      );
      CREATE INDEX IF NOT EXISTS alerts_active ON alerts (state, rule_id, key);
      CREATE TABLE IF NOT EXISTS silences (
        id TEXT PRIMARY KEY, rule_id TEXT, matchers TEXT NOT NULL, starts_at TEXT NOT NULL, ends_at TEXT NOT NULL,
        comment TEXT NOT NULL, created_by TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, alert_id TEXT, rule_id TEXT, event TEXT NOT NULL, detail TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS events_rule ON events (rule_id, id);
    `);
  }

  close(): void {
    this.db.close();
  }

  // --- rules ---

  listRules(): Rule[] {
    return (
      this.db.prepare("SELECT * FROM rules ORDER BY id").all() as Array<{
        id: string;
        spec: string;
        created_at: string;
        updated_at: string;
      }>
    ).map((r) => ({
      ...(JSON.parse(r.spec) as RuleSpec),
      id: r.id,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
  }

  getRule(id: string): Rule | undefined {
    return this.listRules().find((r) => r.id === id);
  }

  putRule(id: string, spec: RuleSpec, now = new Date().toISOString()): Rule {
    const existing = this.db.prepare("SELECT created_at FROM rules WHERE id = ?").get(id) as
      { created_at: string } | undefined;
    this.db
      .prepare(
        "INSERT INTO rules (id, spec, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
      )
      .run(id, JSON.stringify(spec), existing?.created_at ?? now, now);
    return { ...spec, id, createdAt: existing?.created_at ?? now, updatedAt: now };
  }

  deleteRule(id: string): boolean {
    return this.db.prepare("DELETE FROM rules WHERE id = ?").run(id).changes > 0;
  }

  // --- alerts ---

  activeAlerts(): Alert[] {
    return (this.db.prepare("SELECT * FROM alerts WHERE state IN ('pending', 'firing')").all() as AlertRow[]).map(
      toAlert,
    );
  }

  recentAlerts(limit: number): Alert[] {
    return (this.db.prepare("SELECT * FROM alerts ORDER BY started_at DESC LIMIT ?").all(limit) as AlertRow[]).map(
      toAlert,
    );
  }

  getAlert(id: string): Alert | undefined {
    const row = this.db.prepare("SELECT * FROM alerts WHERE id = ?").get(id) as AlertRow | undefined;
    return row ? toAlert(row) : undefined;
  }

  saveAlert(alert: Alert): void {
    this.db
      .prepare(
        `INSERT INTO alerts (id, rule_id, rule_name, key, labels, severity, state, value, started_at, firing_at, resolved_at, last_evaluated_at, ack_by, ack_comment, ack_at, silenced_by)
         VALUES (@id, @rule_id, @rule_name, @key, @labels, @severity, @state, @value, @started_at, @firing_at, @resolved_at, @last_evaluated_at, @ack_by, @ack_comment, @ack_at, @silenced_by)
         ON CONFLICT (id) DO UPDATE SET rule_name = excluded.rule_name, labels = excluded.labels, severity = excluded.severity, state = excluded.state,
           value = excluded.value, firing_at = excluded.firing_at, resolved_at = excluded.resolved_at, last_evaluated_at = excluded.last_evaluated_at,
           ack_by = excluded.ack_by, ack_comment = excluded.ack_comment, ack_at = excluded.ack_at, silenced_by = excluded.silenced_by`,
      )
      .run({
        id: alert.id,
        rule_id: alert.ruleId,
        rule_name: alert.ruleName,
        key: alert.key,
        labels: JSON.stringify(alert.labels),
        severity: alert.severity,
        state: alert.state,
        value: alert.value,
        started_at: alert.startedAt,
        firing_at: alert.firingAt ?? null,
        resolved_at: alert.resolvedAt ?? null,
        last_evaluated_at: alert.lastEvaluatedAt,
        ack_by: alert.ack?.by ?? null,
        ack_comment: alert.ack?.comment ?? null,
        ack_at: alert.ack?.at ?? null,
        silenced_by: alert.silencedBy ?? null,
      });
  }

  deleteAlert(id: string): void {
    this.db.prepare("DELETE FROM alerts WHERE id = ?").run(id);
  }

  // --- silences ---

  listSilences(now = new Date().toISOString()): Silence[] {
    return (
      this.db.prepare("SELECT * FROM silences WHERE ends_at > ? ORDER BY ends_at").all(now) as Array<{
        id: string;
        rule_id: string | null;
        matchers: string;
        starts_at: string;
        ends_at: string;
        comment: string;
        created_by: string;
      }>
    ).map((r) => ({
      id: r.id,
      ...(r.rule_id !== null ? { ruleId: r.rule_id } : {}),
      matchers: JSON.parse(r.matchers) as Record<string, string>,
      startsAt: r.starts_at,
      endsAt: r.ends_at,
      comment: r.comment,
      createdBy: r.created_by,
    }));
  }

  addSilence(silence: Omit<Silence, "id">): Silence {
    const stored = { ...silence, id: randomUUID() };
    this.db
      .prepare(
        "INSERT INTO silences (id, rule_id, matchers, starts_at, ends_at, comment, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run(
        stored.id,
        stored.ruleId ?? null,
        JSON.stringify(stored.matchers),
        stored.startsAt,
        stored.endsAt,
        stored.comment,
        stored.createdBy,
      );
    return stored;
  }

  expireSilence(id: string, now = new Date().toISOString()): boolean {
    return (
      this.db.prepare("UPDATE silences SET ends_at = ? WHERE id = ? AND ends_at > ?").run(now, id, now).changes > 0
    );
  }

  // --- history ---

  record(
    event: string,
    detail: Record<string, unknown>,
    alertId: string | null,
    ruleId: string | null,
    at = new Date().toISOString(),
  ): void {
    this.db
      .prepare("INSERT INTO events (at, alert_id, rule_id, event, detail) VALUES (?, ?, ?, ?, ?)")
      .run(at, alertId, ruleId, event, JSON.stringify(detail));
  }

  history(options: { limit: number; ruleId?: string; alertId?: string; before?: number }): AlertEvent[] {
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (options.ruleId !== undefined) {
      where.push("rule_id = ?");
      args.push(options.ruleId);
    }
    if (options.alertId !== undefined) {
      where.push("alert_id = ?");
      args.push(options.alertId);
    }
    if (options.before !== undefined) {
      where.push("id < ?");
      args.push(options.before);
    }
    const rows = this.db
      .prepare(`SELECT * FROM events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`)
      .all(...args, options.limit) as Array<{
      id: number;
      at: string;
      alert_id: string | null;
      rule_id: string | null;
      event: string;
      detail: string;
    }>;
    return rows.map((r) => ({
      id: r.id,
      at: r.at,
      alertId: r.alert_id,
      ruleId: r.rule_id,
      event: r.event,
      detail: JSON.parse(r.detail) as Record<string, unknown>,
    }));
  }

  /** Keeps the history and resolved alerts bounded. */
  prune(): void {
    this.db.prepare("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?").run(MAX_EVENTS);
    this.db
      .prepare(
        "DELETE FROM alerts WHERE state = 'resolved' AND rowid NOT IN (SELECT rowid FROM alerts WHERE state = 'resolved' ORDER BY resolved_at DESC LIMIT 10000)",
      )
      .run();
  }
}

function toAlert(r: AlertRow): Alert {
  return {
    id: r.id,
    ruleId: r.rule_id,
    ruleName: r.rule_name,
    key: r.key,
    labels: JSON.parse(r.labels) as Record<string, string>,
    severity: r.severity,
    state: r.state,
    value: r.value,
    startedAt: r.started_at,
    ...(r.firing_at !== null ? { firingAt: r.firing_at } : {}),
    ...(r.resolved_at !== null ? { resolvedAt: r.resolved_at } : {}),
    lastEvaluatedAt: r.last_evaluated_at,
    ...(r.ack_by !== null ? { ack: { by: r.ack_by, comment: r.ack_comment ?? "", at: r.ack_at ?? "" } } : {}),
    ...(r.silenced_by !== null ? { silencedBy: r.silenced_by } : {}),
  };
}
