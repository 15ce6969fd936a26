import type { ConnectorManifest } from "../contract";

/**
 * Microsoft Dynamics 365 (Dataverse Web API, OData v4) connector manifest: data only.
 * Docs: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/overview
 */
export const dynamicsManifest: ConnectorManifest = {
  id: "dynamics",
  name: "Microsoft Dynamics 365",
  version: "1.0.0",
  docsUrl: "https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/overview",
  credentials: [
    {
      mode: "client_credentials",
      label: "OAuth 2.0 client credentials (Entra ID application user)",
      fields: [
        {
          name: "environmentUrl",
          label: "Environment URL",
          secret: false,
          required: true,
          description: "https://<org>.crm.dynamics.com",
        },
        {
          name: "authorityUrl",
          label: "Authority",
          secret: false,
          required: true,
          description: "https://login.microsoftonline.com",
        },
        { name: "tenantId", label: "Directory (tenant) id", secret: false, required: true },
        { name: "clientId", label: "Application (client) id", secret: false, required: true },
        { name: "clientSecret", label: "Client secret", secret: true, required: true },
      ],
    },
  ],
  options: [
    { name: "apiVersion", type: "string", default: "9.2", description: "Web API version" },
    {
      name: "leadAlternateKey",
      type: "string",
      default: "hub_leadid",
      description: "Alternate key column on lead used for upserts (e.g. hub_leadid or emailaddress1)",
    },
    {
      name: "activityEntity",
      type: "string",
      default: "tasks",
      description: "Activity entity set receiving hub activities (tasks, phonecalls, …)",
    },
    {
      name: "activityAlternateKey",
      type: "string",
      default: "hub_activityid",
      description: "Alternate key column on the activity entity holding the hub activity id",
    },
    {
      name: "activityLeadField",
      type: "string",
      default: "hub_leadid",
      description: "Column on the activity entity that carries the hub lead id",
    },
    {
      name: "scoreField",
      type: "string",
      default: "hub_score",
      description: "Number column on lead receiving the hub lead score",
    },
    {
      name: "batchSize",
      type: "number",
      default: 1000,
      description: "Operations per $batch request (Dataverse maximum: 1,000)",
    },
    {
      name: "batchMode",
      type: "string",
      default: "changeset",
      description: "changeset (atomic, isolates failures with one extra call) or independent (continue-on-error)",
    },
    { name: "pageSize", type: "number", default: 5000, description: "odata.maxpagesize for inbound reads" },
    { name: "maxAttempts", type: "number", default: 6, description: "Attempts per API call on 429 / transient errors" },
    {
      name: "maxRetryAfterSeconds",
      type: "number",
      default: 300,
      description: "Longest Retry-After the connector waits in-line before giving the run up",
    },
    {
      name: "writeMode",
      type: "string",
      default: "auto",
      description: "auto ($batch) or single (one call per record; baseline only)",
    },
  ],
  leads: { object: "leads", keyOption: "leadAlternateKey" },
  objects: [
    { name: "leads", directions: ["inbound", "outbound"], description: "Leads: changes in, hub leads and scores out" },
    { name: "contacts", directions: ["inbound"], description: "Contacts" },
    { name: "accounts", directions: ["inbound"], description: "Accounts" },
    { name: "opportunities", directions: ["inbound"], description: "Opportunities" },
    { name: "tasks", directions: ["outbound"], description: "Hub activities as task activity records" },
    { name: "phonecalls", directions: ["outbound"], description: "Hub activities as phone call activity records" },
  ],
};

/** Primary key column of each supported entity set. */
export const PRIMARY_KEYS: Readonly<Record<string, string>> = {
  leads: "leadid",
  contacts: "contactid",
  accounts: "accountid",
  opportunities: "opportunityid",
  tasks: "activityid",
  phonecalls: "activityid",
};
