import { schedule, type ScheduledTask } from "node-cron";
import type { ConnectorLogger } from "../contract";
import type { OutboundSource } from "./activity";
import type { ConnectorInstanceConfig } from "./config";
import type { SyncEngine } from "./engine";
import type { ConnectorStateStore } from "./state-store";

/**
 * Schedules each enabled connector with node-cron. `noOverlap` skips a tick while the previous
 * run of the same instance is still going in this process; the store's run lock does the same
 * across processes, so one instance never runs twice at once.
 */
export class ConnectorScheduler {
  private readonly tasks = new Map<string, ScheduledTask>();

  constructor(
    private readonly engine: SyncEngine,
    private readonly store: ConnectorStateStore,
    private readonly sourceFor: (config: ConnectorInstanceConfig) => OutboundSource | undefined = () => undefined,
    private readonly logger?: ConnectorLogger,
  ) {}

  /** Schedules every enabled connector found in the store. */
  async start(): Promise<void> {
    for (const config of await this.store.listConfigs()) this.apply(config);
  }

  /** (Re)schedules one connector after a config change; disabled connectors are unscheduled. */
  apply(config: ConnectorInstanceConfig): void {
    this.unschedule(config.instanceId);
    if (!config.enabled) return;
    const task = schedule(
      config.schedule,
      async () => {
        const runs = await this.engine.run(config.instanceId, { source: this.sourceFor(config) });
        for (const run of runs) {
          if (run.status === "failed")
            this.logger?.warn("scheduled connector run failed", {
              instanceId: run.instanceId,
              direction: run.direction,
              code: run.error?.code,
            });
        }
      },
      { name: `connector:${config.instanceId}`, noOverlap: true },
    );
    this.tasks.set(config.instanceId, task);
  }

  unschedule(instanceId: string): void {
    const task = this.tasks.get(instanceId);
    if (!task) return;
    void task.destroy();
    this.tasks.delete(instanceId);
  }

  /** Ids of scheduled connectors and their next run time. */
  scheduled(): { instanceId: string; nextRun: Date | null }[] {
    return [...this.tasks].map(([instanceId, task]) => ({ instanceId, nextRun: task.getNextRun() }));
  }

  stop(): void {
    for (const instanceId of [...this.tasks.keys()]) this.unschedule(instanceId);
  }
}
