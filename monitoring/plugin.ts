import { definePlugin } from "../core/plugins/contract";
import { monitoringConfigSchema } from "./config";
import { monitoringService } from "./service";

/**
 * The built-in monitoring plugin: publishes every metric of the node (the shared library's and
 * Moleculer's own) to the metrics sink, runs the collectors, and on control nodes the alert
 * engine, the monitoring API (`/api/v1/monitoring/*`) and the console (`/console/`).
 */
export const monitoringPlugin = definePlugin({
  manifest: {
    id: "monitoring",
    kind: "monitoring",
    version: "1.0.0",
    description:
      "Metrics publishing (embedded store or OpenTSDB), collectors, SLA alerts, capacity forecasts and the console",
    config: monitoringConfigSchema,
    roles: ["ingestion", "consumer", "control"],
  },
  services: ({ config, hub }) => [monitoringService(hub, config)],
});
