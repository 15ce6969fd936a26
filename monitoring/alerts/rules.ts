import { z } from "zod";

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9 _.:\-/()]{0,99}$/, "1-100 letters, digits, spaces and _ . : - / ( )");
const metric = z.string().regex(/^[A-Za-z0-9\-_./]{1,200}$/, "an OpenTSDB metric name");
const tagMap = z.record(z.string().regex(/^[A-Za-z0-9\-_./]{1,100}$/), z.string().regex(/^[A-Za-z0-9\-_./]{1,200}$/));

export const SEVERITIES = ["critical", "warning", "info"] as const;
export type Severity = (typeof SEVERITIES)[number];

export const seriesQuerySchema = z
  .object({
    metric,
    tags: tagMap.optional(),
    groupBy: z
      .array(z.string().regex(/^[A-Za-z0-9\-_./]{1,100}$/))
      .max(7)
      .optional(),
    aggregator: z.enum(["sum", "avg", "min", "max"]).default("avg"),
    /** Evaluation window (ms). */
    windowMs: z
      .number()
      .int()
      .min(1000)
      .max(7 * 86_400_000)
      .default(60_000),
  })
  .strict();

export type RuleQuery = z.output<typeof seriesQuerySchema>;

const comparison = z.enum([">", ">=", "<", "<="]);

const common = {
  name,
  description: z.string().max(1000).default(""),
  severity: z.enum(SEVERITIES).default("warning"),
  labels: tagMap.default({}),
  /** How long a condition must hold before the alert fires (the pending period). */
  forMs: z.number().int().min(0).max(86_400_000).default(0),
  /** Label keys that group this rule's alerts into one notification (default: the rule). */
  groupBy: z.array(z.string()).max(8).default([]),
  notify: z
    .object({
      webhooks: z.array(z.string().url()).max(10).default([]),
      emails: z.array(z.string().email()).max(20).default([]),
    })
    .strict()
    .default({}),
  enabled: z.boolean().default(true),
};

/** An alert rule; `kind` says how the query's series are judged. */
export const ruleInputSchema = z.discriminatedUnion("kind", [
  z
    .object({
      kind: z.literal("threshold"),
      query: seriesQuerySchema,
      op: comparison,
      value: z.number().finite(),
      ...common,
    })
    .strict(),
  z
    .object({
      kind: z.literal("rate"),
      query: seriesQuerySchema,
      op: comparison,
      /** Change per second over the window. */
      value: z.number().finite(),
      ...common,
    })
    .strict(),
  z
    .object({
      kind: z.literal("absence"),
      query: seriesQuerySchema,
      /** No point for this long fires the alert. */
      absentForMs: z
        .number()
        .int()
        .min(1000)
        .max(7 * 86_400_000),
      ...common,
    })
    .strict(),
  z
    .object({
      kind: z.literal("burn_rate"),
      /** Cumulative counters of bad events and of all events. */
      errors: seriesQuerySchema,
      total: seriesQuerySchema,
      /** SLO target, e.g. 0.999. */
      objective: z.number().gt(0).lt(1),
      /** Multi-window burn rate (Google SRE): both windows must burn faster than `factor`. */
      longWindowMs: z.number().int().min(60_000).default(3_600_000),
      shortWindowMs: z.number().int().min(10_000).default(300_000),
      factor: z.number().positive().default(14.4),
      ...common,
    })
    .strict(),
]);

export type RuleInput = z.input<typeof ruleInputSchema>;
export type RuleSpec = z.output<typeof ruleInputSchema>;
export type Rule = RuleSpec & { id: string; createdAt: string; updatedAt: string };

/** Rules every hub starts with (ids fixed, so an operator's edits survive restarts). */
export function defaultRules(): Array<{ id: string; spec: RuleInput }> {
  return [
    {
      id: "consumer-lag",
      spec: {
        kind: "threshold",
        name: "Consumer group lagging",
        description: "A consumer group is more than 10 s behind the intake: campaigns and reports see stale data.",
        query: { metric: "hub.queue.lag.seconds", groupBy: ["group"], aggregator: "max", windowMs: 10_000 },
        op: ">",
        value: 10,
        severity: "critical",
        labels: { team: "platform", sla: "freshness" },
        groupBy: ["group"],
      },
    },
    {
      id: "consumer-stalled",
      spec: {
        kind: "threshold",
        name: "Consumer group stalled",
        description:
          "Burrow status STALL (2) or STOP (3): the group's committed offset stands still while messages wait.",
        query: { metric: "hub.queue.lag.status", groupBy: ["group"], aggregator: "max", windowMs: 10_000 },
        op: ">=",
        value: 2,
        severity: "warning",
        labels: { team: "platform" },
      },
    },
    {
      id: "intake-latency",
      spec: {
        kind: "threshold",
        name: "Intake to store p99 above 1 s",
        query: { metric: "hub.sla.intake_to_store.ms.p99", groupBy: ["tenant"], aggregator: "max", windowMs: 60_000 },
        op: ">",
        value: 1000,
        forMs: 60_000,
        severity: "warning",
        labels: { team: "platform", sla: "intake" },
      },
    },
    {
      id: "engine-down",
      spec: {
        kind: "threshold",
        name: "Engine down",
        query: { metric: "hub.engine.up", groupBy: ["engine"], aggregator: "min", windowMs: 15_000 },
        op: "<",
        value: 1,
        forMs: 10_000,
        severity: "critical",
        labels: { team: "platform" },
      },
    },
    {
      id: "metrics-dropped",
      spec: {
        kind: "rate",
        name: "Metric points dropped",
        description: "The metrics sink has been away long enough for the publisher's buffer to overflow.",
        query: { metric: "hub.monitoring.publisher.dropped", aggregator: "sum", windowMs: 60_000 },
        op: ">",
        value: 0,
        severity: "warning",
        labels: { team: "platform" },
      },
    },
    {
      id: "intake-error-budget",
      spec: {
        kind: "burn_rate",
        name: "Intake error budget burning",
        errors: {
          metric: "moleculer.request.error.total",
          tags: { action: "intake.ingest" },
          aggregator: "sum",
          windowMs: 60_000,
        },
        total: {
          metric: "moleculer.request.total",
          tags: { action: "intake.ingest" },
          aggregator: "sum",
          windowMs: 60_000,
        },
        objective: 0.999,
        severity: "critical",
        labels: { team: "platform", sla: "intake" },
      },
    },
  ];
}
