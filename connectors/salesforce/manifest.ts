import type { ConnectorManifest } from "../contract";

/**
 * Salesforce connector manifest: data only. Defaults here are pinned by `salesforce.test.ts`.
 * Docs: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_rest.htm
 */
export const salesforceManifest: ConnectorManifest = {
  id: "salesforce",
  name: "Salesforce",
  version: "1.0.0",
  docsUrl: "https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_rest.htm",
  credentials: [
    {
      mode: "jwt_bearer",
      label: "OAuth 2.0 JWT bearer (server-to-server, recommended)",
      fields: [
        {
          name: "loginUrl",
          label: "Login URL",
          secret: false,
          required: true,
          description: "https://login.salesforce.com or My Domain",
        },
        { name: "clientId", label: "Connected app consumer key", secret: false, required: true },
        { name: "username", label: "Integration user", secret: false, required: true },
        { name: "privateKey", label: "Private key (PEM) of the app certificate", secret: true, required: true },
      ],
    },
    {
      mode: "client_credentials",
      label: "OAuth 2.0 client credentials",
      fields: [
        { name: "loginUrl", label: "My Domain URL", secret: false, required: true },
        { name: "clientId", label: "Consumer key", secret: false, required: true },
        { name: "clientSecret", label: "Consumer secret", secret: true, required: true },
      ],
    },
    {
      mode: "refresh_token",
      label: "OAuth 2.0 refresh token (from a web-server flow)",
      fields: [
        { name: "loginUrl", label: "Login URL", secret: false, required: true },
        { name: "clientId", label: "Consumer key", secret: false, required: true },
        { name: "clientSecret", label: "Consumer secret", secret: true, required: false },
        { name: "refreshToken", label: "Refresh token", secret: true, required: true },
      ],
    },
  ],
  options: [
    { name: "apiVersion", type: "string", default: "62.0", description: "REST API version" },
    {
      name: "leadExternalIdField",
      type: "string",
      default: "Hub_Lead_Id__c",
      description: "External id field on Lead (and Contact) holding the hub lead id",
    },
    {
      name: "taskExternalIdField",
      type: "string",
      default: "Hub_Activity_Id__c",
      description: "External id field on Task holding the hub activity id",
    },
    {
      name: "taskLeadField",
      type: "string",
      default: "Hub_Lead_Id__c",
      description: "Field on Task that carries the hub lead id",
    },
    {
      name: "scoreField",
      type: "string",
      default: "Hub_Score__c",
      description: "Number field on Lead receiving the hub lead score",
    },
    {
      name: "bulkThreshold",
      type: "number",
      default: 2000,
      description: "Writes of at least this many records use Bulk API 2.0; fewer use sObject Collections",
    },
    { name: "queryBatchSize", type: "number", default: 2000, description: "Records per query page (200–2000)" },
    {
      name: "safetyLagSeconds",
      type: "number",
      default: 60,
      description: "Changes newer than now minus this lag wait for the next run (late-committing transactions)",
    },
    {
      name: "maxDailyApiShare",
      type: "number",
      default: 0.5,
      description: "Fraction of the org's daily API requests the hub may use (Sforce-Limit-Info)",
    },
    {
      name: "bulkPollIntervalMs",
      type: "number",
      default: 2000,
      description: "Bulk API 2.0 job status polling interval",
    },
    {
      name: "bulkPollTimeoutMs",
      type: "number",
      default: 600000,
      description: "Give up waiting for a Bulk API 2.0 job after this long",
    },
    { name: "maxAttempts", type: "number", default: 6, description: "Attempts per API call on transient errors" },
    {
      name: "writeMode",
      type: "string",
      default: "auto",
      description: "auto (bulk/collections by volume) or single (one call per record; baseline only)",
    },
  ],
  leads: { object: "Lead", keyOption: "leadExternalIdField" },
  objects: [
    { name: "Lead", directions: ["inbound", "outbound"], description: "Leads: changes in, hub leads and scores out" },
    { name: "Contact", directions: ["inbound"], description: "Contacts" },
    { name: "Account", directions: ["inbound"], description: "Accounts" },
    { name: "Opportunity", directions: ["inbound"], description: "Opportunities" },
    { name: "CampaignMember", directions: ["inbound"], description: "Campaign membership" },
    { name: "Task", directions: ["outbound"], description: "Hub activities written as completed Tasks" },
  ],
};
