/** The nice value of background worker threads; the event loop keeps the process's own. */
export const BACKGROUND_NICE = 10;

/**
 * CommonJS for the top of a background worker's source (writers, indexer, applier, checkpointer):
 * lowers that thread's scheduling priority to `BACKGROUND_NICE`, as databases do for their
 * compaction and flush threads. These threads batch whatever has piled up when they next run, so
 * a later start costs them nothing but a larger group; the event loop, which every request waits
 * on, gets the core first when both are runnable. On Linux `setpriority` on a thread id affects
 * that thread alone; elsewhere (no `/proc/thread-self`) the thread keeps its priority.
 */
export const BACKGROUND_PRIORITY_SOURCE = String.raw`
try {
  const tid = Number(require("node:fs").readlinkSync("/proc/thread-self").split("/").pop());
  if (Number.isInteger(tid) && tid !== process.pid) require("node:os").setPriority(tid, ${BACKGROUND_NICE});
} catch {}
`;
