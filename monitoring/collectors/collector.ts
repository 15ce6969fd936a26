/** A tcollector-like collector: reads some facts and sets gauges; scheduled by the monitoring service. */
export interface Collector {
  readonly name: string;
  /** How often it runs (ms). */
  readonly intervalMs: number;
  collect(now: number): Promise<void> | void;
  stop?(): void;
}

/**
 * Runs collectors on their intervals, one run of each at a time, each bounded by a timeout so a
 * stuck check (an engine that hangs) never piles up runs.
 */
export class CollectorScheduler {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<string>();
  private readonly lastRun = new Map<string, number>();

  constructor(
    private readonly collectors: Collector[],
    private readonly onError: (collector: string, error: unknown) => void,
    private readonly timeoutMs = 10_000,
  ) {}

  start(): void {
    for (const collector of this.collectors) {
      void this.run(collector);
      const timer = setInterval(() => void this.run(collector), collector.intervalMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  /** Runs the collectors whose interval has passed since their last run (the monitoring cycle calls it). */
  async runDue(now: number): Promise<void> {
    const due = this.collectors.filter((c) => now - (this.lastRun.get(c.name) ?? -Infinity) >= c.intervalMs - 50);
    for (const c of due) this.lastRun.set(c.name, now);
    await Promise.all(due.map((c) => this.run(c)));
  }

  /** Runs every collector once now (tests, and the first sample at start-up). */
  async runAll(): Promise<void> {
    await Promise.all(this.collectors.map((c) => this.run(c)));
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.length = 0;
    for (const collector of this.collectors) collector.stop?.();
  }

  private async run(collector: Collector): Promise<void> {
    if (this.running.has(collector.name)) return;
    this.running.add(collector.name);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve(collector.collect(Date.now())),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`collector '${collector.name}' timed out after ${this.timeoutMs} ms`)),
            this.timeoutMs,
          );
        }),
      ]);
    } catch (error) {
      this.onError(collector.name, error);
    } finally {
      clearTimeout(timer);
      this.running.delete(collector.name);
    }
  }
}
