import type { LoggerInstance, ServiceActionsSchema, ServiceSchema } from "moleculer";
import { z } from "zod";
import { partitionKeyOf, type Activity, type ActivitySource } from "../core/activity/model";
import { activityOf } from "../core/activity/serialize";
import type { Role } from "../core/config/schema";
import { UnavailableError } from "../core/errors";
import { definePlugin, type HubPlugin, type HubServices } from "../core/plugins/contract";
import type { ActivityStore } from "../plugins/store/contract";
import type { QueueMessage, QueueRecord, Subscription } from "../plugins/queue/contract";
import { EffectLedger } from "./effects";
import { consumerMetrics, type ConsumerMetrics } from "./metrics";
import { retry, type Outcome } from "./results";
import { businessSla } from "../monitoring/sla/business";

/** Which activities reach `handle`; the others are committed without a call (counted `skipped`). */
export interface SubscribeFilter {
  /** Activity types (any when absent or empty). */
  types?: string[];
  /** Activity sources (any when absent or empty). */
  sources?: ActivitySource[];
}

export interface RetryOptions {
  /** Handle attempts after the first before giving up (default 5). */
  max?: number;
  /** First back-off, doubled on each attempt (default 100 ms). */
  initialBackoffMs?: number;
  /** Longest back-off (default 10 s). */
  maxBackoffMs?: number;
}

export interface DeliveryOptions {
  /** Consumer group (default: the consumer id). Each group receives every activity once. */
  group?: string;
  /** Activities per `handle` call (default 100). */
  batchSize?: number;
  /** `handle` calls running at once across partitions (default 4); order per lead is always kept. */
  maxInFlight?: number;
  retries?: RetryOptions;
  /** Park activities that exhaust their retries or ask for it on the dead-letter topic (default true); otherwise the batch is redelivered until it succeeds. */
  deadLetter?: boolean;
  /** A new group starts at the oldest retained activity (default true) or at the end. */
  fromBeginning?: boolean;
}

/** What a consumer sees while it runs. */
export interface ConsumerContext<C> {
  readonly id: string;
  readonly config: C;
  readonly hub: HubServices;
  readonly logger: LoggerInstance;
  /** Durable once-only side effects, keyed by this consumer and an effect key. */
  readonly effects: EffectLedger;
  readonly metrics: ConsumerMetrics;
  /** The hub's activity store, for history look-ups. */
  store(): Promise<ActivityStore>;
}

/** The context of a running consumer, with the state its `start` returned. */
export interface RunningContext<C, S> extends ConsumerContext<C> {
  readonly state: S;
}

/** The context of one `handle` call. */
export interface HandleContext<C, S> extends RunningContext<C, S> {
  /** 1 for the first delivery of these activities, 2 for the first retry, … */
  readonly attempt: number;
}

/** `void` = all ok; one outcome for the whole batch; or one outcome per activity, in batch order. */
export type HandleResult = void | Outcome | Outcome[];

export interface ConsumerDefinition<S extends z.ZodTypeAny, State> {
  /** Unique kebab-case id: plugin id, default consumer group, metrics label, key of `config.plugins`. */
  id: string;
  version: string;
  description: string;
  /** Schema of the consumer's configuration (`config.plugins[id]`); default: no options. */
  config?: S;
  /** Node roles the consumer runs on (default `["consumer"]`). */
  roles?: Role[];
  /** Moleculer service name (default: the id in camelCase). */
  serviceName?: string;
  subscribe?: SubscribeFilter;
  delivery?: DeliveryOptions;
  /** Opens resources before the first delivery; its return value is `ctx.state` afterwards. */
  start?(ctx: ConsumerContext<z.infer<S>>): State | Promise<State>;
  /** Handles a batch of activities of one partition, in order. */
  handle(batch: Activity[], ctx: HandleContext<z.infer<S>, State>): HandleResult | Promise<HandleResult>;
  /** Releases resources after the last delivery. */
  stop?(ctx: RunningContext<z.infer<S>, State>): void | Promise<void>;
  /** Actions the consumer serves (e.g. a REST API through gateway aliases); `running()` throws 503 before start. */
  actions?(running: () => RunningContext<z.infer<S>, State>, ctx: ConsumerContext<z.infer<S>>): ServiceActionsSchema;
  /** REST aliases under `/api/v1` for those actions, e.g. `{ "GET campaigns": "campaigns.list" }`. */
  routes?: Record<string, string>;
}

/** Reported to observers after every `handle` call (the test harness listens here). */
export interface DeliveryReport {
  activities: Activity[];
  outcomes: Outcome[];
  attempt: number;
}

/** A consumer, packaged as a hub plugin of kind `consumer`. */
export interface ConsumerPlugin<S extends z.ZodTypeAny = z.ZodTypeAny> extends HubPlugin<S> {
  readonly consumerId: string;
  readonly serviceName: string;
  /** Its consumer group on the activity topic. */
  readonly group: string;
  /** Listens to delivery reports of every running instance; returns the unsubscribe function. */
  observe(listener: (report: DeliveryReport) => void): () => void;
}

const noOptions = z.object({}).strict();

function camelCase(id: string): string {
  return id.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

class Slots {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly size: number) {}
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

function normalize(result: HandleResult, size: number): Outcome[] {
  if (result === undefined) return Array.from({ length: size }, () => ({ kind: "ok" }));
  if (Array.isArray(result)) {
    if (result.length !== size) throw new Error(`handle returned ${result.length} outcomes for ${size} activities`);
    return result;
  }
  return Array.from({ length: size }, () => result);
}

/**
 * Declares a consumer: a hub plugin that subscribes to the activity topic with its own consumer
 * group through `hub.queue()` (embedded log or Kafka alike), filters, batches, retries with
 * back-off, dead-letters, and counts everything per consumer.
 */
export function defineConsumer<S extends z.ZodTypeAny = typeof noOptions, State = undefined>(
  definition: ConsumerDefinition<S, State>,
): ConsumerPlugin<S> {
  const observers = new Set<(report: DeliveryReport) => void>();
  const serviceName = definition.serviceName ?? camelCase(definition.id);
  const delivery = definition.delivery ?? {};
  const batchSize = delivery.batchSize ?? 100;
  const maxRetries = delivery.retries?.max ?? 5;
  const initialBackoff = delivery.retries?.initialBackoffMs ?? 100;
  const maxBackoff = delivery.retries?.maxBackoffMs ?? 10_000;
  const useDeadLetter = delivery.deadLetter ?? true;
  const types = new Set(definition.subscribe?.types ?? []);
  const sources = new Set<string>(definition.subscribe?.sources ?? []);
  const wanted = (a: Activity): boolean =>
    (types.size === 0 || types.has(a.type)) && (sources.size === 0 || sources.has(a.source));

  const plugin = definePlugin<S>({
    manifest: {
      id: definition.id,
      kind: "consumer",
      version: definition.version,
      description: definition.description,
      config: (definition.config ?? noOptions) as unknown as S,
      roles: definition.roles ?? ["consumer"],
    },
    services: ({ config, hub }) => {
      Object.assign(hub.extensions.apiRoutes, definition.routes ?? {});
      const logger = hub.broker.getLogger(`consumer:${definition.id}`);
      const metrics = consumerMetrics(hub.broker, definition.id);
      // Business SLA: lag and freshness per tenant and consumer group.
      const sla = businessSla(hub.broker);
      const slaGroup = definition.delivery?.group ?? definition.id;
      let effects: EffectLedger | undefined;
      const base: ConsumerContext<z.infer<S>> = {
        id: definition.id,
        config,
        hub,
        logger,
        metrics,
        get effects(): EffectLedger {
          effects ??= new EffectLedger(hub.config.dataDir, definition.id);
          return effects;
        },
        store: () => hub.store(),
      };
      let running: RunningContext<z.infer<S>, State> | undefined;
      let subscription: Subscription | undefined;
      let stopping = false;
      const slots = new Slots(delivery.maxInFlight ?? 4);
      const sleepers = new Set<() => void>();

      const sleep = (ms: number): Promise<void> =>
        new Promise((resolve, reject) => {
          const wake = (): void => {
            clearTimeout(timer);
            sleepers.delete(wake);
            if (stopping) reject(new UnavailableError("consumer stopping; batch will be redelivered"));
            else resolve();
          };
          const timer = setTimeout(wake, ms);
          sleepers.add(wake);
        });

      async function handleChunk(chunk: Activity[], deadLetters: QueueRecord[]): Promise<void> {
        let pending = chunk;
        for (let attempt = 1; pending.length > 0; attempt++) {
          const ctx: HandleContext<z.infer<S>, State> = { ...running!, effects: base.effects, attempt };
          const started = Date.now();
          let outcomes: Outcome[];
          try {
            outcomes = normalize(await definition.handle(pending, ctx), pending.length);
          } catch (error) {
            logger.warn({ err: String(error), attempt }, "handle threw; retrying the batch");
            outcomes = pending.map(() => retry(String(error)));
          }
          const done = Date.now();
          metrics.batch(done - started, pending.length);
          const again: Activity[] = [];
          let afterMs = 0;
          // Counted per kind, once per chunk. The activities of one request share tenant and
          // receivedAt, so their latency too: one observation per run of them.
          const counts = new Map<Outcome["kind"], number>();
          let run: { tenantId: string; receivedAt: string; count: number } | undefined;
          const observeRun = (): void => {
            if (run === undefined) return;
            const receivedAtMs = Date.parse(run.receivedAt);
            metrics.latency(done - receivedAtMs, run.count);
            sla.consumed({
              tenantId: run.tenantId,
              receivedAt: receivedAtMs,
              group: slaGroup,
              at: done,
              count: run.count,
            });
          };
          outcomes.forEach((outcome, i) => {
            const activity = pending[i]!;
            counts.set(outcome.kind, (counts.get(outcome.kind) ?? 0) + 1);
            if (outcome.kind === "ok") {
              if (run !== undefined && run.receivedAt === activity.receivedAt && run.tenantId === activity.tenantId)
                run.count++;
              else {
                observeRun();
                run = { tenantId: activity.tenantId, receivedAt: activity.receivedAt, count: 1 };
              }
            } else if (outcome.kind === "dead_letter")
              deadLetters.push(deadLetterRecord(activity, outcome.reason, attempt));
            else if (outcome.kind === "retry") {
              again.push(activity);
              afterMs = Math.max(afterMs, outcome.afterMs ?? 0);
            }
          });
          observeRun();
          for (const [kind, count] of counts) metrics.outcome(kind, count);
          for (const observe of observers) observe({ activities: pending, outcomes, attempt });
          if (again.length === 0) return;
          if (attempt > maxRetries) {
            if (!useDeadLetter)
              throw new Error(`retries exhausted for ${again.length} activities; the queue will redeliver`);
            const reasons = new Map(outcomes.map((o, i) => [pending[i], o.kind === "retry" ? o.reason : ""]));
            for (const a of again)
              deadLetters.push(deadLetterRecord(a, `retries exhausted: ${reasons.get(a) ?? ""}`, attempt));
            metrics.outcome("dead_letter", again.length);
            return;
          }
          await sleep(Math.max(afterMs, Math.min(maxBackoff, initialBackoff * 2 ** (attempt - 1))));
          pending = again;
        }
      }

      function deadLetterRecord(activity: Activity, reason: string, attempts: number): QueueRecord {
        return {
          key: partitionKeyOf(activity),
          value: JSON.stringify(activity),
          headers: {
            consumer: definition.id,
            reason: reason.slice(0, 500),
            attempts: String(attempts),
            tenant: activity.tenantId,
            type: activity.type,
          },
        };
      }

      async function onMessages(messages: QueueMessage[]): Promise<void> {
        const deadLetters: QueueRecord[] = [];
        const activities: Activity[] = [];
        let skipped = 0;
        for (const message of messages) {
          let activity: Activity;
          try {
            activity = activityOf(message);
          } catch {
            deadLetters.push({
              key: message.key,
              value: message.value,
              headers: { consumer: definition.id, reason: "unparseable JSON", attempts: "0" },
            });
            continue;
          }
          if (wanted(activity)) activities.push(activity);
          else skipped++;
        }
        if (skipped > 0) metrics.outcome("skipped", skipped);
        for (let i = 0; i < activities.length; i += batchSize) {
          await slots.run(() => handleChunk(activities.slice(i, i + batchSize), deadLetters));
        }
        if (deadLetters.length > 0) await (await hub.queue()).publish(hub.config.topics.deadLetter, deadLetters);
      }

      const requireRunning = (): RunningContext<z.infer<S>, State> => {
        if (!running) throw new UnavailableError(`consumer '${definition.id}' is not started`);
        return running;
      };

      const schema: ServiceSchema = {
        name: serviceName,
        actions: definition.actions?.(requireRunning, base) ?? {},
        async started() {
          stopping = false;
          const state = definition.start ? await definition.start(base) : (undefined as State);
          running = {
            id: base.id,
            config: base.config,
            hub: base.hub,
            logger: base.logger,
            metrics: base.metrics,
            effects: base.effects,
            store: base.store,
            state,
          };
          subscription = await (
            await hub.queue()
          ).subscribe({
            group: delivery.group ?? definition.id,
            topic: hub.config.topics.activities,
            maxBatch: Math.max(batchSize, 100),
            fromBeginning: delivery.fromBeginning ?? true,
            handler: onMessages,
          });
        },
        async stopped() {
          stopping = true;
          for (const wake of [...sleepers]) wake();
          await subscription?.stop();
          subscription = undefined;
          if (running) await definition.stop?.(running);
          running = undefined;
          effects?.close();
          effects = undefined;
        },
      };
      return [schema];
    },
  });

  return {
    ...plugin,
    consumerId: definition.id,
    serviceName,
    group: delivery.group ?? definition.id,
    observe(listener) {
      observers.add(listener);
      return () => observers.delete(listener);
    },
  };
}
