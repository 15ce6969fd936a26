import { hostname } from "node:os";

/** A lock owner id that lets another process on the same host detect a dead holder (kill -9). */
export function lockOwnerId(nonce: string): string {
  return `${hostname()}:${process.pid}:${nonce}`;
}

export function ownerIsDeadLocalProcess(owner: string): boolean {
  const [host, pid] = owner.split(":");
  if (host !== hostname() || !/^\d+$/.test(pid ?? "")) return false;
  if (Number(pid) === process.pid) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return typeof error === "object" && error !== null && Reflect.get(error, "code") === "ESRCH";
  }
}
