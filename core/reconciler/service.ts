import type { ServiceSchema } from "moleculer";
import type { HubServices } from "../plugins/contract";
import type { TenantDirectory } from "../tenancy/directory";
import { Reconciler, type ReconcileReport } from "./reconciler";

/**
 * The `reconciler` service (control role): runs a reconciliation pass every
 * `config.reconciler.intervalMs` and on demand (`POST /api/v1/admin/reconcile`).
 */
export function reconcilerService(hub: HubServices, directory: TenantDirectory): ServiceSchema {
  const { intervalMs, graceMs, lookbackMs } = hub.config.reconciler;
  let reconciler: Reconciler | undefined;
  let timer: NodeJS.Timeout | undefined;
  let last: ReconcileReport | undefined;

  async function run(): Promise<ReconcileReport> {
    if (!reconciler) {
      const [queue, store] = await Promise.all([hub.queue(), hub.store()]);
      reconciler = new Reconciler(queue, store, {
        dataDir: hub.config.dataDir,
        topic: hub.config.topics.activities,
        graceMs,
        lookbackMs,
      });
    }
    last = await reconciler.run(directory.listTenants().map((t) => t.id));
    if (last.repairedToQueue + last.repairedToStore > 0)
      hub.logger.warn({ report: last }, "reconciler repaired queue/store divergence");
    return last;
  }

  return {
    name: "reconciler",
    actions: {
      run: {
        scope: "platform",
        handler() {
          return run();
        },
      },
      last: {
        scope: "platform",
        handler() {
          return last ?? null;
        },
      },
    },
    started() {
      if (intervalMs > 0) {
        const tick = (): void => {
          timer = setTimeout(() => {
            run()
              .catch((error: unknown) => hub.logger.error({ err: String(error) }, "reconciler pass failed"))
              .finally(tick);
          }, intervalMs);
          timer.unref();
        };
        tick();
      }
    },
    stopped() {
      if (timer) clearTimeout(timer);
      reconciler?.close();
    },
  };
}
