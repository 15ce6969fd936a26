import type { ConnectorInstanceConfig } from "./config";

/** Encrypted credential blobs, keyed by connector instance. The vault is the only writer. */
export interface SecretBlobStore {
  putSecretBlob(instanceId: string, blob: string): Promise<void>;
  getSecretBlob(instanceId: string): Promise<string | undefined>;
  deleteSecretBlob(instanceId: string): Promise<void>;
}

export type RunDirection = "inbound" | "outbound";
export type RunStatus = "running" | "succeeded" | "partial" | "failed" | "skipped";

/** Counters of one run (what the admin sees as "counts"). */
export interface RunCounts {
  read: number;
  emitted: number;
  deleted: number;
  written: number;
  failed: number;
  skipped: number;
  apiCalls: number;
}

/** One sync run, kept as history. Never contains secrets (errors are redacted before). */
export interface RunRecord {
  readonly runId: string;
  readonly instanceId: string;
  readonly tenantId: string;
  readonly direction: RunDirection;
  status: RunStatus;
  readonly startedAt: string;
  finishedAt?: string;
  counts: RunCounts;
  /** Records written per API path (bulk, batch, collection, single). */
  paths: Record<string, number>;
  error?: { code: string; message: string };
}

/** Link between a CRM record and a hub lead, with the CRM modification time last seen inbound. */
export interface LeadLink {
  readonly object: string;
  readonly crmId: string;
  readonly leadId: string;
  readonly crmModifiedAt: string;
}

/** A record the CRM refused for good (bad value, missing field…), kept for the admin. */
export interface DeadLetter {
  readonly key: string;
  readonly kind: string;
  readonly code: string;
  readonly message: string;
  readonly at: string;
}

/**
 * Persistence of the connector layer: configs, watermarks, run locks, run history, lead links,
 * dead letters and encrypted credentials. Watermark commits are atomic with their side data so a
 * crash between two pages resumes exactly.
 */
export interface ConnectorStateStore extends SecretBlobStore {
  saveConfig(config: ConnectorInstanceConfig): Promise<void>;
  getConfig(instanceId: string): Promise<ConnectorInstanceConfig | undefined>;
  listConfigs(tenantId?: string): Promise<ConnectorInstanceConfig[]>;
  deleteConfig(instanceId: string): Promise<void>;

  getWatermark(instanceId: string, stream: string): Promise<string | undefined>;
  /** Stores the inbound watermark of `stream` and the lead links of the page, atomically. */
  commitInbound(instanceId: string, stream: string, cursor: string, links: readonly LeadLink[]): Promise<void>;
  /** Stores the outbound position, the push times of written leads and dead letters, atomically. */
  commitOutbound(
    instanceId: string,
    position: string,
    pushed: readonly { leadId: string; pushedAt: string }[],
    deadLetters: readonly DeadLetter[],
  ): Promise<void>;
  /** Hub lead ids of CRM records seen before (for deletions, which carry no fields). */
  leadIdsFor(instanceId: string, object: string, crmIds: readonly string[]): Promise<Map<string, string>>;
  /** Last CRM modification seen inbound and last hub push, per lead. */
  leadSyncTimes(
    instanceId: string,
    leadIds: readonly string[],
  ): Promise<Map<string, { crmModifiedAt?: string; pushedAt?: string }>>;
  listDeadLetters(instanceId: string, limit: number): Promise<DeadLetter[]>;

  /** Takes the run lock unless another live owner holds it; expired locks are taken over. */
  acquireLock(instanceId: string, owner: string, ttlMs: number): Promise<boolean>;
  renewLock(instanceId: string, owner: string, ttlMs: number): Promise<boolean>;
  releaseLock(instanceId: string, owner: string): Promise<void>;

  saveRun(run: RunRecord): Promise<void>;
  /** Newest first. */
  listRuns(instanceId: string, limit: number): Promise<RunRecord[]>;
}

/** In-memory store for tests and single-process trials; same contract as the SQLite store. */
export class MemoryStateStore implements ConnectorStateStore {
  private readonly configs = new Map<string, ConnectorInstanceConfig>();
  private readonly watermarks = new Map<string, string>();
  private readonly links = new Map<string, LeadLink>();
  private readonly crmSeen = new Map<string, string>();
  private readonly pushed = new Map<string, string>();
  private readonly deadLetters = new Map<string, DeadLetter[]>();
  private readonly locks = new Map<string, { owner: string; expiresAt: number }>();
  private readonly runs = new Map<string, RunRecord[]>();
  private readonly blobs = new Map<string, string>();

  async saveConfig(config: ConnectorInstanceConfig): Promise<void> {
    this.configs.set(config.instanceId, structuredClone(config));
  }

  async getConfig(instanceId: string): Promise<ConnectorInstanceConfig | undefined> {
    const config = this.configs.get(instanceId);
    return config ? structuredClone(config) : undefined;
  }

  async listConfigs(tenantId?: string): Promise<ConnectorInstanceConfig[]> {
    return [...this.configs.values()]
      .filter((c) => tenantId === undefined || c.tenantId === tenantId)
      .map((c) => structuredClone(c));
  }

  async deleteConfig(instanceId: string): Promise<void> {
    this.configs.delete(instanceId);
  }

  async getWatermark(instanceId: string, stream: string): Promise<string | undefined> {
    return this.watermarks.get(`${instanceId}\u0000${stream}`);
  }

  async commitInbound(instanceId: string, stream: string, cursor: string, links: readonly LeadLink[]): Promise<void> {
    for (const link of links) {
      this.links.set(`${instanceId}\u0000${link.object}\u0000${link.crmId}`, link);
      const key = `${instanceId}\u0000${link.leadId}`;
      const seen = this.crmSeen.get(key);
      if (!seen || seen < link.crmModifiedAt) this.crmSeen.set(key, link.crmModifiedAt);
    }
    this.watermarks.set(`${instanceId}\u0000${stream}`, cursor);
  }

  async commitOutbound(
    instanceId: string,
    position: string,
    pushed: readonly { leadId: string; pushedAt: string }[],
    deadLetters: readonly DeadLetter[],
  ): Promise<void> {
    for (const entry of pushed) this.pushed.set(`${instanceId}\u0000${entry.leadId}`, entry.pushedAt);
    if (deadLetters.length > 0)
      this.deadLetters.set(instanceId, [...(this.deadLetters.get(instanceId) ?? []), ...deadLetters]);
    this.watermarks.set(`${instanceId}\u0000out`, position);
  }

  async leadIdsFor(instanceId: string, object: string, crmIds: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const crmId of crmIds) {
      const link = this.links.get(`${instanceId}\u0000${object}\u0000${crmId}`);
      if (link) out.set(crmId, link.leadId);
    }
    return out;
  }

  async leadSyncTimes(
    instanceId: string,
    leadIds: readonly string[],
  ): Promise<Map<string, { crmModifiedAt?: string; pushedAt?: string }>> {
    const out = new Map<string, { crmModifiedAt?: string; pushedAt?: string }>();
    for (const leadId of leadIds) {
      const crmModifiedAt = this.crmSeen.get(`${instanceId}\u0000${leadId}`);
      const pushedAt = this.pushed.get(`${instanceId}\u0000${leadId}`);
      if (crmModifiedAt !== undefined || pushedAt !== undefined) out.set(leadId, { crmModifiedAt, pushedAt });
    }
    return out;
  }

  async listDeadLetters(instanceId: string, limit: number): Promise<DeadLetter[]> {
    return (this.deadLetters.get(instanceId) ?? []).slice(-limit).reverse();
  }

  async acquireLock(instanceId: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const lock = this.locks.get(instanceId);
    if (lock && lock.owner !== owner && lock.expiresAt > now) return false;
    this.locks.set(instanceId, { owner, expiresAt: now + ttlMs });
    return true;
  }

  async renewLock(instanceId: string, owner: string, ttlMs: number): Promise<boolean> {
    const lock = this.locks.get(instanceId);
    if (!lock || lock.owner !== owner) return false;
    lock.expiresAt = Date.now() + ttlMs;
    return true;
  }

  async releaseLock(instanceId: string, owner: string): Promise<void> {
    if (this.locks.get(instanceId)?.owner === owner) this.locks.delete(instanceId);
  }

  async saveRun(run: RunRecord): Promise<void> {
    const list = this.runs.get(run.instanceId) ?? [];
    const index = list.findIndex((r) => r.runId === run.runId);
    if (index >= 0) list[index] = structuredClone(run);
    else list.push(structuredClone(run));
    if (list.length > 500) list.splice(0, list.length - 500);
    this.runs.set(run.instanceId, list);
  }

  async listRuns(instanceId: string, limit: number): Promise<RunRecord[]> {
    return (this.runs.get(instanceId) ?? [])
      .slice(-limit)
      .reverse()
      .map((r) => structuredClone(r));
  }

  async putSecretBlob(instanceId: string, blob: string): Promise<void> {
    this.blobs.set(instanceId, blob);
  }

  async getSecretBlob(instanceId: string): Promise<string | undefined> {
    return this.blobs.get(instanceId);
  }

  async deleteSecretBlob(instanceId: string): Promise<void> {
    this.blobs.delete(instanceId);
  }
}
