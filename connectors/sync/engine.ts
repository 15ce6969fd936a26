import { randomUUID } from "node:crypto";
import {
  optionString,
  type ActivityWrite,
  type ChangePage,
  type ConnectionTest,
  type ConnectorDefinition,
  type ConnectorLogger,
  type Credentials,
  type CrmSession,
  type FieldValue,
  type LeadWrite,
  type ScoreWrite,
  type WriteOutcome,
  type WriteResult,
  validateCredentials,
} from "../contract";
import { ConnectorError } from "../errors";
import { resolveConnector } from "../registry";
import { redact, redactText } from "../shared/redact";
import {
  crmActivityId,
  type CrmSyncActivity,
  type HubActivity,
  type OutboundItem,
  type OutboundSource,
} from "./activity";
import { BudgetRegistry, DEFAULT_BUDGETS } from "./budget";
import { validateInstanceConfig, type ConnectorInstanceConfig } from "./config";
import { resolveConflict } from "./conflict";
import { inboundFields, mapInbound, mapOutbound } from "./mapping";
import { lockOwnerId } from "./lock-owner";
import type { ConnectorStateStore, DeadLetter, LeadLink, RunDirection, RunRecord } from "./state-store";
import type { CredentialsView, CredentialVault } from "./vault";

/** Dependencies of the sync engine; persistence and delivery are the caller's. */
export interface SyncEngineDeps {
  readonly store: ConnectorStateStore;
  readonly vault: CredentialVault;
  /** Receives inbound CRM sync activities; must be durable when it resolves (ids dedupe redelivery). */
  readonly emit: (activities: readonly CrmSyncActivity[]) => Promise<void>;
  /** Times of hub-side lead changes not yet pushed to the CRM (for the conflict rule inbound). */
  readonly pendingHubChanges?: (tenantId: string, leadIds: readonly string[]) => Promise<Map<string, string>>;
  /** Shared per-CRM-endpoint budgets (fair share between tenants). */
  readonly budgets?: BudgetRegistry;
  readonly logger?: ConnectorLogger;
  /** Run lock lifetime; renewed every third of it while a run is alive. */
  readonly lockTtlMs?: number;
  /** Resolves connectors (tests may inject); defaults to the shipped registry. */
  readonly resolve?: (id: string) => ConnectorDefinition;
}

/** Options of a single run. */
export interface RunOptions {
  readonly signal?: AbortSignal;
  /** Outbound: stream of hub items; the run is inbound-only without it. */
  readonly source?: OutboundSource;
  readonly directions?: readonly RunDirection[];
}

/** Status as an admin sees it: config, credentials (secrets masked), last runs, dead letters. */
export interface ConnectorStatus {
  readonly config: ConnectorInstanceConfig;
  readonly credentials?: CredentialsView;
  readonly lastRuns: readonly RunRecord[];
  readonly deadLetters: readonly DeadLetter[];
}

const RETRY_ROUNDS = 3;

function newRun(config: ConnectorInstanceConfig, direction: RunDirection): RunRecord {
  return {
    runId: randomUUID(),
    instanceId: config.instanceId,
    tenantId: config.tenantId,
    direction,
    status: "running",
    startedAt: new Date().toISOString(),
    counts: { read: 0, emitted: 0, deleted: 0, written: 0, failed: 0, skipped: 0, apiCalls: 0 },
    paths: {},
  };
}

function describeActivity(activity: HubActivity): { subject: string; description: string } {
  const attributes = activity.attributes ?? {};
  const detail = ["url", "subject", "name", "campaignName", "formName"]
    .map((key) => attributes[key])
    .find((v) => typeof v === "string");
  return {
    subject: typeof detail === "string" ? `${activity.type}: ${detail}` : activity.type,
    description: JSON.stringify({
      id: activity.id,
      type: activity.type,
      occurredAt: activity.occurredAt,
      attributes,
    }).slice(0, 2000),
  };
}

/**
 * The sync engine: runs inbound (CRM → hub activities) and outbound (hub → CRM) syncs of one
 * configured connector at a time per instance (run lock), resumable from stored watermarks.
 */
export class SyncEngine {
  private readonly resolve: (id: string) => ConnectorDefinition;
  private readonly budgets: BudgetRegistry;
  private readonly lockTtlMs: number;

  constructor(private readonly deps: SyncEngineDeps) {
    this.resolve = deps.resolve ?? resolveConnector;
    this.budgets = deps.budgets ?? new BudgetRegistry(DEFAULT_BUDGETS);
    this.lockTtlMs = deps.lockTtlMs ?? 60_000;
  }

  /** Validates and saves a config, and (when given) its credentials, encrypted. */
  async configure(config: ConnectorInstanceConfig, credentials?: Credentials): Promise<void> {
    const connector = this.resolve(config.connector);
    const { problems } = validateInstanceConfig(config, connector.manifest);
    if (credentials) problems.push(...validateCredentials(connector.manifest, credentials));
    if (problems.length > 0) {
      throw new ConnectorError(
        "connector_mapping_invalid",
        `invalid connector config: ${problems.map((p) => `${p.field} ${p.message}`).join("; ")}`,
      );
    }
    if (credentials) await this.deps.vault.store(config, credentials);
    await this.deps.store.saveConfig(config);
  }

  async status(instanceId: string, history = 20): Promise<ConnectorStatus> {
    const config = await this.config(instanceId);
    const manifest = this.resolve(config.connector).manifest;
    return {
      config,
      credentials: await this.deps.vault.view(config, manifest),
      lastRuns: await this.deps.store.listRuns(instanceId, history),
      deadLetters: await this.deps.store.listDeadLetters(instanceId, 50),
    };
  }

  /** Authenticates and checks that every mapped field still exists in the CRM. */
  async testConnection(instanceId: string): Promise<ConnectionTest> {
    const config = await this.config(instanceId);
    const connector = this.resolve(config.connector);
    const { session, secrets } = await this.open(config, undefined);
    try {
      const fields: Record<string, string[]> = {};
      for (const mapping of config.mappings) (fields[mapping.object] ??= []).push(mapping.crmField);
      for (const [object, field] of Object.entries(config.inbound.leadIdFields ?? {}))
        (fields[object] ??= []).push(field);
      if (config.outbound.leads || config.outbound.scores) {
        const leadObject = connector.manifest.leads.object;
        (fields[leadObject] ??= []).push(optionString(this.options(config), connector.manifest.leads.keyOption));
      }
      for (const object of Object.keys(fields)) fields[object] = [...new Set(fields[object])];
      const result = await session.test(fields);
      return result.message ? { ...result, message: redactText(result.message, secrets) } : result;
    } finally {
      await session.close();
    }
  }

  /**
   * Runs a sync now: inbound, then outbound when a source is given. Returns one record per
   * direction; `skipped` when another run of this instance holds the lock.
   */
  async run(instanceId: string, options: RunOptions = {}): Promise<RunRecord[]> {
    const config = await this.config(instanceId);
    const directions = options.directions ?? (options.source ? ["inbound", "outbound"] : ["inbound"]);
    const owner = lockOwnerId(randomUUID());
    if (!(await this.deps.store.acquireLock(instanceId, owner, this.lockTtlMs))) {
      const skipped = directions.map((direction) => ({
        ...newRun(config, direction),
        status: "skipped" as const,
        finishedAt: new Date().toISOString(),
      }));
      for (const run of skipped) await this.deps.store.saveRun(run);
      return skipped;
    }
    const abort = new AbortController();
    const onOuterAbort = (): void => abort.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", onOuterAbort, { once: true });
    const heartbeat = setInterval(
      () => {
        this.deps.store.renewLock(instanceId, owner, this.lockTtlMs).then(
          (held) => {
            if (!held) abort.abort(new ConnectorError("connector_run_locked", "run lock lost"));
          },
          () => undefined,
        );
      },
      Math.max(50, Math.floor(this.lockTtlMs / 3)),
    );
    heartbeat.unref();
    const runs: RunRecord[] = [];
    try {
      for (const direction of directions) {
        if (direction === "inbound" && config.inbound.objects.length > 0)
          runs.push(await this.runInbound(config, abort.signal));
        if (direction === "outbound" && options.source)
          runs.push(await this.runOutbound(config, options.source, abort.signal));
      }
      return runs;
    } finally {
      clearInterval(heartbeat);
      options.signal?.removeEventListener("abort", onOuterAbort);
      await this.deps.store.releaseLock(instanceId, owner);
    }
  }

  // ------------------------------------------------------------------ internals

  private async config(instanceId: string): Promise<ConnectorInstanceConfig> {
    const config = await this.deps.store.getConfig(instanceId);
    if (!config) throw new ConnectorError("connector_unknown", `no connector configured with id ${instanceId}`);
    return config;
  }

  private options(config: ConnectorInstanceConfig): Readonly<Record<string, string | number | boolean>> {
    const { options } = validateInstanceConfig(config, this.resolve(config.connector).manifest);
    if (!options) throw new ConnectorError("connector_config_invalid", `options of ${config.instanceId} are invalid`);
    return options;
  }

  private async open(
    config: ConnectorInstanceConfig,
    signal: AbortSignal | undefined,
  ): Promise<{ session: CrmSession; secrets: string[] }> {
    const connector = this.resolve(config.connector);
    const credentials = await this.deps.vault.load(config);
    const secretNames = new Set(
      connector.manifest.credentials
        .find((m) => m.mode === credentials.mode)
        ?.fields.filter((f) => f.secret)
        .map((f) => f.name),
    );
    const secrets = Object.entries(credentials.values)
      .filter(([name]) => secretNames.has(name))
      .map(([, value]) => value);
    const endpoint = credentials.values.environmentUrl ?? credentials.values.loginUrl ?? config.instanceId;
    const budget = this.budgets.for(config.connector, endpoint);
    const logger = this.deps.logger;
    const safeLogger: ConnectorLogger | undefined = logger && {
      info: (message, fields) =>
        logger.info(redactText(message, secrets), fields && this.redactFields(fields, secrets)),
      warn: (message, fields) =>
        logger.warn(redactText(message, secrets), fields && this.redactFields(fields, secrets)),
      error: (message, fields) =>
        logger.error(redactText(message, secrets), fields && this.redactFields(fields, secrets)),
    };
    const session = await connector.openSession(
      { tenantId: config.tenantId, instanceId: config.instanceId, credentials, options: this.options(config) },
      { gate: budget.gate(config.tenantId), logger: safeLogger, signal },
    );
    return { session, secrets };
  }

  private redactFields(fields: Record<string, unknown>, secrets: readonly string[]): Record<string, unknown> {
    const out = redact(fields, secrets);
    return typeof out === "object" && out !== null && !Array.isArray(out)
      ? Object.fromEntries(Object.entries(out))
      : {};
  }

  private async finish(
    run: RunRecord,
    session: CrmSession | undefined,
    error: unknown,
    secrets: readonly string[],
  ): Promise<RunRecord> {
    run.finishedAt = new Date().toISOString();
    run.counts.apiCalls = session?.usage().calls ?? 0;
    if (error !== undefined) {
      run.status = "failed";
      const code = error instanceof ConnectorError ? error.code : "connector_vendor_error";
      run.error = { code, message: redactText(error instanceof Error ? error.message : String(error), secrets) };
      this.deps.logger?.error("connector run failed", {
        instanceId: run.instanceId,
        direction: run.direction,
        code,
        message: run.error.message,
      });
    } else run.status = run.counts.failed > 0 ? "partial" : "succeeded";
    await this.deps.store.saveRun(run);
    return run;
  }

  private async runInbound(config: ConnectorInstanceConfig, signal: AbortSignal): Promise<RunRecord> {
    const run = newRun(config, "inbound");
    await this.deps.store.saveRun(run);
    let session: CrmSession | undefined;
    let secrets: string[] = [];
    try {
      ({ session, secrets } = await this.open(config, signal));
      for (const object of config.inbound.objects) {
        const leadIdField = config.inbound.leadIdFields?.[object];
        const fields = [...new Set([...inboundFields(config.mappings, object), ...(leadIdField ? [leadIdField] : [])])];
        const stream = `in:${object}`;
        const cursor = await this.deps.store.getWatermark(config.instanceId, stream);
        for await (const page of session.readChanges(object, fields, cursor)) {
          signal.throwIfAborted();
          const { activities, links } = await this.toActivities(config, object, leadIdField, page);
          if (activities.length > 0) await this.deps.emit(activities);
          await this.deps.store.commitInbound(config.instanceId, stream, page.cursor, links);
          run.counts.read += page.records.length;
          run.counts.deleted += page.deletions.length;
          run.counts.emitted += activities.length;
        }
      }
      return await this.finish(run, session, undefined, secrets);
    } catch (error) {
      return await this.finish(run, session, error, secrets);
    } finally {
      await session?.close();
    }
  }

  private async toActivities(
    config: ConnectorInstanceConfig,
    object: string,
    leadIdField: string | undefined,
    page: ChangePage,
  ): Promise<{ activities: CrmSyncActivity[]; links: LeadLink[] }> {
    const known = await this.deps.store.leadIdsFor(config.instanceId, object, [
      ...page.records.map((r) => r.id),
      ...page.deletions.map((d) => d.id),
    ]);
    const leadIdOf = (crmId: string, fields: Readonly<Record<string, FieldValue>>): string => {
      const value = leadIdField ? fields[leadIdField] : undefined;
      if (typeof value === "string" && value !== "") return value;
      return known.get(crmId) ?? `${config.connector}:${object}:${crmId}`;
    };
    const leadIds = page.records.map((record) => leadIdOf(record.id, record.fields));
    const pending = this.deps.pendingHubChanges
      ? await this.deps.pendingHubChanges(config.tenantId, [...new Set(leadIds)])
      : new Map<string, string>();
    const activities: CrmSyncActivity[] = [];
    const links: LeadLink[] = [];
    page.records.forEach((record, i) => {
      const leadId = leadIds[i];
      const mapped = mapInbound(config.mappings, object, record.fields);
      const hubChangedAt = pending.get(leadId);
      const winner = resolveConflict(config.conflictRule, record.modifiedAt, hubChangedAt);
      activities.push({
        id: crmActivityId({
          tenantId: config.tenantId,
          instanceId: config.instanceId,
          object,
          crmId: record.id,
          version: record.modifiedAt,
          operation: "upsert",
        }),
        tenantId: config.tenantId,
        leadId,
        type: "crm_sync",
        source: "crm",
        occurredAt: record.modifiedAt,
        attributes: {
          connector: config.connector,
          instanceId: config.instanceId,
          object,
          crmId: record.id,
          operation: "upsert",
          fields: mapped.fields,
          apply: winner === "crm",
          ...(hubChangedAt !== undefined ? { conflict: { rule: config.conflictRule, winner } } : {}),
          ...(mapped.errors.length > 0 ? { invalidFields: mapped.errors } : {}),
        },
      });
      links.push({ object, crmId: record.id, leadId, crmModifiedAt: record.modifiedAt });
    });
    for (const deletion of page.deletions) {
      activities.push({
        id: crmActivityId({
          tenantId: config.tenantId,
          instanceId: config.instanceId,
          object,
          crmId: deletion.id,
          version: deletion.deletedAt,
          operation: "delete",
        }),
        tenantId: config.tenantId,
        leadId: leadIdOf(deletion.id, {}),
        type: "crm_sync",
        source: "crm",
        occurredAt: deletion.deletedAt,
        attributes: {
          connector: config.connector,
          instanceId: config.instanceId,
          object,
          crmId: deletion.id,
          operation: "delete",
          fields: {},
          apply: true,
        },
      });
    }
    return { activities, links };
  }

  private async runOutbound(
    config: ConnectorInstanceConfig,
    source: OutboundSource,
    signal: AbortSignal,
  ): Promise<RunRecord> {
    const run = newRun(config, "outbound");
    await this.deps.store.saveRun(run);
    let session: CrmSession | undefined;
    let secrets: string[] = [];
    try {
      ({ session, secrets } = await this.open(config, signal));
      const batchSize = config.outbound.batchSize ?? 5000;
      const after = await this.deps.store.getWatermark(config.instanceId, "out");
      let buffer: OutboundItem[] = [];
      for await (const item of source(after)) {
        signal.throwIfAborted();
        buffer.push(item);
        if (buffer.length >= batchSize) {
          await this.flush(config, session, buffer, run);
          buffer = [];
        }
      }
      if (buffer.length > 0) await this.flush(config, session, buffer, run);
      return await this.finish(run, session, undefined, secrets);
    } catch (error) {
      return await this.finish(run, session, error, secrets);
    } finally {
      await session?.close();
    }
  }

  /** Writes one batch of outbound items, then commits its last position (with dead letters). */
  private async flush(
    config: ConnectorInstanceConfig,
    session: CrmSession,
    items: readonly OutboundItem[],
    run: RunRecord,
  ): Promise<void> {
    const manifest = this.resolve(config.connector).manifest;
    const now = new Date().toISOString();
    const deadLetters: DeadLetter[] = [];
    const leads = new Map<string, { write: LeadWrite; updatedAt: string }>();
    const scores = new Map<string, ScoreWrite>();
    const activities = new Map<string, ActivityWrite>();
    const allowed = config.outbound.activityTypes ? new Set(config.outbound.activityTypes) : undefined;
    for (const item of items) {
      if (item.kind === "activity") {
        const activity = item.activity;
        const echo = activity.type === "crm_sync" || activity.source === "crm";
        if (!config.outbound.activities || echo || (allowed && !allowed.has(activity.type))) {
          run.counts.skipped++;
          continue;
        }
        const { subject, description } = describeActivity(activity);
        activities.set(activity.id, {
          activityId: activity.id,
          leadKey: activity.leadId,
          subject,
          description,
          occurredAt: activity.occurredAt,
        });
      } else if (item.kind === "lead") {
        if (!config.outbound.leads) {
          run.counts.skipped++;
          continue;
        }
        const mapped = mapOutbound(config.mappings, manifest.leads.object, item.lead.fields);
        if (mapped.errors.length > 0) {
          deadLetters.push({
            key: item.lead.leadId,
            kind: "lead",
            code: "MAPPING_TYPE",
            message: mapped.errors.map((e) => `${e.field}: ${e.message}`).join("; "),
            at: now,
          });
          continue;
        }
        leads.set(item.lead.leadId, {
          write: { key: item.lead.leadId, fields: mapped.fields },
          updatedAt: item.lead.updatedAt,
        });
      } else {
        if (!config.outbound.scores) {
          run.counts.skipped++;
          continue;
        }
        scores.set(item.score.leadId, { leadKey: item.score.leadId, score: item.score.score });
      }
    }

    // Conflict rule outbound: skip hub lead changes the CRM changed later (crm-wins / newest-wins).
    const times = await this.deps.store.leadSyncTimes(config.instanceId, [...leads.keys()]);
    for (const [leadId, lead] of leads) {
      const seen = times.get(leadId);
      const crmPending =
        seen?.crmModifiedAt && (!seen.pushedAt || seen.crmModifiedAt > seen.pushedAt) ? seen.crmModifiedAt : undefined;
      if (resolveConflict(config.conflictRule, crmPending, lead.updatedAt) === "crm") {
        leads.delete(leadId);
        run.counts.skipped++;
      }
    }

    const pushed: { leadId: string; pushedAt: string }[] = [];
    const leadResults = await this.writeWithRetry(
      session.upsertLeads.bind(session),
      [...leads.values()].map((l) => l.write),
      (w) => w.key,
      run,
    );
    for (const result of leadResults) {
      if (result.ok) pushed.push({ leadId: result.key, pushedAt: leads.get(result.key)?.updatedAt ?? now });
      else deadLetters.push({ key: result.key, kind: "lead", code: result.code, message: result.message, at: now });
    }
    const activityResults = await this.writeWithRetry(
      session.writeActivities.bind(session),
      [...activities.values()],
      (w) => w.activityId,
      run,
    );
    for (const result of activityResults)
      if (!result.ok)
        deadLetters.push({ key: result.key, kind: "activity", code: result.code, message: result.message, at: now });
    const scoreResults = await this.writeWithRetry(
      session.updateScores.bind(session),
      [...scores.values()],
      (w) => w.leadKey,
      run,
    );
    for (const result of scoreResults)
      if (!result.ok)
        deadLetters.push({ key: result.key, kind: "score", code: result.code, message: result.message, at: now });

    run.counts.failed += deadLetters.length;
    await this.deps.store.commitOutbound(config.instanceId, items[items.length - 1].position, pushed, deadLetters);
  }

  /**
   * Writes records, re-sending only retriable per-record failures (bounded rounds). Records still
   * failing retriably abort the run so the batch is re-sent next time (upserts are idempotent).
   */
  private async writeWithRetry<T>(
    write: (records: readonly T[]) => Promise<WriteOutcome>,
    records: readonly T[],
    keyOf: (record: T) => string,
    run: RunRecord,
  ): Promise<WriteResult[]> {
    const final = new Map<string, WriteResult>();
    let pending = records;
    for (let round = 0; round < RETRY_ROUNDS && pending.length > 0; round++) {
      const outcome = await write(pending);
      run.paths[outcome.path] = (run.paths[outcome.path] ?? 0) + pending.length;
      const retry = new Set<string>();
      for (const result of outcome.results) {
        if (!result.ok && result.retriable) retry.add(result.key);
        else {
          final.set(result.key, result);
          if (result.ok) run.counts.written++;
        }
      }
      pending = pending.filter((record) => retry.has(keyOf(record)));
    }
    if (pending.length > 0) {
      throw new ConnectorError(
        "connector_transient",
        `${pending.length} records still failing after ${RETRY_ROUNDS} rounds; the batch will be re-sent`,
        { retriable: true },
      );
    }
    return [...final.values()];
  }
}

/** Re-exported for callers that build outbound sources. */
export type { OutboundItem, OutboundSource, HubActivity, CrmSyncActivity };
