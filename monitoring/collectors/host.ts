import { readdir, readFile, stat, statfs } from "node:fs/promises";
import { join } from "node:path";
import type { Metrics } from "../metrics/library";
import type { Collector } from "./collector";

/** Parses `/proc/meminfo` into bytes by field name. */
export function parseMeminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^(\w+):\s+(\d+)(?:\s+kB)?/.exec(line);
    if (match) out[match[1]!] = Number(match[2]) * (line.includes("kB") ? 1024 : 1);
  }
  return out;
}

/** Parses `/proc/net/dev` into cumulative byte and packet counts per interface. */
export function parseNetDev(
  text: string,
): Array<{ iface: string; rxBytes: number; txBytes: number; rxErrors: number; txErrors: number }> {
  const out = [];
  for (const line of text.split("\n").slice(2)) {
    const [name, rest] = line.split(":");
    if (rest === undefined) continue;
    const f = rest.trim().split(/\s+/).map(Number);
    out.push({
      iface: name!.trim(),
      rxBytes: f[0] ?? 0,
      rxErrors: f[2] ?? 0,
      txBytes: f[8] ?? 0,
      txErrors: f[10] ?? 0,
    });
  }
  return out;
}

/** Parses the aggregate `cpu` line of `/proc/stat`: jiffies busy and total. */
export function parseProcStatCpu(text: string): { busy: number; total: number } | undefined {
  const line = text.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) return undefined;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Bytes under a directory, two levels deep and at most `maxFiles` files (bounded work per run). */
export async function directoryBytes(dir: string, maxFiles = 2000): Promise<number> {
  let total = 0;
  let files = 0;
  const walk = async (path: string, depth: number): Promise<void> => {
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (files >= maxFiles) return;
      const full = join(path, entry.name);
      if (entry.isDirectory()) {
        if (depth < 2) await walk(full, depth + 1);
      } else if (entry.isFile()) {
        files++;
        total += (await stat(full).catch(() => undefined))?.size ?? 0;
      }
    }
  };
  await walk(dir, 0);
  return total;
}

/** The machine, from /proc (Linux): load, CPU, memory, the data dir's disk and size, network. */
export function hostCollector(metrics: Metrics, intervalMs: number, dataDir: string): Collector {
  const load = metrics.gauge({ name: "hub.host.load", description: "Load average", tags: ["window"] });
  const cpu = metrics.gauge({
    name: "hub.host.cpu.percent",
    description: "Machine CPU busy (100 = all cores)",
    tags: [],
    unit: "percent",
  });
  const memory = metrics.gauge({
    name: "hub.host.memory.bytes",
    description: "Machine memory",
    tags: ["kind"],
    unit: "bytes",
  });
  const dataBytes = metrics.gauge({
    name: "hub.storage.data_dir.bytes",
    description: "Bytes the hub's data dir holds (embedded queue, store, metrics, alerts)",
    tags: [],
    unit: "bytes",
  });
  const disk = metrics.gauge({
    name: "hub.host.disk.bytes",
    description: "Space of the data dir's file system",
    tags: ["kind"],
    unit: "bytes",
  });
  const net = metrics.gauge({
    name: "hub.host.net.bytes",
    description: "Cumulative network bytes per interface",
    tags: ["iface", "direction"],
    unit: "bytes",
  });
  const netErrors = metrics.gauge({
    name: "hub.host.net.errors",
    description: "Cumulative network errors per interface",
    tags: ["iface", "direction"],
  });
  let lastCpu: { busy: number; total: number } | undefined;

  const read = (path: string): Promise<string | undefined> => readFile(path, "utf8").catch(() => undefined);
  return {
    name: "host",
    intervalMs,
    async collect() {
      const [loadavg, meminfo, stat, netdev] = await Promise.all([
        read("/proc/loadavg"),
        read("/proc/meminfo"),
        read("/proc/stat"),
        read("/proc/net/dev"),
      ]);
      if (loadavg) {
        const [one, five, fifteen] = loadavg.split(" ").map(Number);
        load.set(one ?? 0, { window: "1m" });
        load.set(five ?? 0, { window: "5m" });
        load.set(fifteen ?? 0, { window: "15m" });
      }
      if (meminfo) {
        const m = parseMeminfo(meminfo);
        memory.set(m.MemTotal ?? 0, { kind: "total" });
        memory.set(m.MemAvailable ?? 0, { kind: "available" });
        memory.set((m.MemTotal ?? 0) - (m.MemAvailable ?? 0), { kind: "used" });
      }
      if (stat) {
        const now = parseProcStatCpu(stat);
        if (now && lastCpu && now.total > lastCpu.total)
          cpu.set(((now.busy - lastCpu.busy) / (now.total - lastCpu.total)) * 100);
        lastCpu = now;
      }
      if (netdev) {
        for (const i of parseNetDev(netdev)) {
          net.set(i.rxBytes, { iface: i.iface, direction: "rx" });
          net.set(i.txBytes, { iface: i.iface, direction: "tx" });
          netErrors.set(i.rxErrors, { iface: i.iface, direction: "rx" });
          netErrors.set(i.txErrors, { iface: i.iface, direction: "tx" });
        }
      }
      dataBytes.set(await directoryBytes(dataDir));
      const fs = await statfs(dataDir).catch(() => undefined);
      if (fs) {
        const total = fs.blocks * fs.bsize;
        const available = fs.bavail * fs.bsize;
        disk.set(total, { kind: "total" });
        disk.set(available, { kind: "available" });
        disk.set(total - fs.bfree * fs.bsize, { kind: "used" });
      }
    },
  };
}
