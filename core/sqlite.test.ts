import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { tempDir } from "../test/support/tmp";
import { checkpointerSettled, GroupCommit, openSqlite, WalSync } from "./sqlite";

describe("openSqlite", () => {
  const tmp = tempDir("hub-sqlite-open-");
  after(() => tmp.cleanup());

  it("gives a new database the requested page size and leaves an existing one as it is", () => {
    const created = openSqlite(join(tmp.dir, "new.db"), { pageSize: 16_384 });
    created.exec("CREATE TABLE t (n INTEGER PRIMARY KEY)");
    assert.equal(created.pragma("page_size", { simple: true }), 16_384);
    assert.equal(String(created.pragma("journal_mode", { simple: true })), "wal");
    created.close();

    const old = openSqlite(join(tmp.dir, "old.db"));
    old.exec("CREATE TABLE t (n INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)");
    old.close();
    const reopened = openSqlite(join(tmp.dir, "old.db"), { pageSize: 16_384 });
    assert.equal(reopened.pragma("page_size", { simple: true }), 4_096);
    assert.equal(reopened.prepare("SELECT n FROM t").pluck().get(), 1);
    reopened.close();
  });

  it("leaves a closed database's files alone once the checkpointer has settled", async () => {
    const path = join(tmp.dir, "settled.db");
    const db = openSqlite(path);
    db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)");
    // Let the checkpointer open its own connection and checkpoint once.
    await new Promise((resolve) => setTimeout(resolve, 700));
    db.close();
    await checkpointerSettled();
    // The checkpointer's was the last connection: closing it removed the WAL and its index.
    assert.equal(existsSync(`${path}-wal`), false, "the -wal file is gone");
    assert.equal(existsSync(`${path}-shm`), false, "the -shm file is gone");
  });
});

describe("SQLite group commit with WalSync", () => {
  const tmp = tempDir("hub-sqlite-");
  after(() => tmp.cleanup());

  it("answers a group once it is committed and synced, and a reopened database has every answered write", async () => {
    const path = join(tmp.dir, "g.db");
    const db = openSqlite(path);
    db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY)");
    const walSync = new WalSync(db);
    assert.equal(db.pragma("synchronous", { simple: true }), 1, "NORMAL: commits do not fsync inline");
    const insert = db.prepare("INSERT INTO t (n) VALUES (?)");
    const commit = new GroupCommit<number>(db, (items) => items.forEach((n) => insert.run(n)), 20_000, walSync);
    // Many callers in one turn share a transaction; later turns pipeline behind the running fsync.
    const answered: number[] = [];
    const waits = Array.from({ length: 50 }, (_, i) => commit.add([i]).then(() => answered.push(i)));
    assert.equal(answered.length, 0, "nothing is answered before the commit and its sync");
    await Promise.all(waits);
    await Promise.all(Array.from({ length: 50 }, (_, i) => commit.add([100 + i])));
    assert.equal(answered.length, 50);
    commit.add([999]).catch(() => undefined);
    commit.flushSync(); // shutdown path: commits and syncs on the calling thread
    walSync.close();
    db.close();

    const reopened = openSqlite(path);
    assert.equal(reopened.prepare("SELECT COUNT(*) FROM t").pluck().get(), 101);
    reopened.close();
  });

  it("rejects every caller of a group whose transaction fails, and keeps working after", async () => {
    const db = openSqlite(join(tmp.dir, "f.db"));
    db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY)");
    const walSync = new WalSync(db);
    const insert = db.prepare("INSERT INTO t (n) VALUES (?)");
    const commit = new GroupCommit<number>(db, (items) => items.forEach((n) => insert.run(n)), 20_000, walSync);
    await commit.add([1]);
    const results = await Promise.allSettled([commit.add([2]), commit.add([1])]); // duplicate key
    assert.deepEqual(
      results.map((r) => r.status),
      ["rejected", "rejected"],
    );
    assert.equal(db.prepare("SELECT COUNT(*) FROM t").pluck().get(), 1, "the failed group left nothing");
    await commit.add([3]);
    assert.equal(db.prepare("SELECT COUNT(*) FROM t").pluck().get(), 2);
    walSync.close();
    db.close();
  });

  it("checkpoints in the background", async () => {
    const path = join(tmp.dir, "c.db");
    const db = openSqlite(path);
    db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY, pad TEXT)");
    const insert = db.prepare("INSERT INTO t (n, pad) VALUES (?, ?)");
    const pad = "x".repeat(4000);
    // ≈ 40 MB through the WAL. The writer itself checkpoints only past 20,000 pages (80 MB), so
    // pages reach the database file only if the background checkpointer copies them there.
    for (let round = 0; round < 20; round++) {
      db.transaction(() => {
        for (let i = 0; i < 500; i++) insert.run(round * 500 + i, pad);
      })();
    }
    const deadline = Date.now() + 15_000;
    while (statSync(path).size < 35 * 1024 * 1024 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    const dbBytes = statSync(path).size;
    db.close();
    assert.ok(dbBytes >= 35 * 1024 * 1024, `database file is ${dbBytes} bytes: the WAL was not checkpointed`);
  });
});
