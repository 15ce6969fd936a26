import type { ServiceSchema } from "moleculer";
import type { Context } from "moleculer";
import { ValidationError } from "../errors";
import type { RequestMeta } from "../middleware/scopes";
import type { HubServices } from "../plugins/contract";
import type { TenantDirectory } from "../tenancy/directory";
import { Reconciler, type ReconcileReport } from "./reconciler";

/**
 * The `reconciler` service (ingestion role, beside the intake whose writes the ledger records):
 * checks the ledger's suspect windows every `config.reconciler.intervalMs`, and on demand
 * (`POST /api/v1/admin/reconcile`, optionally with an explicit `{since, until}` window).
 */
export function reconcilerService(hub: HubServices, directory: TenantDirectory | undefined): ServiceSchema {
  const { intervalMs, graceMs, lookbackMs } = hub.config.reconciler;
  let reconciler: Reconciler | undefined;
  let timer: NodeJS.Timeout | undefined;
  let last: ReconcileReport | undefined;
  let passing: Promise<unknown> | undefined;

  /** Tenant ids: from the local directory, or from the node that has it. */
  async function tenants(): Promise<string[]> {
    if (directory) return directory.listTenants().map((t) => t.id);
    const { tenants } = (await hub.broker.call("tenancy.listTenants", {}, { meta: { platform: true } })) as {
      tenants: Array<{ id: string }>;
    };
    return tenants.map((t) => t.id);
  }

  async function run(): Promise<ReconcileReport> {
    if (!reconciler) {
      const [queue, store] = await Promise.all([hub.queue(), hub.store()]);
      reconciler = new Reconciler(queue, store, hub.ledger(), { topic: hub.config.topics.activities, graceMs });
    }
    const pass = reconciler.run(tenants);
    passing = pass.catch(() => undefined);
    last = await pass;
    if (last.repairedToQueue + last.repairedToStore > 0)
      hub.logger.warn({ report: last }, "reconciler repaired queue/store divergence");
    return last;
  }

  /** An operator's explicit window: epoch ms or ISO-8601 times, at most `lookbackMs` long. */
  function requestedWindow(body: unknown): { since: number; until: number } | undefined {
    if (body === undefined || body === null || (typeof body === "object" && Object.keys(body).length === 0))
      return undefined;
    if (typeof body !== "object" || Array.isArray(body))
      throw new ValidationError("The body must be a JSON object", [
        { field: "body", code: "invalid_type", message: "must be an object" },
      ]);
    const fields = body as Record<string, unknown>;
    const time = (field: "since" | "until"): number => {
      const value = fields[field];
      const ms = typeof value === "number" ? value : typeof value === "string" ? Date.parse(value) : NaN;
      if (!Number.isFinite(ms))
        throw new ValidationError(`Invalid ${field}`, [
          { field, code: "invalid_time", message: "must be epoch milliseconds or an ISO-8601 time" },
        ]);
      return ms;
    };
    const since = time("since");
    const until = time("until");
    if (until <= since || until - since > lookbackMs)
      throw new ValidationError("Invalid window", [
        { field: "until", code: "invalid_window", message: `must be after since, at most ${lookbackMs} ms later` },
      ]);
    return { since, until };
  }

  return {
    name: "reconciler",
    actions: {
      run: {
        scope: "platform",
        handler(ctx: Context<{ body?: unknown }, RequestMeta>) {
          const window = requestedWindow(ctx.params.body);
          if (window) hub.ledger().record(window.since, window.until, "requested");
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
      // Opens the ledger now: a start after a crash records its window before any new write.
      hub.ledger();
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
    async stopped() {
      if (timer) clearTimeout(timer);
      // The ledger closes after the services stop: let a pass under way finish with it.
      await passing;
    },
  };
}
