import { monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from "node:perf_hooks";
import type { Metrics } from "../metrics/library";
import type { Collector } from "./collector";

/** The process: CPU, memory, heap, event-loop delay, garbage collection. */
export function processCollector(metrics: Metrics, intervalMs: number): Collector {
  const cpu = metrics.gauge({
    name: "hub.process.cpu.percent",
    description: "CPU used by the process (100 = one core)",
    tags: ["mode"],
    unit: "percent",
  });
  const memory = metrics.gauge({
    name: "hub.process.memory.bytes",
    description: "Process memory",
    tags: ["kind"],
    unit: "bytes",
  });
  const loopDelay = metrics.gauge({
    name: "hub.process.eventloop.delay.ms",
    description: "Event-loop delay over the last interval",
    tags: ["stat"],
    unit: "ms",
  });
  const gcCount = metrics.counter({ name: "hub.process.gc.count", description: "Garbage collections", tags: ["kind"] });
  const gcTime = metrics.counter({
    name: "hub.process.gc.ms",
    description: "Time spent in garbage collection",
    tags: ["kind"],
    unit: "ms",
  });

  const histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  histogram.enable();
  const gcKinds: Record<number, string> = { 1: "minor", 2: "major", 4: "incremental", 8: "weakcb" };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const detail = (entry as { detail?: { kind?: number } }).detail;
      const kind = gcKinds[detail?.kind ?? 0] ?? "other";
      gcCount.inc({ kind });
      gcTime.inc({ kind }, entry.duration);
    }
  });
  observer.observe({ entryTypes: ["gc"] });

  let lastCpu = process.cpuUsage();
  let lastAt = performance.now();
  return {
    name: "process",
    intervalMs,
    collect() {
      const now = performance.now();
      const usage = process.cpuUsage(lastCpu);
      const elapsedUs = (now - lastAt) * 1000;
      if (elapsedUs > 0) {
        cpu.set((usage.user / elapsedUs) * 100, { mode: "user" });
        cpu.set((usage.system / elapsedUs) * 100, { mode: "system" });
      }
      lastCpu = process.cpuUsage();
      lastAt = now;
      const mem = process.memoryUsage();
      memory.set(mem.rss, { kind: "rss" });
      memory.set(mem.heapUsed, { kind: "heap_used" });
      memory.set(mem.heapTotal, { kind: "heap_total" });
      memory.set(mem.external, { kind: "external" });
      if (histogram.count > 0) {
        loopDelay.set(histogram.percentile(50) / 1e6, { stat: "p50" });
        loopDelay.set(histogram.percentile(99) / 1e6, { stat: "p99" });
        loopDelay.set(histogram.max / 1e6, { stat: "max" });
      }
      histogram.reset();
    },
    stop() {
      histogram.disable();
      observer.disconnect();
    },
  };
}
