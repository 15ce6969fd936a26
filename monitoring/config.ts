import { z } from "zod";
import { capacityItemSchema } from "./capacity/planner";

const part = z.union([
  z.string().min(1),
  z.object({ type: z.string().min(1), options: z.record(z.unknown()).optional() }).strict(),
]);

/** `plugins.monitoring` of the hub configuration; every field is described in monitoring/README.md. */
export const monitoringConfigSchema = z
  .object({
    /** Metrics sink; `auto` is `embedded` on the embedded profile and OpenTSDB on the others. */
    sink: part.default("auto"),
    publishIntervalMs: z.number().int().min(1000).max(300_000).default(5000),
    batchSize: z.number().int().min(1).max(5000).default(500),
    maxBuffer: z.number().int().min(1000).max(5_000_000).default(100_000),
    dedupMaxAgeMs: z.number().int().min(0).max(3_600_000).default(60_000),
    collectors: z
      .object({
        processIntervalMs: z.number().int().min(1000).default(15_000),
        hostIntervalMs: z.number().int().min(1000).default(30_000),
        queueLagIntervalMs: z.number().int().min(1000).default(5000),
        enginesIntervalMs: z.number().int().min(1000).default(15_000),
      })
      .strict()
      .default({}),
    /** Consumer groups whose lag is watched (on the activities topic); consumers can add theirs at run time. */
    consumerGroups: z.array(z.string().min(1)).default(["lead-profiles"]),
    /** Extra engine health checks over HTTP (Solr, HBase REST …). */
    engineChecks: z
      .array(z.object({ engine: z.string().min(1), type: z.string().min(1), url: z.string().url() }).strict())
      .default([]),
    maxTenants: z.number().int().min(1).max(100_000).default(100),
    pinnedTenants: z.array(z.string()).default([]),
    evaluationIntervalMs: z.number().int().min(1000).max(300_000).default(5000),
    smtp: z
      .object({
        host: z.string().min(1),
        port: z.number().int().min(1).max(65535).default(25),
        secure: z.boolean().default(false),
        from: z.string().min(3),
        user: z.string().optional(),
        password: z.string().optional(),
      })
      .strict()
      .optional(),
    capacity: z.array(capacityItemSchema).default([]),
    console: z
      .object({ enabled: z.boolean().default(true) })
      .strict()
      .default({}),
  })
  .strict();

export type MonitoringConfig = z.output<typeof monitoringConfigSchema>;
