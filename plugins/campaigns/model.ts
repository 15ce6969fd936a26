import { z } from "zod";

export const CONSTRAINT_OPS = [
  "equals",
  "not_equals",
  "contains",
  "not_contains",
  "starts_with",
  "ends_with",
  "regex",
  "gt",
  "gte",
  "lt",
  "lte",
  "in",
  "not_in",
  "exists",
  "not_exists",
] as const;
export type ConstraintOp = (typeof CONSTRAINT_OPS)[number];

const scalar = z.union([z.string().max(2048), z.number(), z.boolean()]);

/** A test on one value: an activity attribute (dotted path into `attributes`) or a lead field. */
export const constraintSchema = z
  .object({
    /** Dotted path, e.g. `url` or `enrichment.utm.source`. */
    attribute: z.string().min(1).max(200),
    op: z.enum(CONSTRAINT_OPS),
    value: z.union([scalar, z.array(scalar).max(1000)]).optional(),
    /** String comparisons ignore case unless false (default true). */
    ignoreCase: z.boolean().default(true),
  })
  .strict()
  .superRefine((c, ctx) => {
    const needsList = c.op === "in" || c.op === "not_in";
    const needsNone = c.op === "exists" || c.op === "not_exists";
    if (needsNone) return;
    if (c.value === undefined) ctx.addIssue({ code: "custom", path: ["value"], message: `is required for '${c.op}'` });
    else if (needsList !== Array.isArray(c.value))
      ctx.addIssue({
        code: "custom",
        path: ["value"],
        message: needsList ? "must be a list" : "must be a single value",
      });
    else if (["gt", "gte", "lt", "lte"].includes(c.op) && typeof c.value !== "number")
      ctx.addIssue({ code: "custom", path: ["value"], message: "must be a number" });
    else if (c.op === "regex") {
      if (typeof c.value !== "string" || c.value.length > 200)
        ctx.addIssue({ code: "custom", path: ["value"], message: "must be a pattern of at most 200 characters" });
      else {
        try {
          new RegExp(c.value);
        } catch {
          ctx.addIssue({ code: "custom", path: ["value"], message: "is not a valid regular expression" });
        }
      }
    }
  });
export type Constraint = z.infer<typeof constraintSchema>;

const activityType = z.string().regex(/^[a-z][a-z0-9_]{1,63}$/, "must be an activity type name");

export const triggerSchema = z
  .object({ activityType, constraints: z.array(constraintSchema).max(20).default([]) })
  .strict();
export type Trigger = z.infer<typeof triggerSchema>;

export const filterSchema = z.discriminatedUnion("kind", [
  z
    .object({
      kind: z.literal("history"),
      activityType,
      constraints: z.array(constraintSchema).max(10).default([]),
      /** Window before the triggering activity. */
      withinDays: z.number().positive().max(3650),
      /** At least this many matching activities (default 1). */
      min: z.number().int().min(0).max(1000).default(1),
      /** At most this many (e.g. `max: 0` = "has not"). */
      max: z.number().int().min(0).max(1000).optional(),
    })
    .strict(),
  z.object({ kind: z.literal("field"), constraint: constraintSchema }).strict(),
  z.object({ kind: z.literal("list"), listId: z.string().min(1).max(200), member: z.boolean().default(true) }).strict(),
  z.object({ kind: z.literal("score"), op: z.enum(["equals", "gt", "gte", "lt", "lte"]), value: z.number() }).strict(),
]);
export type LeadFilter = z.infer<typeof filterSchema>;

export const qualificationSchema = z.discriminatedUnion("mode", [
  z.object({ mode: z.literal("once") }).strict(),
  z.object({ mode: z.literal("every_time") }).strict(),
  z.object({ mode: z.literal("once_per"), days: z.number().positive().max(3650) }).strict(),
]);
export type Qualification = z.infer<typeof qualificationSchema>;

/** A flow step as sent; its options are checked by the registered step type. */
export const stepSchema = z.object({ type: z.string().min(1).max(64) }).passthrough();
export type StepInput = z.infer<typeof stepSchema>;

export const campaignInputSchema = z
  .object({
    name: z.string().min(1).max(200),
    description: z.string().max(2000).optional(),
    /** Any of these fires the campaign. */
    triggers: z.array(triggerSchema).min(1).max(10),
    /** All of these must hold for the lead. */
    filters: z.array(filterSchema).max(20).default([]),
    qualification: qualificationSchema.default({ mode: "once" }),
    steps: z.array(stepSchema).min(1).max(50),
  })
  .strict();
export type CampaignInput = z.infer<typeof campaignInputSchema>;

export type CampaignStatus = "active" | "inactive";

export interface Campaign extends CampaignInput {
  id: string;
  tenantId: string;
  status: CampaignStatus;
  version: number;
  createdAt: string;
  updatedAt: string;
}
