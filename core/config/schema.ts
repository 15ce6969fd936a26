import { z } from "zod";

export const PROFILES = ["embedded", "stack", "production"] as const;
export type Profile = (typeof PROFILES)[number];

export const ROLES = ["ingestion", "consumer", "control"] as const;
export type Role = (typeof ROLES)[number];

const part = z.union([
  z.string().min(1),
  z.object({ type: z.string().min(1), options: z.record(z.unknown()).optional() }).strict(),
]);

/** The hub's configuration; every field is documented in docs/configuration.md. */
export const hubConfigSchema = z
  .object({
    profile: z.enum(PROFILES),
    nodeId: z.string().min(1).optional(),
    roles: z.array(z.enum(ROLES)).min(1),
    dataDir: z.string().min(1),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]),
    transporter: z.string().min(1).nullable(),
    http: z
      .object({
        host: z.string().min(1),
        port: z.number().int().min(0).max(65535),
        maxBodyBytes: z
          .number()
          .int()
          .min(1024)
          .max(16 * 1024 * 1024),
        maxBatch: z.number().int().min(1).max(10_000),
      })
      .strict(),
    queue: part,
    store: part,
    topics: z.object({ activities: z.string().min(1), deadLetter: z.string().min(1) }).strict(),
    quota: z.object({ rate: z.number().positive(), burst: z.number().min(1) }).strict(),
    reconciler: z
      .object({
        /** Pass interval; 0 disables the schedule (passes still run on demand). */
        intervalMs: z.number().int().min(0),
        graceMs: z.number().int().min(0),
        lookbackMs: z.number().int().min(60_000),
      })
      .strict(),
    /** Platform-operator token for `/api/v1/admin/*`; without it those routes answer 401. */
    adminToken: z.string().min(24).optional(),
    /** Per-plugin configuration, by plugin id; each plugin validates its own part. */
    plugins: z.record(z.unknown()),
  })
  .strict();

export type HubConfig = z.infer<typeof hubConfigSchema>;

/** Defaults per profile; the stack profile points at the servers `npm run stack:up` starts. */
export function profileDefaults(profile: Profile): HubConfig {
  const common = {
    profile,
    roles: [...ROLES],
    dataDir: ".data",
    logLevel: "info" as const,
    http: { host: "127.0.0.1", port: 8800, maxBodyBytes: 1024 * 1024, maxBatch: 1000 },
    topics: { activities: "hub.activities", deadLetter: "hub.activities.dlq" },
    quota: { rate: 100_000, burst: 200_000 },
    reconciler: { intervalMs: 60_000, graceMs: 30_000, lookbackMs: 3_600_000 },
    plugins: {},
  };
  switch (profile) {
    case "embedded":
      return { ...common, transporter: null, queue: "embedded", store: "embedded" };
    case "stack":
      return {
        ...common,
        transporter: "nats://127.0.0.1:4222",
        queue: { type: "kafka", options: { brokers: ["127.0.0.1:9092"] } },
        store: { type: "hbase", options: { url: "http://127.0.0.1:8080" } },
      };
    case "production":
      return {
        ...common,
        http: { ...common.http, host: "0.0.0.0" },
        transporter: "nats://127.0.0.1:4222",
        queue: { type: "kafka", options: { brokers: ["127.0.0.1:9092"] } },
        store: { type: "hbase", options: { url: "http://127.0.0.1:8080" } },
      };
  }
}
