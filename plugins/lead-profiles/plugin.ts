import type { Context } from "moleculer";
import { z } from "zod";
import { leadKeyOf } from "../../core/activity/model";
import { activityOf } from "../../core/activity/serialize";
import { NotFoundError } from "../../core/errors";
import { principalOf, type RequestMeta } from "../../core/middleware/scopes";
import { definePlugin } from "../../core/plugins/contract";
import type { Subscription } from "../queue/contract";
import { LeadProfiles } from "./profiles";

const config = z
  .object({
    group: z.string().min(1).default("lead-profiles"),
    /**
     * Messages per partition and handler call. Large, so that a consumer that fell behind folds
     * many activities per lead into one upsert and catches up; with 500 it read the queue slower
     * than a saturated intake wrote it, fell out of the queue's in-memory tail and stayed behind.
     */
    maxBatch: z.number().int().min(1).max(50_000).default(5000),
    /** How long applied activity ids are remembered to recognise redeliveries. */
    dedupWindowHours: z
      .number()
      .min(1)
      .max(24 * 365)
      .default(168),
  })
  .strict();

/** The first consumer: keeps per-lead counters and the last activity, from the queue. */
export const leadProfilesPlugin = definePlugin({
  manifest: {
    id: "lead-profiles",
    kind: "consumer",
    version: "1.0.0",
    description: "Per-lead activity counters and last activity, readable at GET /api/v1/leads/{leadId}",
    config,
    roles: ["consumer"],
  },
  services: ({ config: options, hub }) => {
    let profiles: LeadProfiles | undefined;
    let subscription: Subscription | undefined;
    hub.extensions.apiRoutes["GET leads/:leadId"] = "leadProfiles.get";
    return [
      {
        name: "leadProfiles",
        actions: {
          get: {
            scope: "read",
            handler(ctx: Context<{ params?: { leadId?: string } }, RequestMeta>) {
              const leadId = ctx.params.params?.leadId ?? "";
              const key = leadId.startsWith("anon:") ? leadId : leadKeyOf({ leadId });
              const profile = profiles?.get(principalOf(ctx).tenantId, key);
              if (!profile) throw new NotFoundError(`No profile for lead '${leadId}'`, "lead_not_found");
              return profile;
            },
          },
        },
        async started() {
          profiles = await LeadProfiles.open(hub.config.dataDir, {
            dedupWindowMs: options.dedupWindowHours * 3600 * 1000,
          });
          const queue = await hub.queue();
          subscription = await queue.subscribe({
            group: options.group,
            topic: hub.config.topics.activities,
            maxBatch: options.maxBatch,
            handler: (batch) => profiles!.apply(batch.map(activityOf)),
          });
        },
        async stopped() {
          await subscription?.stop();
          await profiles?.close();
        },
      },
    ];
  },
});
