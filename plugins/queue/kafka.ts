import { randomUUID } from "node:crypto";
import type { Admin, Batch, Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage, Producer } from "kafkajs";
import { z } from "zod";
import type { HealthStatus } from "../../core/health";
import { ConfigError } from "../../core/errors";
import type {
  ActivityQueue,
  PartitionLag,
  QueueMessage,
  QueueRecord,
  ReplayOptions,
  SubscribeOptions,
  Subscription,
} from "./contract";

type KafkaJs = typeof import("kafkajs");

const brokerAddress = z.string().refine((b) => {
  const match = /^[^\s:/]+:(\d{1,5})$/.exec(b);
  return match !== null && Number(match[1]) > 0 && Number(match[1]) <= 65535;
}, "must be host:port");

/** Options of the `kafka` queue (`config.queue.options`); see plugins/queue/README.md. */
export const kafkaQueueOptionsSchema = z
  .object({
    /** Bootstrap brokers, `host:port`. */
    brokers: z.array(brokerAddress).min(1),
    clientId: z.string().min(1).default("activity-hub"),
    /** Prepended to every topic name (e.g. a per-run prefix in tests); messages report the logical name. */
    topicPrefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]*$/, "may hold letters, digits, '.', '_' and '-'")
      .default(""),
    /** Partitions of the topics this queue creates (activities, dead letters). */
    partitions: z.number().int().min(1).max(10_000).default(12),
    replicationFactor: z.number().int().min(1).max(16).default(1),
    /** Record-batch compression. kafkajs has gzip built in; others need external codecs. */
    compression: z.enum(["none", "gzip"]).default("none"),
    /** A publish rejects after this long (the intake answers 503 then); bounds every retry. */
    publishTimeoutMs: z.number().int().min(100).max(120_000).default(5_000),
    /** Per request to a broker. */
    requestTimeoutMs: z.number().int().min(100).max(120_000).default(5_000),
    connectionTimeoutMs: z.number().int().min(100).max(60_000).default(1_000),
    /** Retries of one produce request inside a publish (kafkajs exponential back-off from 100 ms). */
    retries: z.number().int().min(1).max(20).default(3),
    /** Concurrent publishes are coalesced into one produce request of at most this many bytes of keys and values. */
    maxRequestBytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(900_000),
    sessionTimeoutMs: z.number().int().min(3_000).max(300_000).default(30_000),
    heartbeatIntervalMs: z.number().int().min(100).max(60_000).default(3_000),
    rebalanceTimeoutMs: z.number().int().min(1_000).max(600_000).default(60_000),
    /** Longest a fetch waits for new records (also bounds how long a subscription takes to stop). */
    maxWaitTimeMs: z.number().int().min(10).max(30_000).default(500),
    /** Partitions whose batches a subscription handles at once (order within a partition is always kept). */
    partitionsConsumedConcurrently: z.number().int().min(1).max(256).default(4),
    logLevel: z.enum(["nothing", "error", "warn", "info", "debug"]).default("error"),
  })
  .strict()
  .refine((o) => o.heartbeatIntervalMs < o.sessionTimeoutMs, {
    message: "must be less than sessionTimeoutMs",
    path: ["heartbeatIntervalMs"],
  });

export type KafkaQueueOptions = z.output<typeof kafkaQueueOptionsSchema>;
export type KafkaQueueOptionsInput = z.input<typeof kafkaQueueOptionsSchema>;

/** Validates `config.queue.options`, reporting each bad field as `queue.options.<name>`. */
export function parseKafkaQueueOptions(options: Record<string, unknown>): KafkaQueueOptions {
  const parsed = kafkaQueueOptionsSchema.safeParse(options);
  if (parsed.success) return parsed.data;
  throw new ConfigError(
    "Invalid kafka queue options",
    parsed.error.issues.map((issue) => ({
      field: ["queue", "options", ...issue.path].join("."),
      code: issue.code,
      message: issue.message,
    })),
  );
}

interface PendingPublish {
  topic: string;
  records: QueueRecord[];
  bytes: number;
  state: "queued" | "sent" | "done";
  resolve: () => void;
  reject: (error: Error) => void;
  timer?: NodeJS.Timeout;
}

interface Flight {
  entries: PendingPublish[];
  producer: Promise<Producer>;
}

/** A replay that has not reached its partitions' ends by then fails (it is retried as a whole). */
const REPLAY_TIMEOUT_MS = 10 * 60_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`kafka: ${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function errorOf(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function recordBytes(records: QueueRecord[]): number {
  let bytes = 0;
  for (const r of records) {
    bytes += r.key.length + r.value.length + 32;
    if (r.headers) for (const [k, v] of Object.entries(r.headers)) bytes += k.length + v.length + 8;
  }
  return bytes;
}

/** A fetched Kafka batch as queue messages, under the logical topic name. */
function messagesOf(topic: string, batch: Batch): QueueMessage[] {
  return batch.messages.map((m: KafkaMessage) => {
    const headers = headersOf(m.headers);
    return {
      topic,
      partition: batch.partition,
      offset: m.offset,
      key: m.key ? m.key.toString("utf8") : "",
      value: m.value ? m.value.toString("utf8") : "",
      ...(headers ? { headers } : {}),
      timestamp: Number(m.timestamp),
    };
  });
}

function headersOf(headers: IHeaders | undefined): Record<string, string> | undefined {
  if (!headers) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first === undefined) continue;
    out[name] = typeof first === "string" ? first : first.toString("utf8");
    any = true;
  }
  return any ? out : undefined;
}

/**
 * The production queue: Apache Kafka through kafkajs 2.2.
 *
 * - Topics are created on first use with `partitions` partitions (replication `replicationFactor`);
 *   records are partitioned by key with the Java-compatible murmur2 partitioner, so the order per
 *   tenant + lead holds and other Kafka clients agree on placement.
 * - One idempotent producer (acks=all, kafkajs serialises produce requests per broker, i.e. one in
 *   flight). Concurrent publishes are coalesced into one produce request (group commit), so the
 *   intake's many small publishes become few large record batches. A publish rejects after
 *   `publishTimeoutMs` whatever Kafka does; after any failed or abandoned request the producer is
 *   replaced (a new producer id), so a reused sequence number can never make the broker drop a
 *   later batch as a "duplicate".
 * - Subscriptions are Kafka consumer groups: `eachBatch` without auto-resolve; an offset is
 *   resolved and committed only after the handler resolved for it; a handler that throws gets the
 *   same records again after a back-off (heartbeating meanwhile); stop waits for the batch in
 *   progress, commits, and leaves the group so its partitions move to the other members at once.
 */
export class KafkaQueue implements ActivityQueue {
  readonly type = "kafka";
  private lib?: KafkaJs;
  private kafka?: Kafka;
  private admin?: Promise<Admin>;
  private producer?: Promise<Producer>;
  private readonly topics = new Map<string, Promise<void>>();
  private readonly subscriptions = new Set<KafkaSubscription>();
  private pending: PendingPublish[] = [];
  private flight?: Flight;
  private started = false;

  constructor(readonly options: KafkaQueueOptions) {}

  async start(): Promise<void> {
    if (this.started) return;
    const lib = (this.lib ??= await import("kafkajs"));
    const levels = {
      nothing: lib.logLevel.NOTHING,
      error: lib.logLevel.ERROR,
      warn: lib.logLevel.WARN,
      info: lib.logLevel.INFO,
      debug: lib.logLevel.DEBUG,
    };
    this.kafka = new lib.Kafka({
      clientId: this.options.clientId,
      brokers: this.options.brokers,
      connectionTimeout: this.options.connectionTimeoutMs,
      requestTimeout: this.options.requestTimeoutMs,
      retry: { retries: this.options.retries, initialRetryTime: 100, maxRetryTime: 1_000 },
      logLevel: levels[this.options.logLevel],
    });
    this.started = true;
    // Connect eagerly, but a broker that is down now must not make start-up fail for good: the
    // queue reconnects on the next publish, and health() reports it down meanwhile.
    await Promise.allSettled([this.getProducer(), this.getAdmin()]);
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    await Promise.allSettled([...this.subscriptions].map((s) => s.stop()));
    // Let publishes already handed to us finish (each is bounded by publishTimeoutMs).
    for (let i = 0; i < 1_000 && (this.flight || this.pending.length > 0); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.started = false;
    const producer = this.producer;
    const admin = this.admin;
    this.producer = undefined;
    this.admin = undefined;
    this.topics.clear();
    await Promise.allSettled([
      producer?.then((p) => withTimeout(p.disconnect(), 5_000, "producer disconnect")),
      admin?.then((a) => withTimeout(a.disconnect(), 5_000, "admin disconnect")),
    ]);
  }

  /** The Kafka topic behind a logical topic name. */
  physicalTopic(topic: string): string {
    return `${this.options.topicPrefix}${topic}`;
  }

  async publish(topic: string, records: QueueRecord[]): Promise<void> {
    this.requireStarted();
    if (records.length === 0) return;
    const deadline = Date.now() + this.options.publishTimeoutMs;
    await withTimeout(this.ensureTopic(topic), this.options.publishTimeoutMs, `creating topic ${topic}`);
    const left = Math.max(1, deadline - Date.now());
    await new Promise<void>((resolve, reject) => {
      const entry: PendingPublish = {
        topic,
        records,
        bytes: recordBytes(records),
        state: "queued",
        resolve,
        reject,
      };
      entry.timer = setTimeout(() => this.expire(entry), left);
      this.pending.push(entry);
      this.pump();
    });
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.requireStarted();
    await withTimeout(this.ensureTopic(options.topic), this.options.requestTimeoutMs * 2, `topic ${options.topic}`);
    const consumer = this.kafka!.consumer({
      groupId: options.group,
      sessionTimeout: this.options.sessionTimeoutMs,
      heartbeatInterval: this.options.heartbeatIntervalMs,
      rebalanceTimeout: this.options.rebalanceTimeoutMs,
      maxWaitTimeInMs: this.options.maxWaitTimeMs,
      allowAutoTopicCreation: false,
      retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5_000 },
    });
    const subscription = new KafkaSubscription(this, consumer, options);
    this.subscriptions.add(subscription);
    subscription.onStop(() => this.subscriptions.delete(subscription));
    try {
      await subscription.run();
    } catch (error) {
      await subscription.stop();
      throw error;
    }
    return subscription;
  }

  async lag(group: string, topic: string): Promise<PartitionLag[]> {
    this.requireStarted();
    const physical = this.physicalTopic(topic);
    return this.withAdmin("lag", async (admin) => {
      let ends: Array<{ partition: number; offset: string; high: string; low: string }>;
      try {
        ends = await admin.fetchTopicOffsets(physical);
      } catch (error) {
        // A topic nobody has published to has no lag.
        if (/does not host this topic-partition|unknown topic|UNKNOWN_TOPIC/i.test(String(error))) return [];
        throw error;
      }
      const committed = new Map<number, string>();
      for (const t of await admin.fetchOffsets({ groupId: group, topics: [physical] })) {
        for (const p of t.partitions) committed.set(p.partition, p.offset);
      }
      return ends
        .map(({ partition, high, low }) => {
          const raw = committed.get(partition);
          // No committed offset yet: a new group starts at the oldest retained record.
          const from = raw === undefined || BigInt(raw) < 0n ? BigInt(low) : BigInt(raw);
          const end = BigInt(high);
          const lag = end > from ? Number(end - from) : 0;
          return { partition, committed: String(from), end: String(end), lag };
        })
        .sort((a, b) => a.partition - b.partition);
    });
  }

  /**
   * A replay is a consumer of its own short-lived group that never commits: each partition is
   * sought to the offset Kafka's ListOffsets finds for `since` (or to its end, when there is
   * nothing to replay there), and the group is deleted afterwards.
   */
  async replay(topic: string, options: ReplayOptions): Promise<number> {
    this.requireStarted();
    const physical = this.physicalTopic(topic);
    const ranges = await this.withAdmin("replay offsets", async (admin) => {
      let ends: Array<{ partition: number; high: string }>;
      try {
        ends = await admin.fetchTopicOffsets(physical);
      } catch (error) {
        if (/does not host this topic-partition|unknown topic|UNKNOWN_TOPIC/i.test(String(error))) return [];
        throw error;
      }
      const starts = new Map(
        (await admin.fetchTopicOffsetsByTimestamp(physical, options.since)).map((p) => [p.partition, p.offset]),
      );
      return ends.map(({ partition, high }) => {
        const start = starts.get(partition);
        // No record at or after `since`: Kafka answers -1 (or the end).
        const from = start === undefined || BigInt(start) < 0n ? BigInt(high) : BigInt(start);
        return { partition, from, end: BigInt(high) };
      });
    });
    const pending = new Set(ranges.filter((r) => r.from < r.end).map((r) => r.partition));
    if (pending.size === 0) return 0;
    const ends = new Map(ranges.map((r) => [r.partition, r.end]));
    const until = options.until ?? Infinity;
    const maxBatch = Math.max(1, options.maxBatch ?? 500);
    const groupId = `${physical}.replay.${randomUUID()}`;
    const consumer = this.kafka!.consumer({
      groupId,
      sessionTimeout: this.options.sessionTimeoutMs,
      heartbeatInterval: this.options.heartbeatIntervalMs,
      maxWaitTimeInMs: this.options.maxWaitTimeMs,
      allowAutoTopicCreation: false,
      retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5_000 },
    });
    let delivered = 0;
    let settle!: (error?: unknown) => void;
    const finished = new Promise<void>((resolve, reject) => {
      settle = (error?: unknown) => (error === undefined ? resolve() : reject(errorOf(error)));
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [physical], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, heartbeat }) => {
          if (!pending.has(batch.partition)) return;
          const end = ends.get(batch.partition)!;
          const messages: QueueMessage[] = [];
          let done = false;
          for (const m of messagesOf(topic, batch)) {
            if (BigInt(m.offset) >= end || m.timestamp >= until) {
              done = true;
              break;
            }
            messages.push(m);
          }
          try {
            for (let at = 0; at < messages.length; at += maxBatch) {
              const chunk = messages.slice(at, at + maxBatch);
              await options.handler(chunk);
              delivered += chunk.length;
              await heartbeat();
            }
          } catch (error) {
            // Nothing more is handed over; the consumer stops below.
            pending.clear();
            settle(error);
            return;
          }
          const last = messages[messages.length - 1];
          if (done || (last !== undefined && BigInt(last.offset) + 1n >= end)) pending.delete(batch.partition);
          if (pending.size === 0) settle();
        },
      });
      for (const { partition, from, end } of ranges)
        consumer.seek({ topic: physical, partition, offset: String(from < end ? from : end) });
      await withTimeout(finished, REPLAY_TIMEOUT_MS, `replay of ${topic}`);
      return delivered;
    } finally {
      await withTimeout(consumer.disconnect(), 30_000, "replay consumer disconnect").catch(() => undefined);
      await this.withAdmin("delete replay group", (admin) => admin.deleteGroups([groupId])).catch(() => undefined);
    }
  }

  async health(): Promise<HealthStatus> {
    if (!this.started) return { ok: false, status: "down", detail: "not started" };
    try {
      const cluster = await this.withAdmin("health", (admin) => admin.describeCluster());
      return {
        ok: cluster.brokers.length > 0,
        status: cluster.brokers.length > 0 ? "up" : "down",
        detail: `${cluster.brokers.length} broker(s), controller ${cluster.controller ?? "none"}`,
      };
    } catch (error) {
      return { ok: false, status: "down", detail: errorOf(error).message };
    }
  }

  /** @internal The kafkajs module (loaded by start). */
  kafkajs(): KafkaJs {
    return this.lib!;
  }

  private requireStarted(): void {
    if (!this.started || !this.kafka) throw new Error("kafka queue is not started");
  }

  private ensureTopic(topic: string): Promise<void> {
    let ready = this.topics.get(topic);
    if (!ready) {
      ready = this.withAdmin("create topic", async (admin) => {
        await admin.createTopics({
          waitForLeaders: true,
          timeout: this.options.requestTimeoutMs,
          topics: [
            {
              topic: this.physicalTopic(topic),
              numPartitions: this.options.partitions,
              replicationFactor: this.options.replicationFactor,
            },
          ],
        });
      });
      ready.catch(() => this.topics.delete(topic));
      this.topics.set(topic, ready);
    }
    return ready;
  }

  private getAdmin(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.kafka!.admin({ retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 } });
      const connecting = withTimeout(admin.connect(), this.options.publishTimeoutMs, "admin connect").then(() => admin);
      connecting.catch(() => {
        if (this.admin === connecting) this.admin = undefined;
        admin.disconnect().catch(() => undefined);
      });
      this.admin = connecting;
    }
    return this.admin;
  }

  private async withAdmin<T>(what: string, task: (admin: Admin) => Promise<T>): Promise<T> {
    const connecting = this.getAdmin();
    const admin = await connecting;
    try {
      return await withTimeout(task(admin), this.options.requestTimeoutMs * 2, what);
    } catch (error) {
      // Reconnect next time: the admin's connection may be what failed.
      if (/connect|closed|ECONNREFUSED|timed out/i.test(String(error)) && this.admin === connecting) {
        this.admin = undefined;
        admin.disconnect().catch(() => undefined);
      }
      throw error;
    }
  }

  private getProducer(): Promise<Producer> {
    if (!this.producer) {
      const lib = this.lib!;
      const producer = this.kafka!.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: lib.Partitioners.DefaultPartitioner,
        retry: { retries: this.options.retries, initialRetryTime: 100, maxRetryTime: 1_000 },
      });
      const connecting = withTimeout(producer.connect(), this.options.publishTimeoutMs, "producer connect").then(
        () => producer,
      );
      connecting.catch(() => this.dropProducer(connecting));
      this.producer = connecting;
    }
    return this.producer;
  }

  /** Replaces the producer: the next request gets a new producer id and fresh sequence numbers. */
  private dropProducer(which: Promise<Producer>): void {
    if (this.producer === which) this.producer = undefined;
    which.then(
      (p) => p.disconnect().catch(() => undefined),
      () => undefined,
    );
  }

  private expire(entry: PendingPublish): void {
    if (entry.state === "done") return;
    const error = new Error(`kafka: publish timed out after ${this.options.publishTimeoutMs} ms`);
    if (entry.state === "queued") {
      this.pending = this.pending.filter((e) => e !== entry);
      entry.state = "done";
      entry.reject(error);
      return;
    }
    // In flight: give up on the whole request; its outcome can no longer be reported.
    const flight = this.flight;
    if (flight && flight.entries.includes(entry)) this.abandon(flight, error);
  }

  private abandon(flight: Flight, error: Error): void {
    for (const e of flight.entries) this.settle(e, error);
    if (this.flight === flight) {
      this.flight = undefined;
      this.dropProducer(flight.producer);
      this.pump();
    }
  }

  private settle(entry: PendingPublish, error?: Error): void {
    if (entry.state === "done") return;
    entry.state = "done";
    clearTimeout(entry.timer);
    if (error) entry.reject(error);
    else entry.resolve();
  }

  /** Sends everything queued as one produce request once the previous one is done. */
  private pump(): void {
    if (this.flight || this.pending.length === 0 || !this.kafka) return;
    const entries: PendingPublish[] = [];
    let bytes = 0;
    while (this.pending.length > 0) {
      const next = this.pending[0]!;
      if (entries.length > 0 && bytes + next.bytes > this.options.maxRequestBytes) break;
      this.pending.shift();
      next.state = "sent";
      entries.push(next);
      bytes += next.bytes;
    }
    const producer = this.getProducer();
    const flight: Flight = { entries, producer };
    this.flight = flight;
    const byTopic = new Map<string, Array<{ key: string; value: string; headers?: Record<string, string> }>>();
    for (const entry of entries) {
      const physical = this.physicalTopic(entry.topic);
      let list = byTopic.get(physical);
      if (!list) byTopic.set(physical, (list = []));
      for (const r of entry.records)
        list.push(r.headers ? { key: r.key, value: r.value, headers: r.headers } : { key: r.key, value: r.value });
    }
    const compression =
      this.options.compression === "gzip" ? this.lib!.CompressionTypes.GZIP : this.lib!.CompressionTypes.None;
    producer
      .then((p) =>
        p.sendBatch({
          acks: -1,
          timeout: this.options.requestTimeoutMs,
          compression,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        }),
      )
      .then(
        () => {
          if (this.flight !== flight) return;
          for (const e of entries) this.settle(e);
          this.flight = undefined;
          this.pump();
        },
        (error: unknown) => this.abandon(flight, errorOf(error)),
      );
  }
}

/** One member of a Kafka consumer group. */
class KafkaSubscription implements Subscription {
  private stopping?: Promise<void>;
  private readonly stopListeners: Array<() => void> = [];
  private readonly sleepers = new Set<() => void>();

  constructor(
    private readonly queue: KafkaQueue,
    private readonly consumer: Consumer,
    private readonly options: SubscribeOptions,
  ) {}

  onStop(listener: () => void): void {
    this.stopListeners.push(listener);
  }

  async run(): Promise<void> {
    const topic = this.queue.physicalTopic(this.options.topic);
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [topic], fromBeginning: this.options.fromBeginning ?? true });
    await this.consumer.run({
      autoCommit: true,
      // commitOffsetsIfNecessary() commits as soon as one offset is resolved.
      autoCommitThreshold: 1,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.queue.options.partitionsConsumedConcurrently,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const wake of [...this.sleepers]) wake();
      try {
        // Waits for the batch in progress (which commits what it handled), then leaves the group.
        await withTimeout(this.consumer.disconnect(), 60_000, "consumer disconnect");
      } finally {
        for (const listener of this.stopListeners) listener();
      }
    })();
    return this.stopping;
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale } = payload;
    const messages = messagesOf(this.options.topic, batch);
    const maxBatch = Math.max(1, this.options.maxBatch ?? 500);
    const live = (): boolean => this.stopping === undefined && isRunning() && !isStale();
    for (let at = 0; at < messages.length; at += maxBatch) {
      if (!live()) return;
      const chunk = messages.slice(at, at + maxBatch);
      for (let failures = 0; ;) {
        try {
          await this.options.handler(chunk);
          break;
        } catch {
          // Same records again after a back-off, in order; never past them.
          failures++;
          await this.sleep(Math.min(10_000, 100 * 2 ** Math.min(failures, 9)));
          if (!live()) return;
          await heartbeat();
        }
      }
      resolveOffset(chunk[chunk.length - 1]!.offset);
      await commitOffsetsIfNecessary();
      await heartbeat();
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}
