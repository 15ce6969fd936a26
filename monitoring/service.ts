import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join, resolve } from "node:path";
import type { Context, ServiceSchema } from "moleculer";
import { NotFoundError, ValidationError } from "../core/errors";
import type { RequestMeta } from "../core/middleware/scopes";
import type { HubServices } from "../core/plugins/contract";
import { jsonBody, type RequestWithBody } from "../plugins/ingestion/body";
import { sendError } from "../plugins/ingestion/errors-http";
import { AlertEngine } from "./alerts/engine";
import { createNotifier } from "./alerts/notify";
import { AlertStore } from "./alerts/store";
import { defaultCapacityItems, planCapacity } from "./capacity/planner";
import { CollectorScheduler, type Collector } from "./collectors/collector";
import { engineCollector, httpCheck, type EngineCheck } from "./collectors/engines";
import { hostCollector } from "./collectors/host";
import { processCollector } from "./collectors/process";
import { queueLagCollector, type LagEvaluation } from "./collectors/queue-lag";
import type { MonitoringConfig } from "./config";
import { configureMetrics } from "./metrics/library";
import { SinkReporter } from "./reporter/sink-reporter";
import { businessSla, SLA_EVENTS, type SlaConsumed, type SlaTrigger } from "./sla/business";
import { metricsSinks, type MetricsSink, type Series, type SeriesQuery } from "./sinks";

type HttpParams = { body?: unknown; query?: Record<string, unknown>; params?: Record<string, string> };
type Meta = RequestMeta & { $responseType?: string; $responseHeaders?: Record<string, string>; $location?: string };
type Ctx = Context<HttpParams, Meta>;

/** Routes of the monitoring API, under `/api/v1/monitoring` (platform admin token). */
export const MONITORING_ALIASES: Record<string, string> = {
  "GET status": "monitoring.status",
  "GET alerts": "monitoring.alerts",
  "GET alerts/recent": "monitoring.recentAlerts",
  "POST alerts/:id/ack": "monitoring.acknowledge",
  "GET rules": "monitoring.listRules",
  "POST rules": "monitoring.createRule",
  "GET rules/:id": "monitoring.getRule",
  "PUT rules/:id": "monitoring.updateRule",
  "DELETE rules/:id": "monitoring.deleteRule",
  "GET silences": "monitoring.listSilences",
  "POST silences": "monitoring.createSilence",
  "DELETE silences/:id": "monitoring.expireSilence",
  "GET history": "monitoring.history",
  "GET sla": "monitoring.sla",
  "GET series": "monitoring.series",
  "GET capacity": "monitoring.capacity",
};

const CONSOLE_ASSETS: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

function resolveSinkConfig(config: MonitoringConfig, hub: HubServices): Exclude<MonitoringConfig["sink"], "auto"> {
  if (config.sink !== "auto") return config.sink;
  return hub.config.profile === "embedded"
    ? "embedded"
    : { type: "opentsdb", options: { url: "http://127.0.0.1:4242" } };
}

function int(value: unknown, fallback: number, min: number, max: number, field: string): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ValidationError(`Invalid ${field}`, [
      { field, code: "out_of_range", message: `must be an integer from ${min} to ${max}` },
    ]);
  return n;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function bodyOf(ctx: Ctx): Record<string, unknown> {
  const body = ctx.params.body;
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ValidationError("Send a JSON object", [
      { field: "body", code: "invalid_type", message: "must be an object" },
    ]);
  }
  return body as Record<string, unknown>;
}

/** Whoever the request authenticated as, for the history. */
function actor(ctx: Ctx): string {
  return ctx.meta.platform === true ? "platform-admin" : (ctx.meta.principal?.tenantId ?? "unknown");
}

/** The monitoring plugin's service: collectors, the publisher, the alert engine, the REST API and the console. */
export function monitoringService(hub: HubServices, config: MonitoringConfig): ServiceSchema {
  const broker = hub.broker;
  const metrics = configureMetrics(broker, { maxTenants: config.maxTenants, pinnedTenants: config.pinnedTenants });
  const sla = businessSla(broker);
  const dataDir = resolve(hub.config.dataDir);
  const sink: MetricsSink = metricsSinks.resolve(resolveSinkConfig(config, hub), { dataDir });
  const watchedGroups = new Set(config.consumerGroups);
  const topic = hub.config.topics.activities;

  let reporter: SinkReporter | undefined;
  let store: AlertStore | undefined;
  let engine: AlertEngine | undefined;
  let scheduler: CollectorScheduler | undefined;
  let loop: NodeJS.Timeout | undefined;
  let stopping = false;
  const lagState: { last?: Map<string, LagEvaluation> } = {};
  const engineState: {
    last?: Map<string, { ok: boolean; status: string; type: string; ms: number; detail?: string }>;
  } = {};
  const assets = new Map<string, string>();
  const capacityItems = [...defaultCapacityItems(), ...config.capacity];

  const requireEngine = (): AlertEngine => {
    if (!engine) throw new NotFoundError("The alert engine is not running on this node", "alerts_unavailable");
    return engine;
  };

  function engineChecks(): EngineCheck[] {
    const checks: EngineCheck[] = [{ engine: "metrics", type: sink.type, check: () => sink.health() }];
    if (hub.config.roles.includes("ingestion") || hub.config.roles.includes("consumer")) {
      checks.push({
        engine: "queue",
        type: typeof hub.config.queue === "string" ? hub.config.queue : hub.config.queue.type,
        check: async () => (await hub.queue()).health(),
      });
      checks.push({
        engine: "store",
        type: typeof hub.config.store === "string" ? hub.config.store : hub.config.store.type,
        check: async () => (await hub.store()).health(),
      });
    }
    for (const c of config.engineChecks) checks.push(httpCheck(c.engine, c.type, c.url));
    return checks;
  }

  const cycleTime = metrics.gauge({
    name: "hub.monitoring.cycle.ms",
    description: "Time the last monitoring cycle spent per phase (the monitoring plugin's own cost)",
    tags: ["phase"],
    unit: "ms",
  });
  const lastCycle = { collect: 0, publish: 0, evaluate: 0 };

  /** One monitoring cycle: due collectors → publish → evaluate rules, so a breach reaches the board in one cycle. */
  async function cycle(): Promise<void> {
    const now = Date.now();
    let mark = performance.now();
    const phase = (name: keyof typeof lastCycle): void => {
      const at = performance.now();
      lastCycle[name] = at - mark;
      cycleTime.set(lastCycle[name], { phase: name });
      mark = at;
    };
    await scheduler?.runDue(now);
    phase("collect");
    await reporter?.tick(now);
    phase("publish");
    if (engine && now - engine.lastEvaluationAt >= config.evaluationIntervalMs - 50) {
      await engine.evaluate(Date.now());
      phase("evaluate");
    }
  }

  function schedule(): void {
    if (stopping) return;
    loop = setTimeout(
      () => {
        cycle()
          .catch((error: unknown) => hub.logger.warn(`monitoring cycle failed: ${String(error)}`))
          .finally(schedule);
      },
      Math.min(config.publishIntervalMs, config.evaluationIntervalMs),
    );
    loop.unref();
  }

  async function chart(query: SeriesQuery, rate = false): Promise<Series[]> {
    const series = await sink.query(query);
    if (!rate) return series;
    return series.map((s) => {
      const points: Array<[number, number]> = [];
      for (let i = 1; i < s.points.length; i++) {
        const dt = (s.points[i]![0] - s.points[i - 1]![0]) / 1000;
        const dv = s.points[i]![1] - s.points[i - 1]![1];
        if (dt > 0) points.push([s.points[i]![0], dv >= 0 ? dv / dt : 0]);
      }
      return { ...s, points };
    });
  }

  return {
    name: "monitoring",
    events: {
      [SLA_EVENTS.triggered](ctx: Context<SlaTrigger>) {
        sla.triggered(ctx.params);
      },
      [SLA_EVENTS.consumed](ctx: Context<SlaConsumed>) {
        watchedGroups.add(ctx.params.group);
        sla.consumed(ctx.params);
      },
    },
    actions: {
      /** Adds a consumer group to the lag collector (consumers call it when they subscribe). */
      watchGroup: {
        visibility: "public",
        handler(ctx: Context<{ group: string }>) {
          watchedGroups.add(ctx.params.group);
          return { groups: [...watchedGroups] };
        },
      },
      status: {
        scope: "platform",
        async handler() {
          return {
            sink: { type: sink.type, health: await sink.health() },
            publisher: reporter ? { ...reporter.totals, buffered: reporter.buffered } : null,
            lastEvaluationAt: engine?.lastEvaluationAt ? new Date(engine.lastEvaluationAt).toISOString() : null,
            consumerGroups: Object.fromEntries(lagState.last ?? []),
            engines: Object.fromEntries(engineState.last ?? []),
            tenants: metrics.tenants.stats(),
            lastCycleMs: lastCycle,
          };
        },
      },
      alerts: {
        scope: "platform",
        handler: () => ({
          alerts: requireEngine().board(),
          evaluatedAt: engine?.lastEvaluationAt ? new Date(engine.lastEvaluationAt).toISOString() : null,
        }),
      },
      recentAlerts: {
        scope: "platform",
        handler: (ctx: Ctx) => ({
          alerts: requireEngine().recentAlerts(int(ctx.params.query?.limit, 100, 1, 1000, "limit")),
        }),
      },
      acknowledge: {
        scope: "platform",
        handler(ctx: Ctx) {
          const body = bodyOf(ctx);
          const comment = body.comment;
          if (typeof comment !== "string" || comment.trim() === "" || comment.length > 2000) {
            throw new ValidationError("An acknowledgement needs a comment", [
              { field: "comment", code: "required", message: "1-2000 characters" },
            ]);
          }
          return requireEngine().acknowledge(ctx.params.params?.id ?? "", actor(ctx), comment.trim());
        },
      },
      listRules: { scope: "platform", handler: () => ({ rules: requireEngine().rules() }) },
      getRule: { scope: "platform", handler: (ctx: Ctx) => requireEngine().rule(ctx.params.params?.id ?? "") },
      createRule: {
        scope: "platform",
        handler(ctx: Ctx) {
          const body = bodyOf(ctx);
          const { id, ...spec } = body;
          if (id !== undefined && (typeof id !== "string" || !/^[a-z0-9-]{1,60}$/.test(id))) {
            throw new ValidationError("Invalid rule id", [
              { field: "id", code: "invalid_format", message: "1-60 lower-case letters, digits and '-'" },
            ]);
          }
          const rule = requireEngine().createRule(spec, actor(ctx), id);
          ctx.meta.$statusCode = 201;
          ctx.meta.$location = `/api/v1/monitoring/rules/${rule.id}`;
          return rule;
        },
      },
      updateRule: {
        scope: "platform",
        handler(ctx: Ctx) {
          const { id: _id, createdAt: _c, updatedAt: _u, ...spec } = bodyOf(ctx);
          return requireEngine().updateRule(ctx.params.params?.id ?? "", spec, actor(ctx));
        },
      },
      deleteRule: {
        scope: "platform",
        handler(ctx: Ctx) {
          requireEngine().deleteRule(ctx.params.params?.id ?? "", actor(ctx));
          ctx.meta.$statusCode = 204;
          return null;
        },
      },
      listSilences: { scope: "platform", handler: () => ({ silences: requireEngine().silences() }) },
      createSilence: {
        scope: "platform",
        handler(ctx: Ctx) {
          const body = bodyOf(ctx);
          const durationMs = int(body.durationMs, 3_600_000, 60_000, 30 * 86_400_000, "durationMs");
          const comment = typeof body.comment === "string" ? body.comment.slice(0, 2000) : "";
          const matchers = body.matchers;
          if (
            matchers !== undefined &&
            (typeof matchers !== "object" ||
              matchers === null ||
              Object.values(matchers).some((v) => typeof v !== "string"))
          ) {
            throw new ValidationError("Invalid matchers", [
              { field: "matchers", code: "invalid_type", message: "must map label names to strings" },
            ]);
          }
          ctx.meta.$statusCode = 201;
          ctx.meta.$location = "/api/v1/monitoring/silences";
          return requireEngine().silence(
            {
              ...(str(body.ruleId) !== undefined ? { ruleId: str(body.ruleId)! } : {}),
              ...(matchers !== undefined ? { matchers: matchers as Record<string, string> } : {}),
              durationMs,
              comment,
            },
            actor(ctx),
          );
        },
      },
      expireSilence: {
        scope: "platform",
        handler(ctx: Ctx) {
          requireEngine().expireSilence(ctx.params.params?.id ?? "", actor(ctx));
          ctx.meta.$statusCode = 204;
          return null;
        },
      },
      history: {
        scope: "platform",
        handler(ctx: Ctx) {
          const q = ctx.params.query ?? {};
          const before = q.before === undefined ? undefined : int(q.before, 0, 1, Number.MAX_SAFE_INTEGER, "before");
          return {
            events: requireEngine().history({
              limit: int(q.limit, 200, 1, 1000, "limit"),
              ...(str(q.ruleId) !== undefined ? { ruleId: str(q.ruleId)! } : {}),
              ...(str(q.alertId) !== undefined ? { alertId: str(q.alertId)! } : {}),
              ...(before !== undefined ? { before } : {}),
            }),
          };
        },
      },
      /** Business SLAs: per-tenant table and charts, from the sink (local store or OpenTSDB). */
      sla: {
        scope: "platform",
        async handler(ctx: Ctx) {
          const q = ctx.params.query ?? {};
          const rangeMs = int(q.rangeMs, 3_600_000, 60_000, 30 * 86_400_000, "rangeMs");
          const tenant = str(q.tenant);
          const now = Date.now();
          const start = now - rangeMs;
          const downsampleMs = Math.max(5000, Math.round(rangeMs / 120 / 5000) * 5000);
          const tags = tenant !== undefined ? { tenant } : undefined;
          const base = { start, end: now, downsampleMs, ...(tags ? { tags } : {}) };
          const [tenants, intakeToStore, intakeToTrigger, freshness, accepted, rejected, throttled, lag] =
            await Promise.all([
              sink.tagValues("hub.intake.activities.accepted", "tenant", start),
              chart({ metric: "hub.sla.intake_to_store.ms.p99", aggregator: "max", ...base }),
              chart({ metric: "hub.sla.intake_to_trigger.ms.p99", aggregator: "max", ...base }),
              chart({ metric: "hub.sla.freshness.seconds", aggregator: "max", ...base }),
              chart(
                { metric: "hub.intake.activities.accepted", aggregator: "sum", downsampleAggregator: "max", ...base },
                true,
              ),
              chart(
                { metric: "hub.intake.activities.rejected", aggregator: "sum", downsampleAggregator: "max", ...base },
                true,
              ),
              chart(
                { metric: "hub.intake.activities.throttled", aggregator: "sum", downsampleAggregator: "max", ...base },
                true,
              ),
              chart({
                metric: "hub.queue.lag.seconds",
                aggregator: "max",
                start,
                end: now,
                downsampleMs,
                groupBy: ["group"],
              }),
            ]);
          return {
            tenant: tenant ?? null,
            rangeMs,
            tenants,
            charts: { intakeToStore, intakeToTrigger, freshness, accepted, rejected, throttled, lag },
          };
        },
      },
      /** Any metric, for the console's ad-hoc charts: `?metric=&tags=k:v,k:v&groupBy=a,b&aggregator=&rangeMs=&rate=true`. */
      series: {
        scope: "platform",
        async handler(ctx: Ctx) {
          const q = ctx.params.query ?? {};
          const metric = str(q.metric);
          if (metric === undefined)
            throw new ValidationError("metric is required", [
              { field: "metric", code: "required", message: "give a metric name" },
            ]);
          const rangeMs = int(q.rangeMs, 3_600_000, 60_000, 30 * 86_400_000, "rangeMs");
          const aggregator = str(q.aggregator) ?? "avg";
          if (!["sum", "avg", "min", "max"].includes(aggregator))
            throw new ValidationError("Invalid aggregator", [
              { field: "aggregator", code: "invalid_enum", message: "sum, avg, min or max" },
            ]);
          const tags = Object.fromEntries(
            (str(q.tags) ?? "")
              .split(",")
              .filter(Boolean)
              .map((kv) => kv.split(":") as [string, string]),
          );
          const groupBy = (str(q.groupBy) ?? "").split(",").filter(Boolean);
          const now = Date.now();
          return {
            series: await chart(
              {
                metric,
                start: now - rangeMs,
                end: now,
                aggregator: aggregator as "sum",
                downsampleMs: Math.max(5000, Math.round(rangeMs / 120 / 5000) * 5000),
                tags,
                groupBy,
                ...(q.rate === "true" ? { downsampleAggregator: "max" as const } : {}),
              },
              q.rate === "true",
            ),
          };
        },
      },
      capacity: {
        scope: "platform",
        async handler() {
          return { items: await planCapacity(sink, capacityItems) };
        },
      },
      /** The console's static files (no credentials needed: the page asks for the admin token). */
      consoleAsset: {
        handler(ctx: Ctx) {
          const name = ctx.params.params?.file ?? "index.html";
          const body = assets.get(name);
          if (body === undefined) throw new NotFoundError(`No console file '${name}'`);
          ctx.meta.$responseType = CONSOLE_ASSETS[name];
          ctx.meta.$responseHeaders = {
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:",
          };
          return body;
        },
      },
    },
    async started() {
      stopping = false;
      await sink.start();
      reporter = new SinkReporter({
        sink,
        host: broker.nodeID,
        intervalMs: 3_600_000, // published by the monitoring cycle, not by the reporter's own timer
        batchSize: config.batchSize,
        maxBuffer: config.maxBuffer,
        dedupMaxAgeMs: config.dedupMaxAgeMs,
      });
      if (broker.isMetricsEnabled()) {
        reporter.init(broker.metrics);
        const registry = broker.metrics as unknown as { reporter?: SinkReporter[] };
        registry.reporter = [...(registry.reporter ?? []), reporter];
      }

      const collectors: Collector[] = [
        processCollector(metrics, config.collectors.processIntervalMs),
        hostCollector(metrics, config.collectors.hostIntervalMs, dataDir),
        sla.collector(config.collectors.queueLagIntervalMs),
      ];
      const engines = engineCollector(metrics, config.collectors.enginesIntervalMs, engineChecks);
      engineState.last = engines.last;
      collectors.push(engines);
      if (hub.config.roles.includes("ingestion") || hub.config.roles.includes("consumer")) {
        const lag = queueLagCollector(metrics, config.collectors.queueLagIntervalMs, () => hub.queue(), {
          groups: () => [...watchedGroups].map((group) => ({ group, topic })),
          deadLetterTopics: [hub.config.topics.deadLetter],
        });
        lagState.last = lag.last;
        collectors.push(lag);
      }
      // A collector failing every cycle (an engine down) logs once per 5 minutes, not every 5 s.
      const lastLogged = new Map<string, number>();
      scheduler = new CollectorScheduler(collectors, (name, error) => {
        const now = Date.now();
        if (now - (lastLogged.get(name) ?? 0) < 300_000) return;
        lastLogged.set(name, now);
        hub.logger.warn(`collector '${name}' failed: ${String(error)}`);
      });

      if (hub.config.roles.includes("control")) {
        store = new AlertStore(dataDir);
        engine = new AlertEngine(store, sink, createNotifier(config.smtp), {
          carryMs: Math.max(config.dedupMaxAgeMs, config.publishIntervalMs) + config.publishIntervalMs,
          logger: hub.logger,
          consoleUrl: `http://${hub.config.http.host}:${hub.config.http.port}/console/`,
        });
        engine.seedDefaults();
      }

      const api = broker.getLocalService("api") as unknown as
        | { addRoute?: (route: Record<string, unknown>, toBottom?: boolean) => void; logger: HubServices["logger"] }
        | undefined;
      if (api?.addRoute) {
        const common = {
          bodyParsers: false,
          mergeParams: false,
          mappingPolicy: "restrict",
          logging: false,
          onBeforeCall(_ctx: Context, _route: unknown, req: RequestWithBody) {
            if (req.$bodyError !== undefined) throw req.$bodyError;
          },
          onError(req: IncomingMessage, res: ServerResponse, err: unknown) {
            sendError(req, res, err, api.logger);
          },
        };
        api.addRoute(
          {
            ...common,
            path: "/api/v1/monitoring",
            authorization: "authorizeBearer",
            use: [jsonBody(64 * 1024)],
            aliases: MONITORING_ALIASES,
          },
          false,
        );
        if (config.console.enabled) {
          const dir = join(__dirname, "console", "static");
          for (const name of Object.keys(CONSOLE_ASSETS)) assets.set(name, readFileSync(join(dir, name), "utf8"));
          api.addRoute(
            {
              ...common,
              path: "/console",
              aliases: { "GET /": "monitoring.consoleAsset", "GET /:file": "monitoring.consoleAsset" },
            },
            false,
          );
        }
      }

      await scheduler.runDue(Date.now());
      schedule();
    },
    async stopped() {
      stopping = true;
      clearTimeout(loop);
      scheduler?.stop();
      if (reporter) {
        await reporter.stop();
        const registry = broker.metrics as unknown as { reporter?: SinkReporter[] };
        if (registry.reporter) registry.reporter = registry.reporter.filter((r) => r !== reporter);
      }
      await engine?.drainNotifications();
      store?.close();
      await sink.stop();
    },
  };
}
