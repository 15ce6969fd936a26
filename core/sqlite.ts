import Database from "better-sqlite3";
import { closeSync, fdatasync, fdatasyncSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { Worker } from "node:worker_threads";
import { BACKGROUND_PRIORITY_SOURCE } from "./background-thread";

export type SqliteDatabase = Database.Database;

/** Absolute path of the better-sqlite3 module, for worker threads that open their own connections. */
export const SQLITE_MODULE = require.resolve("better-sqlite3");

/**
 * Opens a SQLite database tuned for durable, group-committed writes: WAL journal, and
 * `synchronous=FULL` so a committed transaction has been fsynced to the WAL before we answer
 * (see `WalSync` for fsyncing off the event loop instead). Checkpoints (copying the WAL into the
 * database file, with its fsyncs) run on a background thread, not in the committing call.
 * `pageSize` applies to a database this call creates; an existing file keeps its page size.
 */
export function openSqlite(path: string, options: { pageSize?: number } = {}): SqliteDatabase {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  // Takes effect only on a new, empty file (and only before it switches to WAL).
  if (options.pageSize !== undefined) db.pragma(`page_size = ${options.pageSize}`);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  db.pragma("cache_size = -65536");
  if (path === ":memory:") return db;
  // The background checkpointer keeps the WAL short; this is the safety net if it falls behind.
  db.pragma("wal_autocheckpoint = 20000");
  const file = db.name;
  checkpointer().add(file);
  const close = db.close.bind(db);
  db.close = () => {
    checkpointer().remove(file);
    return close();
  };
  return db;
}

const CHECKPOINTER_SOURCE = String.raw`"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.sqlite);
${BACKGROUND_PRIORITY_SOURCE}
const open = new Map();
parentPort.on("message", (m) => {
  if (m.type === "add" && !open.has(m.path)) {
    try {
      const db = new Database(m.path, { fileMustExist: true });
      db.pragma("busy_timeout = 1000");
      open.set(m.path, { db, users: 1 });
    } catch {}
  } else if (m.type === "add") open.get(m.path).users++;
  else if (m.type === "remove" && open.has(m.path)) {
    const entry = open.get(m.path);
    if (--entry.users === 0) {
      open.delete(m.path);
      try { entry.db.close(); } catch {}
    }
  } else if (m.type === "settle") parentPort.postMessage({ type: "settled", id: m.id });
});
setInterval(() => {
  for (const { db } of open.values()) {
    try { db.pragma("wal_checkpoint(PASSIVE)"); } catch {}
  }
}, workerData.intervalMs);
`;

interface Checkpointer {
  add(path: string): void;
  remove(path: string): void;
  settle(): Promise<void>;
}

let background: Checkpointer | undefined;

/**
 * One worker thread per process that runs `wal_checkpoint(PASSIVE)` on every open database twice
 * a second: a checkpoint's page copies and fsyncs never run on the event loop, and the WAL is
 * reused from its start instead of growing with the write volume.
 */
function checkpointer(): Checkpointer {
  if (background) return background;
  const worker = new Worker(CHECKPOINTER_SOURCE, {
    eval: true,
    workerData: { sqlite: SQLITE_MODULE, intervalMs: 500 },
    execArgv: [],
  });
  const settling = new Map<number, () => void>();
  let nextSettle = 1;
  const settleAll = (): void => {
    for (const resolve of settling.values()) resolve();
    settling.clear();
  };
  worker.on("message", (m: { type: string; id: number }) => {
    if (m.type !== "settled") return;
    settling.get(m.id)?.();
    settling.delete(m.id);
    // The process may exit again once nobody waits for an answer.
    if (settling.size === 0) worker.unref();
  });
  worker.on("error", () => {
    // A lost checkpointer only means writers checkpoint themselves (wal_autocheckpoint).
  });
  // After an error too: a gone worker answers nobody, so whoever waits is let go and the next
  // database starts a new one.
  worker.on("exit", () => {
    background = undefined;
    settleAll();
  });
  // After the listeners: adding a "message" listener refs the worker again.
  worker.unref();
  const self: Checkpointer = {
    add: (path) => worker.postMessage({ type: "add", path }),
    remove: (path) => worker.postMessage({ type: "remove", path }),
    settle: () =>
      new Promise<void>((resolve) => {
        const id = nextSettle++;
        settling.set(id, resolve);
        worker.ref();
        worker.postMessage({ type: "settle", id });
      }),
  };
  background = self;
  return self;
}

/**
 * Resolves once the background checkpointer has handled every database closed so far: it has
 * closed its own connections to them (SQLite removes a database's `-wal` and `-shm` files as the
 * last connection closes), so nothing of this process touches their files any more. A hub's stop
 * ends with it; a folder removed right after that cannot have files appear in it again.
 */
export function checkpointerSettled(): Promise<void> {
  return background ? background.settle() : Promise.resolve();
}

/**
 * Makes a WAL database's commits durable off the event loop: the database runs with
 * `synchronous=NORMAL` (a commit is a write(2) to the WAL, no fsync on the calling thread) and
 * `sync()` fdatasyncs the WAL file on libuv's thread pool. fdatasync flushes every dirty page of
 * the file, a superset of what a `synchronous=FULL` commit syncs, so a commit followed by a
 * resolved `sync()` is as durable as a FULL commit. At most one fdatasync runs at a time; callers
 * arriving while it runs share the next one.
 */
export class WalSync {
  private fd: number | undefined;
  private running = false;
  private waiting: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  private readonly walPath: string;

  constructor(db: SqliteDatabase) {
    if (db.memory) throw new Error("WalSync needs a database file");
    if (String(db.pragma("journal_mode", { simple: true })).toLowerCase() !== "wal")
      throw new Error("WalSync needs journal_mode=WAL");
    db.pragma("synchronous = NORMAL");
    this.walPath = `${db.name}-wal`;
  }

  /** Resolves once every transaction committed before the call is on disk. */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.running) this.start();
    });
  }

  private start(): void {
    const batch = this.waiting;
    this.waiting = [];
    this.running = true;
    const done = (error: unknown): void => {
      this.running = false;
      for (const w of batch) {
        if (error) w.reject(error);
        else w.resolve();
      }
      if (this.waiting.length > 0) this.start();
    };
    let fd: number;
    try {
      fd = this.walFd();
    } catch (error) {
      done(error);
      return;
    }
    fdatasync(fd, done);
  }

  /** Syncs on the calling thread (shutdown paths). */
  syncNow(): void {
    fdatasyncSync(this.walFd());
  }

  /** The WAL file exists from the first commit on and stays for the life of the connection. */
  private walFd(): number {
    return (this.fd ??= openSync(this.walPath, "r"));
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Group commit: callers add items and get a promise; everything added during one turn of the
 * event loop is written in one transaction, then every caller is answered once it is durable.
 * Under load this turns thousands of small writes a second into a few dozen commits. With a
 * `WalSync` the fsync runs on the thread pool while the event loop goes on (the next group
 * commits meanwhile and shares the following fsync); without one, the commit fsyncs inline
 * (`synchronous=FULL`).
 */
export class GroupCommit<T> {
  private pending: T[] = [];
  private waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  private scheduled = false;

  constructor(
    private readonly db: SqliteDatabase,
    /** Writes a group inside its transaction. */
    private readonly write: (items: T[]) => void,
    private readonly maxItems = 20_000,
    private readonly walSync?: WalSync,
  ) {}

  add(items: T[]): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    for (const item of items) this.pending.push(item);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.pending.length >= this.maxItems) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return done;
  }

  /** Commits whatever is pending now and syncs it on the calling thread (shutdown paths). */
  flushSync(): void {
    this.commitPending(true);
  }

  /** Commits whatever is pending now (its callers are answered once it is durable). */
  flush(): void {
    this.commitPending(false);
  }

  private commitPending(inline: boolean): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const items = this.pending;
    const waiters = this.waiters;
    this.pending = [];
    this.waiters = [];
    try {
      this.db.transaction(() => this.write(items))();
    } catch (error) {
      for (const w of waiters) w.reject(error);
      return;
    }
    if (!this.walSync || inline) {
      try {
        this.walSync?.syncNow();
      } catch (error) {
        for (const w of waiters) w.reject(error);
        return;
      }
      for (const w of waiters) w.resolve();
      return;
    }
    this.walSync.sync().then(
      () => {
        for (const w of waiters) w.resolve();
      },
      (error: unknown) => {
        for (const w of waiters) w.reject(error);
      },
    );
  }
}
