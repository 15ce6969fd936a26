/**
 * One-call harness for tests and benchmarks: a fake CRM server, a SyncEngine with a state store,
 * a vault and an in-memory emit sink, and a ready connector config.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { FakeDynamicsServer, type FakeDynamicsOptions } from "../../../test/fakes/dynamics-server";
import { FakeSalesforceServer, type FakeSalesforceOptions } from "../../../test/fakes/salesforce-server";
import type { Credentials } from "../../contract";
import type { CrmSyncActivity, OutboundItem, OutboundSource } from "../activity";
import { BudgetRegistry, type RateBudget } from "../budget";
import type { ConnectorInstanceConfig } from "../config";
import { SyncEngine } from "../engine";
import { MemoryStateStore, type ConnectorStateStore } from "../state-store";
import { AesGcmCredentialVault } from "../vault";

export interface HarnessOptions {
  store?: ConnectorStateStore;
  vaultKey?: Buffer;
  budget?: RateBudget;
  emit?: (activities: readonly CrmSyncActivity[]) => Promise<void>;
  options?: Record<string, string | number | boolean>;
  config?: Partial<ConnectorInstanceConfig>;
}

export interface Harness<F> {
  fake: F;
  engine: SyncEngine;
  store: ConnectorStateStore;
  vault: AesGcmCredentialVault;
  emitted: CrmSyncActivity[];
  config: ConnectorInstanceConfig;
  credentials: Credentials;
  close(): Promise<void>;
}

function build<F extends { close(): Promise<void> }>(
  fake: F,
  base: ConnectorInstanceConfig,
  credentials: Credentials,
  options: HarnessOptions,
): Harness<F> {
  const store = options.store ?? new MemoryStateStore();
  const vault = new AesGcmCredentialVault(store, { id: "k1", key: options.vaultKey ?? randomBytes(32) });
  const emitted: CrmSyncActivity[] = [];
  const engine = new SyncEngine({
    store,
    vault,
    emit:
      options.emit ??
      (async (activities) => {
        for (const activity of activities) emitted.push(activity);
      }),
    budgets: new BudgetRegistry({
      salesforce: options.budget ?? { callsPerSecond: 10_000, burst: 10_000 },
      dynamics: options.budget ?? { callsPerSecond: 10_000, burst: 10_000 },
    }),
    lockTtlMs: 5_000,
  });
  const config: ConnectorInstanceConfig = {
    ...base,
    ...options.config,
    options: { ...base.options, ...options.options, ...options.config?.options },
  };
  return { fake, engine, store, vault, emitted, config, credentials, close: () => fake.close() };
}

export async function salesforceHarness(
  options: HarnessOptions & {
    fake?: FakeSalesforceOptions;
    mode?: "jwt_bearer" | "client_credentials" | "refresh_token";
  } = {},
): Promise<Harness<FakeSalesforceServer>> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const fake = await FakeSalesforceServer.start({ jwtPublicKey: publicKey, ...options.fake });
  const mode = options.mode ?? "jwt_bearer";
  const values: Record<string, string> =
    mode === "jwt_bearer"
      ? {
          loginUrl: fake.url,
          clientId: fake.clientId,
          username: fake.username,
          privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
        }
      : mode === "client_credentials"
        ? { loginUrl: fake.url, clientId: fake.clientId, clientSecret: fake.clientSecret }
        : {
            loginUrl: fake.url,
            clientId: fake.clientId,
            clientSecret: fake.clientSecret,
            refreshToken: fake.refreshToken,
          };
  const base: ConnectorInstanceConfig = {
    instanceId: "sf-1",
    tenantId: "tenant-a",
    connector: "salesforce",
    enabled: true,
    schedule: "*/5 * * * *",
    options: { safetyLagSeconds: 0, bulkPollIntervalMs: 20, queryBatchSize: 2000 },
    conflictRule: "newest-wins",
    mappings: [
      { object: "Lead", crmField: "Email", leadField: "email", type: "string", direction: "both" },
      { object: "Lead", crmField: "LastName", leadField: "lastName", type: "string", direction: "both" },
      { object: "Lead", crmField: "Company", leadField: "company", type: "string", direction: "both" },
      { object: "Lead", crmField: "Hub_Score__c", leadField: "crmScore", type: "number", direction: "inbound" },
      { object: "Contact", crmField: "Email", leadField: "email", type: "string", direction: "inbound" },
      {
        object: "CampaignMember",
        crmField: "Status",
        leadField: "campaignStatus",
        type: "string",
        direction: "inbound",
      },
      {
        object: "Opportunity",
        crmField: "Amount",
        leadField: "opportunityAmount",
        type: "number",
        direction: "inbound",
      },
    ],
    inbound: { objects: ["Lead"], leadIdFields: { Lead: "Hub_Lead_Id__c", CampaignMember: "LeadId" } },
    outbound: { leads: true, activities: true, scores: true, batchSize: 5000 },
  };
  return build(fake, base, { mode, values }, options);
}

export async function dynamicsHarness(
  options: HarnessOptions & { fake?: FakeDynamicsOptions } = {},
): Promise<Harness<FakeDynamicsServer>> {
  const fake = await FakeDynamicsServer.start(options.fake);
  const base: ConnectorInstanceConfig = {
    instanceId: "dyn-1",
    tenantId: "tenant-b",
    connector: "dynamics",
    enabled: true,
    schedule: "*/5 * * * *",
    options: { pageSize: 5000 },
    conflictRule: "newest-wins",
    mappings: [
      { object: "leads", crmField: "emailaddress1", leadField: "email", type: "string", direction: "both" },
      { object: "leads", crmField: "lastname", leadField: "lastName", type: "string", direction: "both" },
      { object: "leads", crmField: "hub_score", leadField: "crmScore", type: "number", direction: "inbound" },
      { object: "contacts", crmField: "emailaddress1", leadField: "email", type: "string", direction: "inbound" },
    ],
    inbound: { objects: ["leads"], leadIdFields: { leads: "hub_leadid", contacts: "hub_leadid" } },
    outbound: { leads: true, activities: true, scores: true, batchSize: 5000 },
  };
  const credentials: Credentials = {
    mode: "client_credentials",
    values: {
      environmentUrl: fake.url,
      authorityUrl: fake.url,
      tenantId: fake.tenantId,
      clientId: fake.clientId,
      clientSecret: fake.clientSecret,
    },
  };
  return build(fake, base, credentials, options);
}

/** A deterministic outbound stream of `count` activities (position = zero-padded index). */
export function activityStream(count: number, tenantId: string, prefix = "act"): OutboundSource {
  return async function* (after: string | undefined): AsyncIterable<OutboundItem> {
    const start = after === undefined ? 0 : Number(after) + 1;
    for (let i = start; i < count; i++) {
      yield {
        position: String(i).padStart(10, "0"),
        kind: "activity",
        activity: {
          id: `${prefix}-${i}`,
          tenantId,
          leadId: `lead-${i % 1000}`,
          type: "visit_web_page",
          source: "web",
          occurredAt: new Date(1_700_000_000_000 + i * 1000).toISOString(),
          attributes: { url: `https://example.com/p/${i}` },
        },
      };
    }
  };
}

/** An outbound item without its position (distributes over the union). */
export type OutboundPayload = OutboundItem extends infer T
  ? T extends OutboundItem
    ? Omit<T, "position">
    : never
  : never;

/** An outbound stream from a fixed list (position = index). */
export function listStream(items: readonly OutboundPayload[]): OutboundSource {
  return async function* (after: string | undefined): AsyncIterable<OutboundItem> {
    const start = after === undefined ? 0 : Number(after) + 1;
    for (let i = start; i < items.length; i++) {
      const item = items[i];
      const position = String(i).padStart(10, "0");
      if (item.kind === "activity") yield { position, kind: "activity", activity: item.activity };
      else if (item.kind === "lead") yield { position, kind: "lead", lead: item.lead };
      else yield { position, kind: "score", score: item.score };
    }
  };
}
