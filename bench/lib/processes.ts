import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";

/** Starts a Node/TypeScript program as a child process with tsx; resolves when `readyUrl` answers 2xx. */
export async function startProcess(
  args: string[],
  env: Record<string, string>,
  readyUrl: string,
  timeoutMs = 60_000,
): Promise<ChildProcess> {
  // Another server on the port would answer the readiness check and take the load meant for
  // this one: refuse to start rather than measure it.
  if (await answers(readyUrl)) throw new Error(`${readyUrl} already answers: another process holds the port`);
  const child = spawn(process.execPath, ["--import", "tsx", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${args.join(" ")} exited with ${child.exitCode}`);
    try {
      const res = await fetch(readyUrl);
      if (res.ok) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill("SIGKILL");
  throw new Error(`${args.join(" ")} did not become ready within ${timeoutMs} ms`);
}

async function answers(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return true;
  } catch {
    return false;
  }
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await once(child, "exit");
  clearTimeout(timer);
}

/** CPU seconds a child process has used so far, all its threads (user + system, from /proc). */
export function cpuSeconds(child: ChildProcess): number {
  const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (100/s)
}

/**
 * Bytes a child process (all its threads) has handed to `write`-family system calls so far
 * (`wchar` in `/proc/<pid>/io`): files, WAL, sockets alike. Under an ingest load it is dominated by
 * the queue's and the store's files.
 */
export function writtenBytes(child: ChildProcess): number {
  const line = readFileSync(`/proc/${child.pid}/io`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("wchar:"));
  return Number(line?.slice("wchar:".length) ?? NaN);
}

/**
 * Waits until a child process has settled (under `maxCpu` cores over a second), e.g. until a
 * store's background indexing of the previous scenario's writes is done. Bounded by `timeoutMs`.
 */
export async function waitForIdle(child: ChildProcess, maxCpu = 0.15, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = cpuSeconds(child);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = cpuSeconds(child);
    if (now - last < maxCpu) return;
    last = now;
  }
}
