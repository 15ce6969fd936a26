import type { ActivityQueue, QueueMessage } from "../../plugins/queue/contract";
import type { ActivityStore } from "../../plugins/store/contract";
import type { Activity } from "../activity/model";
import { activityOf, activityRecord } from "../activity/serialize";
import type { PersistLedger, SuspectWindow } from "./ledger";

export interface ReconcileReport {
  /** Suspect windows checked in this pass (whole or in part). */
  windows: number;
  /** Windows left for a later pass: too recent, or a failed write has not settled yet. */
  pendingWindows: number;
  /** Queue messages read back in the windows and checked against the store. */
  checked: number;
  /** Activities found in the queue but not in the store, now written to the store. */
  repairedToStore: number;
  /** Store activities in the windows checked against what the queue holds. */
  storeChecked: number;
  /** Activities found in the store but not in the queue, now published. */
  repairedToQueue: number;
  startedAt: string;
  finishedAt: string;
}

export interface ReconcilerOptions {
  topic: string;
  /** A window is checked once its end is this old: writes that were under way have landed. */
  graceMs?: number;
  /** Windows are checked in pieces of this many ms of arrival time (bounds memory; default 60 s). */
  pieceMs?: number;
  /**
   * How much later than an activity's arrival its record may carry the queue's timestamp (a
   * publish waits for the client's other writes, retries, a timeout); default 15 s.
   */
  queueLagMs?: number;
  /** A window whose failed write has not settled is checked anyway after this long (default 10 min). */
  settleTimeoutMs?: number;
}

/**
 * Finds and repairs divergence between the queue and the store. The intake writes both in
 * parallel, so a crash or an engine failure between the two can leave an activity (never
 * acknowledged to the client) in only one of them. The persist ledger (`ledger.ts`) records
 * where that can have happened, as windows of arrival time; a pass checks only those:
 *
 * - queue → store: the queue's records of the window are read back (`ActivityQueue.replay`, no
 *   consumer group) and the ones the store lacks are written (idempotent put by id);
 * - store → queue: the store's activities that arrived in the window (`list`, by `receivedAt`)
 *   and were not among those records are published. Consumers are at-least-once and recognise
 *   a redelivered id, so a rare double publish is harmless; a missing one would not be.
 *
 * Without failures or crashes there is nothing to check: the cost does not grow with the
 * ingest rate.
 */
export class Reconciler {
  private running?: Promise<ReconcileReport>;

  constructor(
    private readonly queue: ActivityQueue,
    private readonly store: ActivityStore,
    private readonly ledger: PersistLedger,
    private readonly options: ReconcilerOptions,
  ) {}

  /** One pass over the windows due; concurrent callers share the pass in progress. */
  run(tenants: () => Promise<string[]>): Promise<ReconcileReport> {
    this.running ??= this.pass(tenants).finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(tenants: () => Promise<string[]>): Promise<ReconcileReport> {
    const startedAt = new Date().toISOString();
    const report: ReconcileReport = {
      windows: 0,
      pendingWindows: 0,
      checked: 0,
      repairedToStore: 0,
      storeChecked: 0,
      repairedToQueue: 0,
      startedAt,
      finishedAt: startedAt,
    };
    const now = Date.now();
    const grace = this.options.graceMs ?? 30_000;
    const settleTimeout = this.options.settleTimeoutMs ?? 600_000;
    const due = (w: SuspectWindow): boolean =>
      w.until + grace <= now &&
      (w.reason !== "persist_failed" || this.ledger.unsettledWrites === 0 || w.until + settleTimeout <= now);
    const windows = this.ledger.windows();
    report.pendingWindows = windows.filter((w) => !due(w)).length;
    let tenantIds: string[] | undefined;
    for (const window of windows.filter(due)) {
      report.windows++;
      const pieceMs = this.options.pieceMs ?? 60_000;
      for (let from = window.since; from <= window.until;) {
        const to = Math.min(window.until + 1, from + pieceMs);
        tenantIds ??= await tenants();
        await this.checkPiece(from, to, tenantIds, report);
        this.ledger.checked(window, to);
        from = to;
      }
    }
    report.finishedAt = new Date().toISOString();
    return report;
  }

  /** Checks the activities that arrived in [from, to). */
  private async checkPiece(from: number, to: number, tenantIds: string[], report: ReconcileReport): Promise<void> {
    const queued = new Set<string>();
    report.checked += await this.queue.replay(this.options.topic, {
      // The queue's timestamp is taken after the arrival, never before it (same clock, or a
      // producer's clock a little off: one second either way).
      since: from - 1_000,
      until: to + (this.options.queueLagMs ?? 15_000),
      maxBatch: 2000,
      handler: async (batch: QueueMessage[]) => {
        const byTenant = new Map<string, Activity[]>();
        for (const message of batch) {
          const activity = activityOfMessage(message);
          if (!activity) continue;
          queued.add(`${activity.tenantId}\u0000${activity.id}`);
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
      },
    });
    for (const tenantId of tenantIds) {
      let pageToken: string | undefined;
      for (let page = 0; page < 100_000; page++) {
        const result = await this.store.list(tenantId, {
          since: from,
          until: to,
          limit: 1000,
          ...(pageToken ? { pageToken } : {}),
        });
        report.storeChecked += result.items.length;
        const missing = result.items.filter((a) => !queued.has(`${a.tenantId}\u0000${a.id}`));
        if (missing.length > 0) {
          await this.queue.publish(this.options.topic, missing.map(activityRecord));
          report.repairedToQueue += missing.length;
        }
        pageToken = result.nextPageToken;
        if (!pageToken) break;
      }
    }
  }
}

/** The activity a queue record carries, or undefined for a record that is not one. */
function activityOfMessage(message: QueueMessage): Activity | undefined {
  try {
    const activity: Partial<Activity> = activityOf(message);
    return typeof activity.tenantId === "string" && typeof activity.id === "string"
      ? (activity as Activity)
      : undefined;
  } catch {
    return undefined;
  }
}
