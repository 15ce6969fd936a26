import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { ConnectorInstanceConfig } from "./config";
import { ownerIsDeadLocalProcess } from "./lock-owner";
import type { ConnectorStateStore, DeadLetter, LeadLink, RunRecord } from "./state-store";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS connector_configs (instance_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS connector_configs_tenant ON connector_configs (tenant_id);
CREATE TABLE IF NOT EXISTS connector_watermarks (instance_id TEXT NOT NULL, stream TEXT NOT NULL, cursor TEXT NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (instance_id, stream));
CREATE TABLE IF NOT EXISTS connector_links (instance_id TEXT NOT NULL, object TEXT NOT NULL, crm_id TEXT NOT NULL, lead_id TEXT NOT NULL, PRIMARY KEY (instance_id, object, crm_id));
CREATE TABLE IF NOT EXISTS connector_lead_times (instance_id TEXT NOT NULL, lead_id TEXT NOT NULL, crm_modified_at TEXT, pushed_at TEXT, PRIMARY KEY (instance_id, lead_id));
CREATE TABLE IF NOT EXISTS connector_dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS connector_dead_letters_instance ON connector_dead_letters (instance_id, id);
CREATE TABLE IF NOT EXISTS connector_locks (instance_id TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS connector_runs (run_id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, started_at TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS connector_runs_instance ON connector_runs (instance_id, started_at);
CREATE TABLE IF NOT EXISTS connector_secrets (instance_id TEXT PRIMARY KEY, blob TEXT NOT NULL);
`;

function parseJson<T>(text: string, guard: (value: unknown) => value is T): T | undefined {
  const value: unknown = JSON.parse(text);
  return guard(value) ? value : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function isConfig(value: unknown): value is ConnectorInstanceConfig {
  return (
    isObject(value) &&
    typeof value.instanceId === "string" &&
    typeof value.tenantId === "string" &&
    typeof value.connector === "string"
  );
}

function isRun(value: unknown): value is RunRecord {
  return isObject(value) && typeof value.runId === "string" && typeof value.instanceId === "string";
}

function isDeadLetter(value: unknown): value is DeadLetter {
  return isObject(value) && typeof value.key === "string" && typeof value.code === "string";
}

/**
 * Durable `ConnectorStateStore` on SQLite (WAL, synchronous=FULL): every commit is fsynced
 * before it returns, so a watermark acknowledged here survives `kill -9`.
 */
export class SqliteStateStore implements ConnectorStateStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  async saveConfig(config: ConnectorInstanceConfig): Promise<void> {
    this.db
      .prepare(
        "INSERT INTO connector_configs (instance_id, tenant_id, body) VALUES (?, ?, ?) ON CONFLICT(instance_id) DO UPDATE SET tenant_id = excluded.tenant_id, body = excluded.body",
      )
      .run(config.instanceId, config.tenantId, JSON.stringify(config));
  }

  async getConfig(instanceId: string): Promise<ConnectorInstanceConfig | undefined> {
    const row = this.db
      .prepare<[string], { body: string }>("SELECT body FROM connector_configs WHERE instance_id = ?")
      .get(instanceId);
    return row ? parseJson(row.body, isConfig) : undefined;
  }

  async listConfigs(tenantId?: string): Promise<ConnectorInstanceConfig[]> {
    const rows =
      tenantId === undefined
        ? this.db.prepare<[], { body: string }>("SELECT body FROM connector_configs ORDER BY instance_id").all()
        : this.db
            .prepare<[string], { body: string }>(
              "SELECT body FROM connector_configs WHERE tenant_id = ? ORDER BY instance_id",
            )
            .all(tenantId);
    return rows.flatMap((row) => parseJson(row.body, isConfig) ?? []);
  }

  async deleteConfig(instanceId: string): Promise<void> {
    this.db.prepare("DELETE FROM connector_configs WHERE instance_id = ?").run(instanceId);
  }

  async getWatermark(instanceId: string, stream: string): Promise<string | undefined> {
    const row = this.db
      .prepare<[string, string], { cursor: string }>(
        "SELECT cursor FROM connector_watermarks WHERE instance_id = ? AND stream = ?",
      )
      .get(instanceId, stream);
    return row?.cursor;
  }

  private setWatermark(instanceId: string, stream: string, cursor: string): void {
    this.db
      .prepare(
        "INSERT INTO connector_watermarks (instance_id, stream, cursor, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(instance_id, stream) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
      )
      .run(instanceId, stream, cursor, Date.now());
  }

  async commitInbound(instanceId: string, stream: string, cursor: string, links: readonly LeadLink[]): Promise<void> {
    const link = this.db.prepare(
      "INSERT INTO connector_links (instance_id, object, crm_id, lead_id) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET lead_id = excluded.lead_id",
    );
    const seen = this.db.prepare(
      "INSERT INTO connector_lead_times (instance_id, lead_id, crm_modified_at) VALUES (?, ?, ?) ON CONFLICT(instance_id, lead_id) DO UPDATE SET crm_modified_at = max(coalesce(crm_modified_at, ''), excluded.crm_modified_at)",
    );
    this.db.transaction(() => {
      for (const entry of links) {
        link.run(instanceId, entry.object, entry.crmId, entry.leadId);
        seen.run(instanceId, entry.leadId, entry.crmModifiedAt);
      }
      this.setWatermark(instanceId, stream, cursor);
    })();
  }

  async commitOutbound(
    instanceId: string,
    position: string,
    pushed: readonly { leadId: string; pushedAt: string }[],
    deadLetters: readonly DeadLetter[],
  ): Promise<void> {
    const push = this.db.prepare(
      "INSERT INTO connector_lead_times (instance_id, lead_id, pushed_at) VALUES (?, ?, ?) ON CONFLICT(instance_id, lead_id) DO UPDATE SET pushed_at = excluded.pushed_at",
    );
    const dead = this.db.prepare("INSERT INTO connector_dead_letters (instance_id, body) VALUES (?, ?)");
    this.db.transaction(() => {
      for (const entry of pushed) push.run(instanceId, entry.leadId, entry.pushedAt);
      for (const letter of deadLetters) dead.run(instanceId, JSON.stringify(letter));
      this.setWatermark(instanceId, "out", position);
    })();
  }

  async leadIdsFor(instanceId: string, object: string, crmIds: readonly string[]): Promise<Map<string, string>> {
    const get = this.db.prepare<[string, string, string], { lead_id: string }>(
      "SELECT lead_id FROM connector_links WHERE instance_id = ? AND object = ? AND crm_id = ?",
    );
    const out = new Map<string, string>();
    for (const crmId of crmIds) {
      const row = get.get(instanceId, object, crmId);
      if (row) out.set(crmId, row.lead_id);
    }
    return out;
  }

  async leadSyncTimes(
    instanceId: string,
    leadIds: readonly string[],
  ): Promise<Map<string, { crmModifiedAt?: string; pushedAt?: string }>> {
    const get = this.db.prepare<[string, string], { crm_modified_at: string | null; pushed_at: string | null }>(
      "SELECT crm_modified_at, pushed_at FROM connector_lead_times WHERE instance_id = ? AND lead_id = ?",
    );
    const out = new Map<string, { crmModifiedAt?: string; pushedAt?: string }>();
    for (const leadId of leadIds) {
      const row = get.get(instanceId, leadId);
      if (row)
        out.set(leadId, { crmModifiedAt: row.crm_modified_at ?? undefined, pushedAt: row.pushed_at ?? undefined });
    }
    return out;
  }

  async listDeadLetters(instanceId: string, limit: number): Promise<DeadLetter[]> {
    return this.db
      .prepare<[string, number], { body: string }>(
        "SELECT body FROM connector_dead_letters WHERE instance_id = ? ORDER BY id DESC LIMIT ?",
      )
      .all(instanceId, limit)
      .flatMap((row) => parseJson(row.body, isDeadLetter) ?? []);
  }

  async acquireLock(instanceId: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    return this.db
      .transaction(() => {
        const row = this.db
          .prepare<[string], { owner: string; expires_at: number }>(
            "SELECT owner, expires_at FROM connector_locks WHERE instance_id = ?",
          )
          .get(instanceId);
        if (row && row.owner !== owner && row.expires_at > now && !ownerIsDeadLocalProcess(row.owner)) return false;
        this.db
          .prepare(
            "INSERT INTO connector_locks (instance_id, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT(instance_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
          )
          .run(instanceId, owner, now + ttlMs);
        return true;
      })
      .immediate();
  }

  async renewLock(instanceId: string, owner: string, ttlMs: number): Promise<boolean> {
    const result = this.db
      .prepare("UPDATE connector_locks SET expires_at = ? WHERE instance_id = ? AND owner = ?")
      .run(Date.now() + ttlMs, instanceId, owner);
    return result.changes === 1;
  }

  async releaseLock(instanceId: string, owner: string): Promise<void> {
    this.db.prepare("DELETE FROM connector_locks WHERE instance_id = ? AND owner = ?").run(instanceId, owner);
  }

  async saveRun(run: RunRecord): Promise<void> {
    this.db
      .prepare(
        "INSERT INTO connector_runs (run_id, instance_id, started_at, body) VALUES (?, ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET body = excluded.body",
      )
      .run(run.runId, run.instanceId, run.startedAt, JSON.stringify(run));
  }

  async listRuns(instanceId: string, limit: number): Promise<RunRecord[]> {
    return this.db
      .prepare<[string, number], { body: string }>(
        "SELECT body FROM connector_runs WHERE instance_id = ? ORDER BY started_at DESC, rowid DESC LIMIT ?",
      )
      .all(instanceId, limit)
      .flatMap((row) => parseJson(row.body, isRun) ?? []);
  }

  async putSecretBlob(instanceId: string, blob: string): Promise<void> {
    this.db
      .prepare(
        "INSERT INTO connector_secrets (instance_id, blob) VALUES (?, ?) ON CONFLICT(instance_id) DO UPDATE SET blob = excluded.blob",
      )
      .run(instanceId, blob);
  }

  async getSecretBlob(instanceId: string): Promise<string | undefined> {
    return this.db
      .prepare<[string], { blob: string }>("SELECT blob FROM connector_secrets WHERE instance_id = ?")
      .get(instanceId)?.blob;
  }

  async deleteSecretBlob(instanceId: string): Promise<void> {
    this.db.prepare("DELETE FROM connector_secrets WHERE instance_id = ?").run(instanceId);
  }
}
