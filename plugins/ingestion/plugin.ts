import { z } from "zod";
import { definePlugin } from "../../core/plugins/contract";
import { gatewayService } from "./gateway";
import { intakeService } from "./intake";
import { segmentService } from "./segment-service";

const config = z
  .object({
    /** Extra REST aliases other plugins expose through the gateway. */
    aliases: z.record(z.string()).default({}),
    persistTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  })
  .strict();

/** REST ingestion: the HTTP API, the intake pipeline and Segment-spec intake. */
export const restIngestionPlugin = definePlugin({
  manifest: {
    id: "rest-ingestion",
    kind: "ingestion",
    version: "1.0.0",
    description: "REST and Segment-spec intake, activity history API",
    config,
    roles: ["ingestion"],
  },
  services: ({ config: options, hub }) => [
    gatewayService(hub, options.aliases),
    intakeService(hub, { maxBatch: hub.config.http.maxBatch, persistTimeoutMs: options.persistTimeoutMs }),
    segmentService(),
  ],
});
