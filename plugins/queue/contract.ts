import type { HealthStatus } from "../../core/health";

/**
 * The queue family: an ordered, partitioned, durable log with consumer groups (Kafka's model).
 * Implementations: `embedded` (SQLite on local disk) and `kafka`. Every implementation passes
 * `contract-suite.ts`.
 */

export interface QueueRecord {
  /** Partitioning key: records with the same key keep their order. */
  key: string;
  /** JSON text of the payload. */
  value: string;
  headers?: Record<string, string>;
  /**
   * In-process only: the payload `value` encodes, as the publisher had it (`value` must be its
   * `JSON.stringify`). Queues that hand records to consumers in the same process (the embedded
   * one, from its in-memory head) pass it along, deeply frozen, so consumers skip a JSON parse;
   * the publisher must not change it after publishing. It is never serialised. A queue holding
   * it may drop the text from memory and make `value` again from it when a consumer asks.
   */
  decoded?: unknown;
}

export interface QueueMessage extends QueueRecord {
  topic: string;
  partition: number;
  /** Position in the partition, as a decimal string (Kafka offsets exceed 2^53). */
  offset: string;
  /** Milliseconds since the epoch at which the queue accepted the record. */
  timestamp: number;
}

export interface SubscribeOptions {
  /** Consumer group: each record is delivered to one member of a group; groups are independent. */
  group: string;
  topic: string;
  /** At most this many messages per handler call (default 500). */
  maxBatch?: number;
  /** Where a group with no committed offset starts (default: earliest). */
  fromBeginning?: boolean;
  /**
   * Receives messages of one partition, in order. Resolving commits them; throwing redelivers the
   * same batch after a back-off (at-least-once delivery).
   */
  handler: (batch: QueueMessage[]) => Promise<void>;
}

export interface ReplayOptions {
  /** Epoch ms: starts at the first record the queue accepted at or after this time. */
  since: number;
  /** Epoch ms: a partition's replay ends at its first record accepted at or after this time. */
  until?: number;
  /** At most this many messages per handler call (default 500). */
  maxBatch?: number;
  /** Receives messages of one partition, in order; a rejection ends the replay with that error. */
  handler: (batch: QueueMessage[]) => Promise<void>;
}

export interface Subscription {
  /** Stops fetching, waits for in-flight batches to finish and commit, and leaves the group. */
  stop(): Promise<void>;
}

export interface PartitionLag {
  partition: number;
  /** Next offset the group will read (committed), as a decimal string. */
  committed: string;
  /** Offset after the last record in the partition. */
  end: string;
  lag: number;
}

export interface ActivityQueue {
  /** Registry name of the implementation, e.g. `embedded`, `kafka`. */
  readonly type: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves once every record is durable in the queue (fsync / acks=all). */
  publish(topic: string, records: QueueRecord[]): Promise<void>;
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  lag(group: string, topic: string): Promise<PartitionLag[]>;
  /**
   * Reads a time window of a topic once, outside any consumer group (nothing is committed): every
   * partition from its first record accepted at `since` or later, up to its end when the call
   * started (or `until`). For repair and audit passes over a bounded window, such as the
   * reconciler's. Resolves with the number of messages handed to `handler`.
   */
  replay(topic: string, options: ReplayOptions): Promise<number>;
  health(): Promise<HealthStatus>;
}
