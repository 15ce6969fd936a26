import { z } from "zod";
import { definePlugin } from "../../core/plugins/contract";
import { crmConnectorsService } from "./service";

const keyId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'");
const key = z.object({ id: keyId.optional(), key: z.string().min(40).max(100) }).strict();

const config = z
  .object({
    /**
     * Master key of the credential vault (AES-256-GCM). `key`: base64 of 32 random bytes, e.g. in
     * `HUB_PLUGINS='{"crm-connectors":{"vault":{"key":"…"}}}'`; without it a key file is generated
     * at `<dataDir>/crm-connectors.key` (mode 0600) on first start. `previousKeys` keep old
     * credentials readable after a rotation (they are re-encrypted with the current key on use).
     */
    vault: z
      .object({
        key: key.optional(),
        previousKeys: z.array(key).max(10).default([]),
        keyFile: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    groupPrefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/)
      .default("crm-connectors"),
    outboundLingerMs: z.number().int().min(0).max(60_000).default(1_000),
    lockTtlMs: z.number().int().min(1_000).max(600_000).default(60_000),
  })
  .strict();

/** CRM connectors (Salesforce, Dynamics 365): configuration and status API, schedules, two-way sync. */
export const crmConnectorsPlugin = definePlugin({
  manifest: {
    id: "crm-connectors",
    kind: "connector",
    version: "1.0.0",
    description: "Two-way sync with Salesforce and Microsoft Dynamics 365, configured per tenant at /api/v1/connectors",
    config,
    credentials: [
      {
        name: "vault.key",
        description: "Master key encrypting CRM credentials at rest (generated into the data dir when absent)",
        secret: true,
        required: false,
      },
    ],
    roles: ["consumer"],
  },
  services: ({ config: options, hub }) => {
    Object.assign(hub.extensions.apiRoutes, CONNECTOR_ROUTES);
    return [crmConnectorsService(hub, options)];
  },
});

/** REST aliases of the connector configuration and status API under `/api/v1`. */
export const CONNECTOR_ROUTES: Record<string, string> = {
  "GET connector-types": "crmConnectors.types",
  "GET connectors": "crmConnectors.list",
  "POST connectors": "crmConnectors.create",
  "GET connectors/:id": "crmConnectors.get",
  "PATCH connectors/:id": "crmConnectors.update",
  "DELETE connectors/:id": "crmConnectors.remove",
  "POST connectors/:id/test": "crmConnectors.test",
  "POST connectors/:id/enable": "crmConnectors.enable",
  "POST connectors/:id/disable": "crmConnectors.disable",
  "POST connectors/:id/run": "crmConnectors.run",
  "GET connectors/:id/status": "crmConnectors.status",
  "GET connectors/:id/runs": "crmConnectors.history",
};
