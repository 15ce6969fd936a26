import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { ActivityTypeDefinition } from "../activity/types";
import { builtInType } from "../activity/types";
import { ConflictError, NotFoundError, ValidationError } from "../errors";
import { openSqlite, type SqliteDatabase } from "../sqlite";
import { hashesEqual, hashSecret, issueKey, parseKey, SCOPES, type KeyKind, type Scope } from "./keys";

export interface Quota {
  /** Sustained activities per second. */
  rate: number;
  /** Bucket size: the largest burst accepted at once. */
  burst: number;
}

export interface Tenant {
  id: string;
  name: string;
  createdAt: string;
  quota: Quota;
  settings: TenantSettings;
}

export interface TenantSettings {
  /** Drop the last octet (IPv4) or last 80 bits (IPv6) of visitor IPs before storing them. */
  anonymizeIp?: boolean;
}

/** Who a request acts for, once its credentials are checked. Never contains the secret. */
export interface Principal {
  tenantId: string;
  keyId: string;
  kind: KeyKind;
  scopes: Scope[];
  quota: Quota;
  settings: TenantSettings;
}

export interface KeyInfo {
  keyId: string;
  kind: KeyKind;
  name: string;
  scopes: Scope[];
  createdAt: string;
  revokedAt?: string;
}

export interface AuditEntry {
  at: string;
  actor: string;
  tenantId: string | null;
  action: string;
  detail: Record<string, unknown>;
}

interface TenantRow {
  id: string;
  name: string;
  created_at: string;
  quota_rate: number;
  quota_burst: number;
  settings: string;
}

const TENANT_NAME = /^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,99}$/u;

/**
 * Tenants, their API/write keys (stored hashed, shown once), custom activity types and the
 * audit log of administrative actions, in SQLite (`meta.db`). The `tenancy` service is its only
 * writer inside a hub; the admin CLI opens the same file.
 */
export class TenantDirectory {
  private readonly db: SqliteDatabase;

  constructor(
    dataDir: string,
    private readonly defaultQuota: Quota,
  ) {
    this.db = openSqlite(join(dataDir, "meta.db"));
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS tenants (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
        quota_rate REAL NOT NULL, quota_burst REAL NOT NULL, settings TEXT NOT NULL DEFAULT '{}',
        deleted_at TEXT
      );
      CREATE TABLE IF NOT EXISTS api_keys (
        key_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), kind TEXT NOT NULL,
        hash TEXT NOT NULL, name TEXT NOT NULL, scopes TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT
      );
      CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys (tenant_id);
      CREATE TABLE IF NOT EXISTS activity_types (
        tenant_id TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, name)
      );
      CREATE TABLE IF NOT EXISTS audit_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, tenant_id TEXT,
        action TEXT NOT NULL, detail TEXT NOT NULL
      );
    `);
  }

  close(): void {
    this.db.close();
  }

  createTenant(
    name: string,
    actor: string,
    quota?: Partial<Quota>,
  ): { tenant: Tenant; apiKey: string; writeKey: string } {
    if (typeof name !== "string" || !TENANT_NAME.test(name)) {
      throw new ValidationError("Invalid tenant name", [
        { field: "name", code: "invalid_format", message: "must be 1-100 letters, digits, spaces, '.', '_' or '-'" },
      ]);
    }
    const rate = quota?.rate ?? this.defaultQuota.rate;
    const burst = quota?.burst ?? this.defaultQuota.burst;
    this.checkQuota({ rate, burst });
    const id = `tn_${randomBytes(8).toString("hex")}`;
    const createdAt = new Date().toISOString();
    const apiKey = issueKey("api");
    const writeKey = issueKey("write");
    this.db.transaction(() => {
      if (this.db.prepare("SELECT 1 FROM tenants WHERE name = ?").get(name) !== undefined) {
        throw new ConflictError(`A tenant named '${name}' exists`, "tenant_exists");
      }
      this.db
        .prepare("INSERT INTO tenants (id, name, created_at, quota_rate, quota_burst) VALUES (?, ?, ?, ?, ?)")
        .run(id, name, createdAt, rate, burst);
      this.insertKey(id, apiKey.keyId, "api", apiKey.hash, "default", [...SCOPES], createdAt);
      this.insertKey(id, writeKey.keyId, "write", writeKey.hash, "default write key", ["ingest"], createdAt);
      this.audit(actor, id, "tenant.create", { name });
    })();
    return { tenant: this.getTenant(id), apiKey: apiKey.key, writeKey: writeKey.key };
  }

  getTenant(id: string): Tenant {
    const row = this.db.prepare("SELECT * FROM tenants WHERE id = ? AND deleted_at IS NULL").get(id) as
      TenantRow | undefined;
    if (!row) throw new NotFoundError(`No tenant '${id}'`, "tenant_not_found");
    return this.toTenant(row);
  }

  listTenants(): Tenant[] {
    return (
      this.db.prepare("SELECT * FROM tenants WHERE deleted_at IS NULL ORDER BY created_at").all() as TenantRow[]
    ).map((r) => this.toTenant(r));
  }

  updateTenant(id: string, actor: string, patch: { quota?: Partial<Quota>; settings?: TenantSettings }): Tenant {
    const tenant = this.getTenant(id);
    const quota = { ...tenant.quota, ...patch.quota };
    this.checkQuota(quota);
    const settings = { ...tenant.settings, ...patch.settings };
    this.db.transaction(() => {
      this.db
        .prepare("UPDATE tenants SET quota_rate = ?, quota_burst = ?, settings = ? WHERE id = ?")
        .run(quota.rate, quota.burst, JSON.stringify(settings), id);
      this.audit(actor, id, "tenant.update", { quota, settings });
    })();
    return this.getTenant(id);
  }

  /** Deletes a tenant: revokes every key so nothing can reach its data any more. */
  deleteTenant(id: string, actor: string): void {
    this.getTenant(id);
    const now = new Date().toISOString();
    this.db.transaction(() => {
      this.db.prepare("UPDATE tenants SET deleted_at = ? WHERE id = ?").run(now, id);
      this.db.prepare("UPDATE api_keys SET revoked_at = ? WHERE tenant_id = ? AND revoked_at IS NULL").run(now, id);
      this.audit(actor, id, "tenant.delete", {});
    })();
  }

  createKey(
    tenantId: string,
    actor: string,
    kind: KeyKind,
    name: string,
    scopes: Scope[],
  ): { key: string; info: KeyInfo } {
    this.getTenant(tenantId);
    const invalid = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
    if (scopes.length === 0 || invalid.length > 0) {
      throw new ValidationError("Invalid scopes", [
        { field: "scopes", code: "invalid_value", message: `must be a non-empty subset of ${SCOPES.join(", ")}` },
      ]);
    }
    if (kind === "write" && scopes.some((s) => s !== "ingest")) {
      throw new ValidationError("Write keys only ingest", [
        { field: "scopes", code: "invalid_value", message: "write keys have the ingest scope only" },
      ]);
    }
    const issued = issueKey(kind);
    const createdAt = new Date().toISOString();
    this.db.transaction(() => {
      this.insertKey(tenantId, issued.keyId, kind, issued.hash, name.slice(0, 100), scopes, createdAt);
      this.audit(actor, tenantId, "key.create", { keyId: issued.keyId, kind, scopes });
    })();
    return { key: issued.key, info: { keyId: issued.keyId, kind, name, scopes, createdAt } };
  }

  listKeys(tenantId: string): KeyInfo[] {
    const rows = this.db
      .prepare(
        "SELECT key_id, kind, name, scopes, created_at, revoked_at FROM api_keys WHERE tenant_id = ? ORDER BY created_at",
      )
      .all(tenantId) as Array<{
      key_id: string;
      kind: KeyKind;
      name: string;
      scopes: string;
      created_at: string;
      revoked_at: string | null;
    }>;
    return rows.map((r) => ({
      keyId: r.key_id,
      kind: r.kind,
      name: r.name,
      scopes: JSON.parse(r.scopes) as Scope[],
      createdAt: r.created_at,
      ...(r.revoked_at ? { revokedAt: r.revoked_at } : {}),
    }));
  }

  revokeKey(tenantId: string, keyId: string, actor: string): void {
    const result = this.db
      .prepare("UPDATE api_keys SET revoked_at = ? WHERE tenant_id = ? AND key_id = ? AND revoked_at IS NULL")
      .run(new Date().toISOString(), tenantId, keyId);
    if (result.changes === 0) throw new NotFoundError(`No active key '${keyId}'`, "key_not_found");
    this.audit(actor, tenantId, "key.revoke", { keyId });
  }

  /** Checks a presented key; undefined when unknown, revoked, of the wrong kind, or wrong. */
  authenticate(presented: string, kind: KeyKind): Principal | undefined {
    const parsed = parseKey(presented);
    if (!parsed || parsed.kind !== kind) return undefined;
    const row = this.db
      .prepare(
        `SELECT k.tenant_id, k.hash, k.scopes, t.quota_rate, t.quota_burst, t.settings FROM api_keys k
         JOIN tenants t ON t.id = k.tenant_id
         WHERE k.key_id = ? AND k.kind = ? AND k.revoked_at IS NULL AND t.deleted_at IS NULL`,
      )
      .get(parsed.keyId, kind) as
      | { tenant_id: string; hash: string; scopes: string; quota_rate: number; quota_burst: number; settings: string }
      | undefined;
    if (!row) return undefined;
    if (!hashesEqual(row.hash, hashSecret(parsed.secret))) return undefined;
    return {
      tenantId: row.tenant_id,
      keyId: parsed.keyId,
      kind,
      scopes: JSON.parse(row.scopes) as Scope[],
      quota: { rate: row.quota_rate, burst: row.quota_burst },
      settings: JSON.parse(row.settings) as TenantSettings,
    };
  }

  defineType(
    tenantId: string,
    actor: string,
    definition: ActivityTypeDefinition,
    mode: "create" | "replace",
  ): ActivityTypeDefinition {
    this.getTenant(tenantId);
    if (builtInType(definition.name)) {
      throw new ConflictError(`'${definition.name}' is a built-in activity type`, "type_is_built_in");
    }
    const exists =
      this.db
        .prepare("SELECT 1 FROM activity_types WHERE tenant_id = ? AND name = ?")
        .get(tenantId, definition.name) !== undefined;
    if (mode === "create" && exists)
      throw new ConflictError(`Activity type '${definition.name}' exists`, "type_exists");
    if (mode === "replace" && !exists)
      throw new NotFoundError(`No activity type '${definition.name}'`, "type_not_found");
    this.db.transaction(() => {
      this.db
        .prepare(
          "INSERT INTO activity_types (tenant_id, name, definition, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at",
        )
        .run(tenantId, definition.name, JSON.stringify(definition), new Date().toISOString());
      this.audit(actor, tenantId, mode === "create" ? "type.create" : "type.update", { name: definition.name });
    })();
    return definition;
  }

  listTypes(tenantId: string): ActivityTypeDefinition[] {
    return (
      this.db
        .prepare("SELECT definition FROM activity_types WHERE tenant_id = ? ORDER BY name")
        .pluck()
        .all(tenantId) as string[]
    ).map((d) => JSON.parse(d) as ActivityTypeDefinition);
  }

  deleteType(tenantId: string, name: string, actor: string): void {
    const result = this.db.prepare("DELETE FROM activity_types WHERE tenant_id = ? AND name = ?").run(tenantId, name);
    if (result.changes === 0) throw new NotFoundError(`No activity type '${name}'`, "type_not_found");
    this.audit(actor, tenantId, "type.delete", { name });
  }

  auditLog(tenantId: string | undefined, limit = 100): AuditEntry[] {
    const rows = (
      tenantId === undefined
        ? this.db.prepare("SELECT * FROM audit_log ORDER BY seq DESC LIMIT ?").all(limit)
        : this.db.prepare("SELECT * FROM audit_log WHERE tenant_id = ? ORDER BY seq DESC LIMIT ?").all(tenantId, limit)
    ) as Array<{ at: string; actor: string; tenant_id: string | null; action: string; detail: string }>;
    return rows.map((r) => ({
      at: r.at,
      actor: r.actor,
      tenantId: r.tenant_id,
      action: r.action,
      detail: JSON.parse(r.detail) as Record<string, unknown>,
    }));
  }

  private insertKey(
    tenantId: string,
    keyId: string,
    kind: KeyKind,
    hash: string,
    name: string,
    scopes: Scope[],
    createdAt: string,
  ): void {
    this.db
      .prepare(
        "INSERT INTO api_keys (key_id, tenant_id, kind, hash, name, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run(keyId, tenantId, kind, hash, name, JSON.stringify(scopes), createdAt);
  }

  private audit(actor: string, tenantId: string | null, action: string, detail: Record<string, unknown>): void {
    this.db
      .prepare("INSERT INTO audit_log (at, actor, tenant_id, action, detail) VALUES (?, ?, ?, ?, ?)")
      .run(new Date().toISOString(), actor, tenantId, action, JSON.stringify(detail));
  }

  private checkQuota(quota: Quota): void {
    const errors = [];
    if (!(Number.isFinite(quota.rate) && quota.rate > 0))
      errors.push({ field: "quota.rate", code: "invalid_value", message: "must be a positive number" });
    if (!(Number.isFinite(quota.burst) && quota.burst >= 1))
      errors.push({ field: "quota.burst", code: "invalid_value", message: "must be at least 1" });
    if (errors.length > 0) throw new ValidationError("Invalid quota", errors);
  }

  private toTenant(row: TenantRow): Tenant {
    return {
      id: row.id,
      name: row.name,
      createdAt: row.created_at,
      quota: { rate: row.quota_rate, burst: row.quota_burst },
      settings: JSON.parse(row.settings) as TenantSettings,
    };
  }
}
