import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A fresh temporary folder, removed by the returned cleanup. Should the folder have gained files
 * while it was being removed (something still writing after a stop), the error names them.
 */
export function tempDir(prefix = "hub-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const cleanup = (): void => {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (error) {
      let left: string[] = [];
      try {
        left = readdirSync(dir);
      } catch {
        // gone meanwhile
      }
      throw new Error(`could not remove ${dir}: ${String(error)}; left in it: ${left.join(", ")}`);
    }
  };
  return { dir, cleanup };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
