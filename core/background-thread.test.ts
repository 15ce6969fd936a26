import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import { BACKGROUND_NICE } from "./background-thread";
import { groupWriterSource, stopWorker } from "./group-writer";
import { SQLITE_MODULE } from "./sqlite";

/** Nice value per thread id of this process (field 19 of /proc/self/task/<tid>/stat). */
function niceByThread(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    // The command name (field 2) is parenthesised and may hold spaces: count from its end.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.set(Number(tid), Number(fields[16]));
  }
  return out;
}

describe("background threads", () => {
  it("run a group writer's worker at background priority and leave the event loop's alone", async () => {
    const before = niceByThread();
    const worker = new Worker(groupWriterSource("const db = { close() {} };\nfunction write() {}"), {
      eval: true,
      workerData: { sqlite: SQLITE_MODULE },
      execArgv: [],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        worker.once("message", () => resolve());
        worker.once("error", reject);
      });
      const after = niceByThread();
      const added = [...after].filter(([tid]) => !before.has(tid)).map(([, nice]) => nice);
      assert.ok(added.includes(BACKGROUND_NICE), `a new thread at nice ${BACKGROUND_NICE}: ${JSON.stringify(added)}`);
      assert.equal(after.get(process.pid), before.get(process.pid), "the event loop keeps its priority");
    } finally {
      await stopWorker(worker);
    }
  });
});
