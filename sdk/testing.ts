import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newActivityId } from "../core/activity/ids";
import { ACTIVITY_SCHEMA_VERSION, type Activity } from "../core/activity/model";
import { activityRecord } from "../core/activity/serialize";
import type { HubConfigOverrides } from "../core/config/load";
import type { HubPlugin } from "../core/plugins/contract";
import { createHub, type Hub } from "../core/runtime";
import type { Principal } from "../core/tenancy/directory";
import type { QueueMessage, Subscription } from "../plugins/queue/contract";
import type { ConsumerPlugin, DeliveryReport } from "./consumer";

/** An activity for tests: everything but `type` gets a sensible default. */
export type ActivityFixture = Partial<Activity> & Pick<Activity, "type">;

export const TEST_TENANT = "tn_test";

/** Completes a fixture into a stored-shape activity (id, tenant, times, source, schema version). */
export function fixtureActivity(fixture: ActivityFixture): Activity {
  const now = new Date().toISOString();
  const activity: Activity = {
    id: newActivityId(Date.now()),
    tenantId: TEST_TENANT,
    source: "web",
    occurredAt: now,
    receivedAt: now,
    attributes: {},
    schemaVersion: ACTIVITY_SCHEMA_VERSION,
    ...fixture,
  };
  if (activity.leadId === undefined && activity.anonymousId === undefined) activity.leadId = "lead-1";
  return activity;
}

/** A principal with every scope, for calling a consumer's actions as a tenant. */
export function testPrincipal(tenantId = TEST_TENANT, settings: Principal["settings"] = {}): Principal {
  return {
    tenantId,
    keyId: "key_test",
    kind: "api",
    scopes: ["read", "ingest", "admin"],
    quota: { rate: 1e9, burst: 1e9 },
    settings,
  };
}

export interface ConsumerHarness {
  readonly hub: Hub;
  readonly dataDir: string;
  /**
   * Stores the activities (so history look-ups see them), puts them on the activity topic and
   * resolves once the consumer has committed them, with the reports of every `handle` call.
   */
  deliver(fixtures: ActivityFixture[], options?: { store?: boolean; timeoutMs?: number }): Promise<DeliveryReport[]>;
  /** Calls one of the consumer's actions as a tenant. */
  call<T>(action: string, params?: unknown, principal?: Principal): Promise<T>;
  /** Everything the consumer dead-lettered so far. */
  deadLetters(): QueueMessage[];
  /** Stops the hub and deletes its data directory (unless it was given). */
  stop(): Promise<void>;
}

/**
 * Runs a consumer in-process on the embedded queue and store in a temporary folder: no HTTP, no
 * servers, the same delivery path as production.
 */
export async function startConsumerHarness(
  consumer: ConsumerPlugin,
  options: { config?: unknown; plugins?: HubPlugin[]; dataDir?: string; hub?: HubConfigOverrides } = {},
): Promise<ConsumerHarness> {
  const owned = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), `consumer-${consumer.consumerId}-`));
  const hub = createHub(
    {
      plugins: [consumer, ...(options.plugins ?? [])],
      config: {
        logLevel: "warn",
        ...options.hub,
        roles: ["consumer"],
        plugins: {
          ...options.hub?.plugins,
          ...(options.config !== undefined ? { [consumer.consumerId]: options.config } : {}),
        },
      },
    },
    { HUB_DATA_DIR: dataDir },
  );
  await hub.start();
  const queue = await hub.services.queue();
  const store = await hub.services.store();
  const deadLetters: QueueMessage[] = [];
  const dlq: Subscription = await queue.subscribe({
    group: `harness-dlq-${randomUUID()}`,
    topic: hub.config.topics.deadLetter,
    handler: async (batch) => {
      deadLetters.push(...batch);
    },
  });

  async function settled(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lag = await queue.lag(consumer.group, hub.config.topics.activities);
      if (lag.every((p) => p.lag === 0)) return;
      if (Date.now() > deadline)
        throw new Error(`consumer '${consumer.consumerId}' did not commit within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  return {
    hub,
    dataDir,
    async deliver(fixtures, deliverOptions = {}) {
      const activities = fixtures.map(fixtureActivity);
      const reports: DeliveryReport[] = [];
      const unobserve = consumer.observe((report) => reports.push(report));
      try {
        if (deliverOptions.store !== false) await store.put(activities);
        await queue.publish(
          hub.config.topics.activities,
          // As in the hub: consumers get the intake's frozen objects, so a handler that mutates
          // an activity fails here too.
          activities.map(activityRecord),
        );
        await settled(deliverOptions.timeoutMs ?? 10_000);
        return reports;
      } finally {
        unobserve();
      }
    },
    call<T>(action: string, params: unknown = {}, principal: Principal = testPrincipal()): Promise<T> {
      const name = action.includes(".") ? action : `${consumer.serviceName}.${action}`;
      return hub.broker.call(name, params, { meta: { principal } }) as Promise<T>;
    },
    deadLetters: () => [...deadLetters],
    async stop() {
      await dlq.stop();
      await hub.stop();
      if (owned) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
