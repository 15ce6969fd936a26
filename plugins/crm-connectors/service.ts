import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Context, ServiceSchema } from "moleculer";
import {
  AesGcmCredentialVault,
  ConnectorScheduler,
  listConnectors,
  redactText,
  resolveConnector,
  SqliteStateStore,
  type ConnectionTest,
  type ConnectorInstanceConfig,
  type ConnectorLogger,
  type RunRecord,
} from "../../connectors";
import { NotFoundError, ValidationError } from "../../core/errors";
import { principalOf, type RequestMeta } from "../../core/middleware/scopes";
import type { HubServices } from "../../core/plugins/contract";
import type { QueueMessage, Subscription } from "../queue/contract";
import { intakeEmitter } from "./inbound";
import { OutboundBatcher, scoreItems, toOutboundBatch } from "./outbound";
import { checkAgainstManifest, parseCreate, parseUpdate } from "./request";
import { SerialSyncEngine } from "./runtime";
import { ScoreLedger } from "./score-ledger";
import { resolveVaultKeys, type ConfiguredKey } from "./vault-key";

type HttpParams = { body?: unknown; query?: Record<string, unknown>; params?: Record<string, string> };
type Ctx = Context<HttpParams, RequestMeta>;

export interface CrmConnectorsOptions {
  readonly vault: {
    readonly key?: ConfiguredKey | undefined;
    readonly previousKeys: readonly ConfiguredKey[];
    readonly keyFile?: string | undefined;
  };
  /** Consumer groups are `<groupPrefix>.<connector id>`. */
  readonly groupPrefix: string;
  /** How long outbound waits to fill a batch before writing what it has. */
  readonly outboundLingerMs: number;
  readonly lockTtlMs: number;
}

/** A connector as the API returns it: configuration, and credentials without their secrets. */
export interface ConnectorView {
  readonly id: string;
  readonly connector: ConnectorInstanceConfig["connector"];
  readonly enabled: boolean;
  readonly schedule: string;
  readonly options: ConnectorInstanceConfig["options"];
  readonly mappings: ConnectorInstanceConfig["mappings"];
  readonly conflictRule: ConnectorInstanceConfig["conflictRule"];
  readonly inbound: ConnectorInstanceConfig["inbound"];
  readonly outbound: ConnectorInstanceConfig["outbound"];
  readonly credentials?: { mode: string; values: Record<string, string>; secretsSet: readonly string[] };
}

interface Outbound {
  readonly subscription: Subscription;
  readonly batcher: OutboundBatcher;
}

const HISTORY_MAX = 500;

function wantsOutbound(config: ConnectorInstanceConfig): boolean {
  return config.outbound.leads || config.outbound.activities || config.outbound.scores;
}

/**
 * The `crmConnectors` service: the configuration and status API of CRM connectors (per tenant, the
 * tenant always from the caller's credentials), their schedules, and one outbound consumer group per
 * enabled connector.
 */
export function crmConnectorsService(hub: HubServices, options: CrmConnectorsOptions): ServiceSchema {
  const logger = hub.logger;
  const connectorLogger: ConnectorLogger = {
    info: (message, fields) => logger.info(message, fields ?? {}),
    warn: (message, fields) => logger.warn(message, fields ?? {}),
    error: (message, fields) => logger.error(message, fields ?? {}),
  };
  let store: SqliteStateStore | undefined;
  let vault: AesGcmCredentialVault | undefined;
  let engine: SerialSyncEngine | undefined;
  let scheduler: ConnectorScheduler | undefined;
  let ledger: ScoreLedger | undefined;
  const outbound = new Map<string, Outbound>();

  function ready(): { store: SqliteStateStore; vault: AesGcmCredentialVault; engine: SerialSyncEngine } {
    if (!store || !vault || !engine) throw new Error("crmConnectors is not started");
    return { store, vault, engine };
  }

  async function owned(ctx: Ctx): Promise<ConnectorInstanceConfig> {
    const id = ctx.params.params?.id ?? "";
    const config = await ready().store.getConfig(id);
    if (!config || config.tenantId !== principalOf(ctx).tenantId)
      throw new NotFoundError(`No connector '${id}'`, "connector_not_found");
    return config;
  }

  async function view(config: ConnectorInstanceConfig): Promise<ConnectorView> {
    const credentials = await ready().vault.view(config, resolveConnector(config.connector).manifest);
    const secret = new Set(credentials?.secretsSet ?? []);
    return {
      id: config.instanceId,
      connector: config.connector,
      enabled: config.enabled,
      schedule: config.schedule,
      options: config.options,
      mappings: config.mappings,
      conflictRule: config.conflictRule,
      inbound: config.inbound,
      outbound: config.outbound,
      ...(credentials
        ? {
            credentials: {
              mode: credentials.mode,
              // Secret fields are left out entirely, not masked: the API only says they are set.
              values: Object.fromEntries(Object.entries(credentials.values).filter(([name]) => !secret.has(name))),
              secretsSet: credentials.secretsSet,
            },
          }
        : {}),
    };
  }

  /** Secret values of a connector, to scrub any message before it leaves the service. */
  async function secretsOf(config: ConnectorInstanceConfig): Promise<string[]> {
    try {
      const credentials = await ready().vault.load(config);
      const manifest = resolveConnector(config.connector).manifest;
      const spec = manifest.credentials.find((m) => m.mode === credentials.mode);
      const names = new Set(spec?.fields.filter((f) => f.secret).map((f) => f.name) ?? []);
      return Object.entries(credentials.values)
        .filter(([name]) => names.has(name))
        .map(([, value]) => value);
    } catch {
      return [];
    }
  }

  async function writeOutbound(
    config: ConnectorInstanceConfig,
    messages: QueueMessage[],
  ): Promise<RunRecord | undefined> {
    const { engine: sync } = ready();
    const batch = toOutboundBatch(messages, config.tenantId);
    const position = batch.items.reduce((max, item) => (item.position > max ? item.position : max), "");
    const computed =
      config.outbound.scores && batch.scoreDeltas.length > 0 && ledger
        ? ledger.compute(config.instanceId, batch.scoreDeltas)
        : undefined;
    const items = [...batch.items, ...(computed ? scoreItems(computed.scores, position) : [])];
    if (items.length === 0) return undefined;
    const [run] = await sync.run(config.instanceId, {
      directions: ["outbound"],
      source: async function* () {
        yield* items;
      },
    });
    if (run && run.status !== "failed" && run.status !== "skipped" && computed)
      ledger?.commit(config.instanceId, computed.fresh, computed.scores);
    return run;
  }

  async function startOutbound(config: ConnectorInstanceConfig): Promise<void> {
    await stopOutbound(config.instanceId);
    if (!config.enabled || !wantsOutbound(config)) return;
    const batchSize = config.outbound.batchSize ?? 5000;
    const batcher = new OutboundBatcher((messages) => writeOutbound(config, messages), {
      maxItems: batchSize,
      lingerMs: options.outboundLingerMs,
    });
    const queue = await hub.queue();
    const subscription = await queue.subscribe({
      group: `${options.groupPrefix}.${config.instanceId}`,
      topic: hub.config.topics.activities,
      maxBatch: Math.min(batchSize, 5000),
      // A new connector writes back what happens from now on, not the tenant's whole history.
      fromBeginning: false,
      handler: async (batch) => {
        const mine = batch.filter((m) => m.headers?.tenant === undefined || m.headers.tenant === config.tenantId);
        if (mine.length > 0) await batcher.offer(mine);
      },
    });
    outbound.set(config.instanceId, { subscription, batcher });
  }

  async function stopOutbound(instanceId: string): Promise<void> {
    const current = outbound.get(instanceId);
    if (!current) return;
    outbound.delete(instanceId);
    await Promise.all([current.batcher.close(), current.subscription.stop()]);
  }

  async function activate(config: ConnectorInstanceConfig): Promise<void> {
    scheduler?.apply(config);
    await startOutbound(config);
  }

  function bodyOf(ctx: Ctx): unknown {
    return ctx.params.body;
  }

  async function runNow(config: ConnectorInstanceConfig): Promise<RunRecord[]> {
    // Outbound runs continuously from the queue; "run now" also writes what is waiting.
    await outbound
      .get(config.instanceId)
      ?.batcher.flush()
      .catch(() => undefined);
    return ready().engine.run(config.instanceId, { directions: ["inbound"] });
  }

  return {
    name: "crmConnectors",
    actions: {
      types: {
        scope: "read",
        handler() {
          return { connectors: listConnectors() };
        },
      },
      list: {
        scope: "read",
        async handler(ctx: Ctx) {
          const configs = await ready().store.listConfigs(principalOf(ctx).tenantId);
          return { connectors: await Promise.all(configs.map(view)) };
        },
      },
      create: {
        scope: "admin",
        async handler(ctx: Ctx) {
          const principal = principalOf(ctx);
          const body = parseCreate(bodyOf(ctx));
          const { credentials, ...settings } = body;
          const config: ConnectorInstanceConfig = {
            ...settings,
            instanceId: `crm_${randomBytes(8).toString("hex")}`,
            tenantId: principal.tenantId,
          };
          checkAgainstManifest(config, credentials);
          await ready().engine.configure(config, credentials);
          await activate(config);
          logger.info("crm connector created", {
            tenantId: config.tenantId,
            connectorId: config.instanceId,
            connector: config.connector,
          });
          ctx.meta.$statusCode = 201;
          ctx.meta.$location = `/api/v1/connectors/${config.instanceId}`;
          return view(config);
        },
      },
      get: {
        scope: "read",
        async handler(ctx: Ctx) {
          return view(await owned(ctx));
        },
      },
      update: {
        scope: "admin",
        async handler(ctx: Ctx) {
          const current = await owned(ctx);
          const { credentials, ...changes } = parseUpdate(bodyOf(ctx));
          const config: ConnectorInstanceConfig = { ...current, ...changes };
          checkAgainstManifest(config, credentials);
          await ready().engine.configure(config, credentials);
          await activate(config);
          return view(config);
        },
      },
      remove: {
        scope: "admin",
        async handler(ctx: Ctx) {
          const config = await owned(ctx);
          scheduler?.unschedule(config.instanceId);
          await stopOutbound(config.instanceId);
          const { engine: sync, store: state, vault: secrets } = ready();
          // Behind any run in progress, so a run never finds its config gone half-way.
          await sync.lanes.run(config.instanceId, async () => {
            await state.deleteConfig(config.instanceId);
            await secrets.remove(config);
            ledger?.forget(config.instanceId);
          });
          ctx.meta.$statusCode = 204;
          return null;
        },
      },
      test: {
        scope: "admin",
        async handler(ctx: Ctx): Promise<ConnectionTest> {
          const config = await owned(ctx);
          try {
            return await ready().engine.testConnection(config.instanceId);
          } catch (error) {
            const code = typeof error === "object" && error !== null ? Reflect.get(error, "code") : undefined;
            const message = redactText(error instanceof Error ? error.message : String(error), await secretsOf(config));
            return {
              ok: false,
              missingFields: [],
              message: `${typeof code === "string" ? `${code}: ` : ""}${message}`,
            };
          }
        },
      },
      enable: {
        scope: "admin",
        async handler(ctx: Ctx) {
          const config = { ...(await owned(ctx)), enabled: true };
          await ready().engine.configure(config);
          await activate(config);
          return view(config);
        },
      },
      disable: {
        scope: "admin",
        async handler(ctx: Ctx) {
          const config = { ...(await owned(ctx)), enabled: false };
          await ready().engine.configure(config);
          await activate(config);
          return view(config);
        },
      },
      run: {
        scope: "admin",
        async handler(ctx: Ctx) {
          const config = await owned(ctx);
          const wait = ctx.params.query?.wait;
          if (wait === "true") return { runs: await runNow(config) };
          if (wait !== undefined && wait !== "false")
            throw new ValidationError("Invalid query", [
              { field: "wait", code: "invalid_value", message: "must be true or false" },
            ]);
          runNow(config).catch((error: unknown) =>
            logger.warn("crm connector run failed", { connectorId: config.instanceId, err: String(error) }),
          );
          ctx.meta.$statusCode = 202;
          return { status: "started" };
        },
      },
      status: {
        scope: "read",
        async handler(ctx: Ctx) {
          const config = await owned(ctx);
          const status = await ready().engine.status(config.instanceId, 50);
          const lastOf = (direction: string): RunRecord | null =>
            status.lastRuns.find((r) => r.direction === direction && r.status !== "skipped") ?? null;
          const lastError = status.lastRuns.find((r) => r.error !== undefined);
          return {
            id: config.instanceId,
            connector: config.connector,
            enabled: config.enabled,
            schedule: config.schedule,
            running: ready().engine.lanes.busy(config.instanceId),
            nextRun: scheduler?.scheduled().find((s) => s.instanceId === config.instanceId)?.nextRun ?? null,
            lastInbound: lastOf("inbound"),
            lastOutbound: lastOf("outbound"),
            lastError: lastError ? { at: lastError.finishedAt ?? lastError.startedAt, ...lastError.error } : null,
            outbound: {
              consuming: outbound.has(config.instanceId),
              waiting: outbound.get(config.instanceId)?.batcher.pending ?? 0,
            },
            deadLetters: status.deadLetters,
          };
        },
      },
      history: {
        scope: "read",
        async handler(ctx: Ctx) {
          const config = await owned(ctx);
          const raw = ctx.params.query?.limit;
          const limit = raw === undefined ? 50 : Number(raw);
          if (!Number.isInteger(limit) || limit < 1 || limit > HISTORY_MAX)
            throw new ValidationError("Invalid query", [
              { field: "limit", code: "invalid_value", message: `must be an integer from 1 to ${HISTORY_MAX}` },
            ]);
          return { runs: await ready().store.listRuns(config.instanceId, limit) };
        },
      },
    },
    async started() {
      const dataDir = hub.config.dataDir;
      const keys = resolveVaultKeys(options.vault, dataDir);
      store = new SqliteStateStore(join(dataDir, "crm-connectors.db"));
      vault = new AesGcmCredentialVault(store, keys.current, keys.previous);
      ledger = new ScoreLedger(dataDir);
      engine = new SerialSyncEngine({
        store,
        vault,
        logger: connectorLogger,
        lockTtlMs: options.lockTtlMs,
        emit: intakeEmitter(hub.broker, {
          maxBatch: hub.config.http.maxBatch,
          fallbackQuota: hub.config.quota,
          onRejected: (connectorId, rejected, sample) =>
            logger.warn("crm sync activities rejected by intake", { connectorId, rejected, sample }),
        }),
      });
      scheduler = new ConnectorScheduler(engine, store, () => undefined, connectorLogger);
      logger.info("crm connectors vault key loaded", { keyId: keys.current.id, origin: keys.origin });
      for (const config of await store.listConfigs()) if (config.enabled) await activate(config);
    },
    async stopped() {
      scheduler?.stop();
      await Promise.all([...outbound.keys()].map(stopOutbound));
      await engine?.lanes.drain();
      ledger?.close();
      store?.close();
    },
  };
}
