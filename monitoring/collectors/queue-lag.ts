import type { ActivityQueue, PartitionLag } from "../../plugins/queue/contract";
import type { Metrics } from "../metrics/library";
import type { Collector } from "./collector";

/** Burrow's consumer statuses, worst last. */
export const LAG_STATUSES = ["OK", "WARNING", "STALL", "STOP"] as const;
export type LagStatus = (typeof LAG_STATUSES)[number];

export interface LagEvaluation {
  status: LagStatus;
  /** Messages behind, summed over partitions. */
  messages: number;
  /** Age of the oldest message not yet consumed (estimated from sampled end offsets), seconds. */
  seconds: number;
  partitions: Array<{ partition: number; status: LagStatus; lag: number; seconds: number }>;
}

export interface LagRules {
  /** Samples in Burrow's evaluation window (default 10). */
  window: number;
  /** Committed offset unchanged this long with lag > 0: STOP rather than STALL (default 5 min). */
  stopAfterMs: number;
}

interface Sample {
  at: number;
  committed: number;
  end: number;
  lag: number;
}

const MAX_HISTORY = 720;

/**
 * Burrow-style lag evaluation over a sliding window of samples per partition:
 * - lag 0 anywhere in the window: OK;
 * - committed offset unchanged across the window with lag > 0: STALL, or STOP once unchanged
 *   for `stopAfterMs`;
 * - committed offset moving but lag growing at every sample of the window: WARNING;
 * - otherwise OK.
 * Lag in seconds: time since the end offset first passed the committed offset, from the
 * sampled history of end offsets.
 */
export class LagEvaluator {
  private readonly history = new Map<string, Sample[]>();

  constructor(private readonly rules: LagRules = { window: 10, stopAfterMs: 300_000 }) {}

  record(group: string, topic: string, partitions: PartitionLag[], now: number): LagEvaluation {
    const evaluated = partitions.map((p) => {
      const key = `${group}\u0000${topic}\u0000${p.partition}`;
      const samples = this.history.get(key) ?? [];
      samples.push({ at: now, committed: Number(p.committed), end: Number(p.end), lag: p.lag });
      if (samples.length > MAX_HISTORY) samples.splice(0, samples.length - MAX_HISTORY);
      this.history.set(key, samples);
      return {
        partition: p.partition,
        lag: p.lag,
        status: this.partitionStatus(samples, now),
        seconds: lagSeconds(samples, now),
      };
    });
    const worst = evaluated.reduce<LagStatus>(
      (w, p) => (LAG_STATUSES.indexOf(p.status) > LAG_STATUSES.indexOf(w) ? p.status : w),
      "OK",
    );
    return {
      status: worst,
      messages: evaluated.reduce((a, p) => a + p.lag, 0),
      seconds: evaluated.reduce((a, p) => Math.max(a, p.seconds), 0),
      partitions: evaluated,
    };
  }

  private partitionStatus(samples: Sample[], now: number): LagStatus {
    const window = samples.slice(-this.rules.window);
    const last = window[window.length - 1]!;
    if (last.lag === 0 || window.some((s) => s.lag === 0)) return "OK";
    if (window.length < 2) return "OK";
    const first = window[0]!;
    if (window.every((s) => s.committed === first.committed)) {
      // How long the committed offset has stood still, looking further back than the window.
      let since = first.at;
      for (let i = samples.length - 1; i >= 0 && samples[i]!.committed === last.committed; i--) since = samples[i]!.at;
      return now - since >= this.rules.stopAfterMs
        ? "STOP"
        : window.length >= Math.min(3, this.rules.window)
          ? "STALL"
          : "OK";
    }
    let growing = window.length >= 3;
    for (let i = 1; i < window.length && growing; i++) if (window[i]!.lag <= window[i - 1]!.lag) growing = false;
    return growing ? "WARNING" : "OK";
  }
}

function lagSeconds(samples: Sample[], now: number): number {
  const last = samples[samples.length - 1]!;
  if (last.lag <= 0) return 0;
  // The oldest unconsumed record (offset = committed) was appended before the first sample whose
  // end offset had passed it.
  let appendedBy = samples[0]!.at;
  for (let i = samples.length - 1; i >= 0; i--) {
    if (samples[i]!.end > last.committed) appendedBy = samples[i]!.at;
    else break;
  }
  return Math.max(0, (now - appendedBy) / 1000);
}

export interface QueueLagSource {
  /** Groups to watch, read at every collection (groups can be added while running). */
  groups(): Array<{ group: string; topic: string }>;
  /** Dead-letter topics whose size is reported. */
  deadLetterTopics: string[];
}

/** A group that never commits: its lag is the number of records a topic holds. */
const SIZE_PROBE_GROUP = "__hub_monitoring_size_probe";

/** Queue lag per consumer group (messages, seconds, Burrow status) and dead-letter sizes. */
export function queueLagCollector(
  metrics: Metrics,
  intervalMs: number,
  queue: () => Promise<ActivityQueue>,
  source: QueueLagSource,
  evaluator = new LagEvaluator(),
): Collector & { last: Map<string, LagEvaluation> } {
  const messages = metrics.gauge({
    name: "hub.queue.lag.messages",
    description: "Messages a consumer group is behind",
    tags: ["group", "topic"],
  });
  const seconds = metrics.gauge({
    name: "hub.queue.lag.seconds",
    description: "Age of the oldest message a group has not consumed",
    tags: ["group", "topic"],
    unit: "seconds",
  });
  const status = metrics.gauge({
    name: "hub.queue.lag.status",
    description: "Burrow status of a group: 0 OK, 1 WARNING, 2 STALL, 3 STOP",
    tags: ["group", "topic"],
  });
  const deadLetters = metrics.gauge({
    name: "hub.queue.dead_letters.messages",
    description: "Records held by a dead-letter topic",
    tags: ["topic"],
  });
  const last = new Map<string, LagEvaluation>();
  return {
    name: "queue-lag",
    intervalMs,
    last,
    async collect(now) {
      const q = await queue();
      for (const { group, topic } of source.groups()) {
        const evaluation = evaluator.record(group, topic, await q.lag(group, topic), now);
        last.set(`${group}/${topic}`, evaluation);
        messages.set(evaluation.messages, { group, topic });
        seconds.set(evaluation.seconds, { group, topic });
        status.set(LAG_STATUSES.indexOf(evaluation.status), { group, topic });
      }
      for (const topic of source.deadLetterTopics) {
        const partitions = await q.lag(SIZE_PROBE_GROUP, topic);
        deadLetters.set(
          partitions.reduce((a, p) => a + p.lag, 0),
          { topic },
        );
      }
    },
  };
}
