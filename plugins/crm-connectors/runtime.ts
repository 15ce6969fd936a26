import { SyncEngine, type RunOptions, type RunRecord, type SyncEngineDeps } from "../../connectors";

/** Runs tasks one at a time per key, in arrival order. */
export class SerialLanes {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(task, task);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }

  /** Resolves when every queued task has finished. */
  async drain(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }

  busy(key: string): boolean {
    return this.tails.has(key);
  }
}

/**
 * The sync engine with in-process serialisation: the scheduler, "run now" and the outbound
 * consumer of one connector queue behind each other instead of bouncing off the run lock (which
 * still guards against other processes).
 */
export class SerialSyncEngine extends SyncEngine {
  readonly lanes = new SerialLanes();

  constructor(deps: SyncEngineDeps) {
    super(deps);
  }

  override run(instanceId: string, options: RunOptions = {}): Promise<RunRecord[]> {
    return this.lanes.run(instanceId, () => super.run(instanceId, options));
  }
}
