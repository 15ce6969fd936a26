import { join } from "node:path";
import type { ActivityQueue, QueueMessage } from "../../plugins/queue/contract";
import type { ActivityStore } from "../../plugins/store/contract";
import type { Activity } from "../activity/model";
import { activityRecord } from "../activity/serialize";
import { openSqlite, type SqliteDatabase } from "../sqlite";

export interface ReconcileReport {
  /** Queue messages checked against the store in this pass. */
  checked: number;
  /** Activities found in the queue but not in the store, now written to the store. */
  repairedToStore: number;
  /** Store activities checked against what the queue delivered. */
  storeChecked: number;
  /** Activities found in the store but never in the queue, now published. */
  repairedToQueue: number;
  startedAt: string;
  finishedAt: string;
}

export interface ReconcilerOptions {
  dataDir: string;
  topic: string;
  /** Consumer group of the reconciler's queue pass. */
  group?: string;
  /** Store activities younger than this are not judged yet: their publish may still be in flight. */
  graceMs?: number;
  /** How far back the store → queue check looks. */
  lookbackMs?: number;
}

/**
 * Finds and repairs divergence between the queue and the store. The intake writes both in
 * parallel, so a crash or an engine failure between the two can leave an activity (never
 * acknowledged to the client) in only one of them:
 *
 * - queue → store: a consumer group reads every queued activity once and writes the ones the
 *   store lacks (idempotent put by id); the ids it saw are kept for `lookbackMs`.
 * - store → queue: activities the store received in the look-back window (minus a grace period)
 *   that the queue pass never saw are published again. Consumers are at-least-once and
 *   de-duplicate by id, so a rare double publish is harmless; a missing one would not be.
 */
export class Reconciler {
  private readonly db: SqliteDatabase;
  private running?: Promise<ReconcileReport>;

  constructor(
    private readonly queue: ActivityQueue,
    private readonly store: ActivityStore,
    private readonly options: ReconcilerOptions,
  ) {
    this.db = openSqlite(join(options.dataDir, "reconciler.db"));
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS seen (tenant_id TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, id)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS seen_by_time ON seen (at);
      CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `);
  }

  close(): void {
    this.db.close();
  }

  /** One pass; concurrent callers share the pass in progress. */
  run(tenants: string[]): Promise<ReconcileReport> {
    this.running ??= this.pass(tenants).finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(tenants: string[]): Promise<ReconcileReport> {
    const startedAt = new Date().toISOString();
    const report: ReconcileReport = {
      checked: 0,
      repairedToStore: 0,
      storeChecked: 0,
      repairedToQueue: 0,
      startedAt,
      finishedAt: startedAt,
    };
    await this.queueToStore(report);
    await this.storeToQueue(tenants, report);
    report.finishedAt = new Date().toISOString();
    return report;
  }

  /** Reads the queue from the reconciler group's offsets up to the end offsets seen at the start. */
  private async queueToStore(report: ReconcileReport): Promise<void> {
    const group = this.options.group ?? "hub-reconciler";
    const targets = new Map((await this.queue.lag(group, this.options.topic)).map((p) => [p.partition, BigInt(p.end)]));
    const pending = new Set([...targets].filter(([, end]) => end > 0n).map(([partition]) => partition));
    for (const p of await this.queue.lag(group, this.options.topic))
      if (BigInt(p.committed) >= BigInt(p.end)) pending.delete(p.partition);
    if (pending.size === 0) return;
    const markSeen = this.db.prepare("INSERT OR IGNORE INTO seen (tenant_id, id, at) VALUES (?, ?, ?)");
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const subscription = await this.queue.subscribe({
      group,
      topic: this.options.topic,
      maxBatch: 2000,
      handler: async (batch: QueueMessage[]) => {
        const byTenant = new Map<string, Activity[]>();
        for (const message of batch) {
          const activity = JSON.parse(message.value) as Activity;
          const list = byTenant.get(activity.tenantId);
          if (list) list.push(activity);
          else byTenant.set(activity.tenantId, [activity]);
        }
        for (const [tenantId, activities] of byTenant) {
          const existing = await this.store.existing(
            tenantId,
            activities.map((a) => a.id),
          );
          const missing = activities.filter((a) => !existing.has(a.id));
          if (missing.length > 0) {
            await this.store.put(missing);
            report.repairedToStore += missing.length;
          }
        }
        const now = Date.now();
        this.db.transaction(() => {
          for (const message of batch) {
            const activity = JSON.parse(message.value) as Activity;
            markSeen.run(activity.tenantId, activity.id, now);
          }
        })();
        report.checked += batch.length;
        const last = batch[batch.length - 1]!;
        if (BigInt(last.offset) + 1n >= (targets.get(last.partition) ?? 0n)) pending.delete(last.partition);
        if (pending.size === 0) resolveDone();
      },
    });
    const timeout = setTimeout(resolveDone, 120_000);
    await done;
    clearTimeout(timeout);
    await subscription.stop();
  }

  private async storeToQueue(tenants: string[], report: ReconcileReport): Promise<void> {
    const now = Date.now();
    const grace = this.options.graceMs ?? 30_000;
    const lookback = this.options.lookbackMs ?? 3_600_000;
    const checkedUntil = this.db.prepare("SELECT value FROM state WHERE name = 'store_checked_until'").pluck().get() as
      number | undefined;
    const since = Math.max(checkedUntil ?? now - lookback, now - lookback);
    const until = now - grace;
    if (until <= since) return;
    const seen = this.db.prepare("SELECT 1 FROM seen WHERE tenant_id = ? AND id = ?").pluck();
    for (const tenantId of tenants) {
      let pageToken: string | undefined;
      for (let page = 0; page < 10_000; page++) {
        const result = await this.store.list(tenantId, {
          since,
          until,
          limit: 1000,
          ...(pageToken ? { pageToken } : {}),
        });
        const missing = result.items.filter((a) => seen.get(a.tenantId, a.id) === undefined);
        report.storeChecked += result.items.length;
        if (missing.length > 0) {
          await this.queue.publish(this.options.topic, missing.map(activityRecord));
          report.repairedToQueue += missing.length;
        }
        pageToken = result.nextPageToken;
        if (!pageToken) break;
      }
    }
    this.db
      .prepare(
        "INSERT INTO state (name, value) VALUES ('store_checked_until', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      )
      .run(until);
    this.db.prepare("DELETE FROM seen WHERE at < ?").run(now - 2 * lookback);
  }
}
