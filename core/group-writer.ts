import type { Worker } from "node:worker_threads";
import { BACKGROUND_PRIORITY_SOURCE } from "./background-thread";
import { UnavailableError } from "./errors";

/**
 * What a group writer's worker posts: `ready` once (first), then `written` or `writeFailed` for
 * each group it was sent, in order; `reply` or `replyFailed` for each `request`. Anything else
 * goes to `onMessage`.
 */
export type GroupWriterEvent =
  | { type: "ready" }
  | { type: "written"; result?: unknown }
  | { type: "writeFailed"; message: string }
  | { type: "reply"; req: number; value: unknown }
  | { type: "replyFailed"; req: number; message: string }
  | { type: string; [field: string]: unknown };

export interface GroupWriterOptions<Item, Group> {
  /** Names the writer in errors ("the store's log writer"). */
  name: string;
  /** Starts the worker thread; it posts `ready` once it can write and exits on `{ type: "stop" }`. */
  spawn: () => Worker;
  /**
   * Turns what is pending into a group: the message to post, what the callbacks get back, and
   * the ArrayBuffers to transfer with the message rather than copy (the main thread must not
   * touch them again).
   */
  send: (items: Item[]) => { message: unknown; group: Group; transfer?: ArrayBuffer[] };
  /**
   * The worker committed the group (it acks after its fsync); runs before the writers are
   * answered. `result`: what the worker's `write` returned, if anything.
   */
  onWritten: (group: Group, result: unknown) => void;
  /** The group rolled back, or the worker died with it (its fate unknown); runs before the writers are rejected. */
  onLost?: (group: Group) => void;
  /** Worker messages outside the group protocol (replies to other requests). */
  onMessage?: (event: GroupWriterEvent) => void;
  /** The worker died; runs after its groups were failed, before a new one is started. */
  onExit?: (error: UnavailableError) => void;
  /** Runs before a new worker replaces one that died. */
  beforeRespawn?: () => void;
  /** How long after a worker died a new one starts (ms, default 1,000). */
  respawnDelayMs?: number;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit through a writer thread: items added during one turn of the event loop form a
 * group, one group is with the worker at a time, and items added meanwhile form the next one. The
 * worker acks a group after its commit, so `add` resolves only once its items are durable, and
 * the event loop neither copies their bytes into SQLite nor waits for the disk.
 *
 * If the worker dies, the group it held and everything pending are rejected, never resolved
 * (the caller retries), and a new worker starts `respawnDelayMs` later.
 */
export class GroupWriter<Item, Group> {
  private worker?: Worker;
  private pending: Item[] = [];
  private waiters: Waiter[] = [];
  private inFlight?: { group: Group; size: number; waiters: Waiter[] };
  private scheduled = false;
  private stopped = true;
  private respawnTimer?: NodeJS.Timeout;
  private readonly drainWaiters: Array<() => void> = [];
  /** Requests outside the group protocol awaiting their reply, by request number. */
  private readonly requests = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: unknown) => void }
  >();
  private nextRequest = 1;

  constructor(private readonly options: GroupWriterOptions<Item, Group>) {}

  /** Starts the worker; resolves once it is ready. */
  start(): Promise<void> {
    this.stopped = false;
    return this.spawn();
  }

  /** The live worker, for requests outside the group protocol; undefined while it is down. */
  get current(): Worker | undefined {
    return this.worker;
  }

  /** Groups not written yet: the one with the worker, and the one forming behind it. */
  get groupsAhead(): number {
    return (this.inFlight ? 1 : 0) + (this.pending.length > 0 ? 1 : 0);
  }

  /** Items added and not yet written (pending and in flight). */
  get backlog(): number {
    return this.pending.length + (this.inFlight?.size ?? 0);
  }

  /** Queues items for the next group; resolves once the group holding them is written. */
  add(items: readonly Item[]): Promise<void> {
    if (this.stopped) return Promise.reject(new UnavailableError(`${this.options.name} is stopped`));
    for (const item of items) this.pending.push(item);
    const written = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.schedule();
    return written;
  }

  /**
   * Sends the worker a request outside the group protocol (its `handle` answers it, between
   * groups); resolves with what `handle` returned. Rejected if it threw, or the worker died or
   * stopped first.
   */
  request<T>(message: { type: string; [field: string]: unknown }): Promise<T> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new UnavailableError(`${this.options.name} is down`));
    const req = this.nextRequest++;
    return new Promise<T>((resolve, reject) => {
      this.requests.set(req, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ ...message, req });
    });
  }

  /** Resolves once everything added so far is written or has failed. */
  async drain(): Promise<void> {
    while (this.inFlight || (this.pending.length > 0 && this.worker)) {
      this.schedule();
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    }
  }

  /** Writes what was added, then stops the worker (terminated if it does not exit within 10 s). */
  async stop(): Promise<void> {
    await this.drain();
    this.stopped = true;
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    this.failPending(new UnavailableError(`${this.options.name} is stopped`));
    const worker = this.worker;
    this.worker = undefined;
    await stopWorker(worker);
    this.failRequests(new UnavailableError(`${this.options.name} is stopped`));
  }

  private failRequests(error: Error): void {
    for (const request of this.requests.values()) request.reject(error);
    this.requests.clear();
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    if (this.inFlight || this.pending.length === 0) return this.notifyDrained();
    const worker = this.worker;
    if (!worker) return this.failPending(new UnavailableError(`${this.options.name} is down`));
    const items = this.pending;
    const waiters = this.waiters;
    this.pending = [];
    this.waiters = [];
    const { message, group, transfer } = this.options.send(items);
    this.inFlight = { group, size: items.length, waiters };
    worker.postMessage(message, transfer);
  }

  private onEvent(event: GroupWriterEvent): void {
    if (event.type === "ready") return;
    if (event.type === "reply" || event.type === "replyFailed") {
      const reply = event as
        { type: "reply"; req: number; value: unknown } | { type: "replyFailed"; req: number; message: string };
      const request = this.requests.get(reply.req);
      this.requests.delete(reply.req);
      if (reply.type === "reply") request?.resolve(reply.value);
      else request?.reject(new Error(reply.message));
      return;
    }
    if (event.type !== "written" && event.type !== "writeFailed") return this.options.onMessage?.(event);
    const done = this.inFlight;
    if (!done) return;
    this.inFlight = undefined;
    if (event.type === "written") {
      this.options.onWritten(done.group, (event as { result?: unknown }).result);
      for (const w of done.waiters) w.resolve();
    } else {
      this.options.onLost?.(done.group);
      const error = new Error(String((event as { message?: unknown }).message));
      for (const w of done.waiters) w.reject(error);
    }
    this.schedule();
    this.notifyDrained();
  }

  private failPending(error: Error): void {
    const waiters = this.waiters;
    this.pending = [];
    this.waiters = [];
    for (const w of waiters) w.reject(error);
    this.notifyDrained();
  }

  private notifyDrained(): void {
    if (this.inFlight || this.pending.length > 0) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private spawn(): Promise<void> {
    const worker = this.options.spawn();
    this.worker = worker;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on("message", (event: GroupWriterEvent) => {
        if (event.type === "ready") {
          ready = true;
          resolve();
        }
        if (this.worker === worker) this.onEvent(event);
      });
      worker.on("error", (error) => {
        if (!ready) reject(error);
      });
      worker.on("exit", (code) => {
        if (this.worker !== worker) return;
        this.worker = undefined;
        if (!ready) reject(new Error(`${this.options.name} exited with ${code} before it was ready`));
        // Whatever it was committing may or may not be durable: fail it, the writer retries.
        const error = new UnavailableError(`${this.options.name} exited with ${code}`);
        const lost = this.inFlight;
        this.inFlight = undefined;
        if (lost) {
          this.options.onLost?.(lost.group);
          for (const w of lost.waiters) w.reject(error);
        }
        this.failPending(error);
        this.failRequests(error);
        this.options.onExit?.(error);
        if (ready && !this.stopped) {
          this.respawnTimer = setTimeout(() => {
            if (this.stopped || this.worker) return;
            this.options.beforeRespawn?.();
            this.spawn().then(
              () => this.schedule(),
              () => undefined,
            );
          }, this.options.respawnDelayMs ?? 1_000);
          this.respawnTimer.unref();
        }
      });
    });
  }
}

/**
 * The source of a group writer's worker, for `new Worker(source, { eval: true, workerData })`
 * (`workerData.sqlite`: the better-sqlite3 module's path). `body` is CommonJS that opens the
 * connection as `db` and defines `write(message)`, which commits one group before it returns
 * (what it returns, if anything, comes with the `written` ack: `onWritten`'s `result`),
 * optionally `afterWrite(message)`, run once the group's `written` ack is posted, and
 * `handle(message)` for other messages: for those carrying a `req` (`GroupWriter.request`), what
 * it returns is posted back as `reply`, what it throws as `replyFailed`. The loop around it posts `ready`, answers each
 * `append` with `written` or `writeFailed`, and closes `db` on `stop`. The thread runs at background
 * priority (`core/background-thread.ts`).
 */
export function groupWriterSource(body: string): string {
  return `"use strict";
const { parentPort, workerData: cfg } = require("node:worker_threads");
const Database = require(cfg.sqlite);
${BACKGROUND_PRIORITY_SOURCE}
${body}
parentPort.on("message", (m) => {
  if (m.type === "append") {
    let result;
    try {
      result = write(m);
    } catch (error) {
      parentPort.postMessage({ type: "writeFailed", message: String(error) });
      return;
    }
    parentPort.postMessage(result === undefined ? { type: "written" } : { type: "written", result });
    if (typeof afterWrite === "function") afterWrite(m);
  } else if (m.type === "stop") {
    db.close();
    process.exit(0);
  } else if (typeof handle === "function") {
    if (m.req === undefined) return handle(m);
    let value;
    try {
      value = handle(m);
    } catch (error) {
      parentPort.postMessage({ type: "replyFailed", req: m.req, message: String(error) });
      return;
    }
    parentPort.postMessage({ type: "reply", req: m.req, value });
  }
});
parentPort.postMessage({ type: "ready" });
`;
}

/** Asks a worker to stop and waits for it to exit; terminates it if it has not within 10 s. */
export async function stopWorker(worker: Worker | undefined): Promise<void> {
  if (!worker) return;
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  worker.postMessage({ type: "stop" });
  const timer = setTimeout(() => void worker.terminate(), 10_000);
  await exited;
  clearTimeout(timer);
}
