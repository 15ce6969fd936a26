import { option, Registry } from "../../core/registry";
import type { ActivityQueue } from "./contract";
import { EmbeddedQueue } from "./embedded";
import { KafkaQueue, parseKafkaQueueOptions } from "./kafka";

export type {
  ActivityQueue,
  QueueMessage,
  QueueRecord,
  SubscribeOptions,
  Subscription,
  PartitionLag,
} from "./contract";

/** What a queue factory receives besides its own options. */
export interface QueueContext {
  dataDir: string;
}

/** The queue registry: `embedded` (default) and `kafka` (kafkajs is loaded only when a kafka queue starts). */
export const queues = new Registry<ActivityQueue, QueueContext>("queue")
  .register(
    "embedded",
    (options, context) =>
      new EmbeddedQueue({
        dataDir: option(options, "dataDir", "string") ?? context.dataDir,
        partitions: option(options, "partitions", "number"),
        retentionMs: option(options, "retentionMs", "number"),
        retentionIntervalMs: option(options, "retentionIntervalMs", "number"),
        pollIntervalMs: option(options, "pollIntervalMs", "number"),
        lingerMs: option(options, "lingerMs", "number"),
      }),
  )
  .register("kafka", (options) => new KafkaQueue(parseKafkaQueueOptions(options)));
