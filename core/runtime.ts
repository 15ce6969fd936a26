import { ServiceBroker, type BrokerOptions, type Middleware, type ServiceSchema } from "moleculer";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { queues } from "../plugins/queue";
import type { ActivityQueue } from "../plugins/queue/contract";
import { stores } from "../plugins/store";
import type { ActivityStore } from "../plugins/store/contract";
import { loadHubConfig, type HubConfigOverrides } from "./config/load";
import type { HubConfig } from "./config/schema";
import { ConfigError, type FieldError } from "./errors";
import { checkpointerSettled } from "./sqlite";
import { INTERNAL_MIDDLEWARES, requestMetricsMiddleware } from "./middleware/request-metrics";
import { scopesMiddleware } from "./middleware/scopes";
import type { HubExtensions, HubPlugin, HubServices } from "./plugins/contract";
import { TenantDirectory } from "./tenancy/directory";
import { tenancyService } from "./tenancy/service";
import { PersistLedger } from "./reconciler/ledger";
import { reconcilerService } from "./reconciler/service";

/** What `moleculer.config.ts` exports: the plugins, hub overrides and extra broker options. */
export interface HubDefinition {
  plugins: HubPlugin[];
  config?: HubConfigOverrides;
  broker?: Partial<BrokerOptions>;
}

export function defineHub(definition: HubDefinition): HubDefinition {
  return definition;
}

export interface Hub {
  readonly broker: ServiceBroker;
  readonly config: HubConfig;
  readonly services: HubServices;
  start(): Promise<void>;
  /** Stops accepting work, finishes in-flight requests and batches, then closes engines. */
  stop(): Promise<void>;
}

/** Log fields that must never be written, whatever logs them. */
export const REDACTED_LOG_PATHS = [
  "key",
  "apiKey",
  "writeKey",
  "adminToken",
  "password",
  "secret",
  "clientSecret",
  "privateKey",
  "refreshToken",
  "accessToken",
  "authorization",
  "*.key",
  "*.apiKey",
  "*.writeKey",
  "*.password",
  "*.secret",
  "*.clientSecret",
  "*.privateKey",
  "*.refreshToken",
  "*.accessToken",
  "*.authorization",
  "headers.authorization",
];

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => (pending ??= make());
}

/**
 * Assembles a hub: loads and validates config, creates the broker, resolves the queue and store
 * through their registries, and creates the services of every plugin whose roles this node has.
 */
export function createHub(definition: HubDefinition, env: Record<string, string | undefined> = process.env): Hub {
  const config = loadHubConfig(definition.config, env);
  // Engines open lazily, but a misnamed one must stop start-up, not the first request.
  queues.check(config.queue);
  stores.check(config.store);
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true });

  const broker = new ServiceBroker({
    namespace: "activity-hub",
    ...(config.nodeId !== undefined ? { nodeID: config.nodeId } : {}),
    transporter: config.transporter ?? undefined,
    logger: {
      type: "Pino",
      options: {
        level: config.logLevel,
        pino: { options: { redact: { paths: REDACTED_LOG_PATHS, censor: "[redacted]" } } },
      },
    },
    logLevel: config.logLevel,
    tracking: { enabled: true, shutdownTimeout: 10_000 },
    // Moleculer's internal middlewares in their stock order, with a cheaper Metrics middleware
    // (see request-metrics.ts).
    internalMiddlewares: false,
    middlewares: [
      scopesMiddleware,
      // A factory is called with the broker, like the built-in ones (Moleculer's typings omit it).
      ...INTERNAL_MIDDLEWARES.map((name) =>
        name === "Metrics" ? (requestMetricsMiddleware as unknown as Middleware) : name,
      ),
    ],
    // Moleculer's metric registry is the one path every metric takes; it is on only when a
    // monitoring plugin is loaded, which adds its own reporter and collectors.
    metrics: {
      enabled: definition.plugins.some((p) => p.manifest.kind === "monitoring"),
      collectProcessMetrics: false,
    },
    ...definition.broker,
  });

  let queue: ActivityQueue | undefined;
  let store: ActivityStore | undefined;
  let ledger: PersistLedger | undefined;
  const extensions: HubExtensions = { enrichers: [], apiRoutes: {} };
  const services: HubServices = {
    config,
    logger: broker.getLogger("hub"),
    broker,
    extensions,
    ledger: () => (ledger ??= new PersistLedger({ dataDir })),
    queue: once(async () => {
      queue = queues.resolve(config.queue, { dataDir });
      await queue.start();
      return queue;
    }),
    store: once(async () => {
      store = stores.resolve(config.store, { dataDir });
      await store.start();
      return store;
    }),
  };

  let directory: TenantDirectory | undefined;
  if (config.roles.includes("control")) {
    directory = new TenantDirectory(dataDir, config.quota);
    broker.createService(tenancyService(directory));
  }
  // The reconciler checks the windows this node's intake recorded, so it runs where the intake does.
  if (config.roles.includes("ingestion")) broker.createService(reconcilerService(services, directory));

  const errors: FieldError[] = [];
  const schemas: ServiceSchema[] = [];
  const ids = new Set<string>();
  for (const plugin of definition.plugins) {
    const { manifest } = plugin;
    if (ids.has(manifest.id)) {
      errors.push({ field: `plugins.${manifest.id}`, code: "duplicate_plugin", message: "is loaded twice" });
      continue;
    }
    ids.add(manifest.id);
    if (!manifest.roles.some((role) => config.roles.includes(role))) continue;
    const parsed = manifest.config.safeParse(config.plugins[manifest.id] ?? {});
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        errors.push({
          field: ["plugins", manifest.id, ...issue.path].join("."),
          code: issue.code,
          message: issue.message,
        });
      }
      continue;
    }
    schemas.push(...plugin.services({ config: parsed.data, hub: services }));
  }
  for (const id of Object.keys(config.plugins)) {
    if (!ids.has(id))
      errors.push({ field: `plugins.${id}`, code: "unknown_plugin", message: "no loaded plugin has this id" });
  }
  if (errors.length > 0) throw new ConfigError("Invalid plugin configuration", errors);
  for (const schema of schemas) broker.createService(schema);

  return {
    broker,
    config,
    services,
    start: () => broker.start(),
    async stop() {
      await broker.stop();
      // Every request has been answered: the ledger can record a clean shutdown.
      ledger?.close();
      await Promise.all([queue?.stop(), store?.stop()]);
      directory?.close();
      // The databases' files are left alone once the checkpointer has closed its connections too.
      await checkpointerSettled();
    },
  };
}
