import { aggregate, type MetricsSink, type Series } from "../sinks/contract";
import type { Rule, RuleQuery } from "./rules";

/** One judged series of a rule: `key` identifies it among the rule's alerts. */
export interface Judgement {
  key: string;
  tags: Record<string, string>;
  value: number | null;
  breached: boolean;
}

export function seriesKey(tags: Record<string, string>): string {
  return Object.keys(tags)
    .sort()
    .map((k) => `${k}=${tags[k]}`)
    .join(",");
}

function compare(value: number, op: ">" | ">=" | "<" | "<=", threshold: number): boolean {
  switch (op) {
    case ">":
      return value > threshold;
    case ">=":
      return value >= threshold;
    case "<":
      return value < threshold;
    case "<=":
      return value <= threshold;
  }
}

/**
 * Points of a series inside the window, plus the last one before it: the publisher de-duplicates
 * unchanged values, so a flat series may have no point inside a short window.
 */
function windowPoints(series: Series, windowStart: number): Array<[number, number]> {
  const inside = series.points.filter((p) => p[0] >= windowStart);
  const before = series.points.filter((p) => p[0] < windowStart);
  const carried = before[before.length - 1];
  return carried ? [carried, ...inside] : inside;
}

/** Increase of a cumulative counter over the points, tolerating resets (restart → counts from 0). */
export function increase(points: Array<[number, number]>): number {
  let total = 0;
  for (let i = 1; i < points.length; i++) {
    const delta = points[i]![1] - points[i - 1]![1];
    total += delta >= 0 ? delta : points[i]![1];
  }
  return total;
}

/** Reads a rule's query over [start, end]. */
function read(sink: MetricsSink, q: RuleQuery, start: number, end: number): Promise<Series[]> {
  return sink.query({
    metric: q.metric,
    start,
    end,
    aggregator: q.aggregator,
    ...(q.tags ? { tags: q.tags } : {}),
    ...(q.groupBy ? { groupBy: q.groupBy } : {}),
  });
}

export interface EvaluationContext {
  sink: MetricsSink;
  now: number;
  /** How far before the window to look for a carried value (the publisher's de-duplication horizon). */
  carryMs: number;
}

/** Judges every series a rule's query returns. */
export async function evaluateRule(rule: Rule, { sink, now, carryMs }: EvaluationContext): Promise<Judgement[]> {
  switch (rule.kind) {
    case "threshold":
    case "rate": {
      const q = rule.query;
      const start = now - q.windowMs;
      const series = await read(sink, q, start - carryMs, now);
      return series.flatMap((s) => {
        const points = windowPoints(s, start);
        if (points.length === 0) return [];
        let value: number;
        if (rule.kind === "threshold") {
          const inside = points.filter((p) => p[0] >= start);
          value = aggregate(
            (inside.length > 0 ? inside : points).map((p) => p[1]),
            q.aggregator,
          );
        } else {
          if (points.length < 2)
            return [{ key: seriesKey(s.tags), tags: s.tags, value: 0, breached: compare(0, rule.op, rule.value) }];
          const seconds = (points[points.length - 1]![0] - points[0]![0]) / 1000;
          value = seconds > 0 ? increase(points) / seconds : 0;
        }
        return [{ key: seriesKey(s.tags), tags: s.tags, value, breached: compare(value, rule.op, rule.value) }];
      });
    }
    case "absence": {
      const q = rule.query;
      const lookback = Math.max(rule.absentForMs * 4, q.windowMs);
      const series = await read(sink, q, now - lookback, now);
      if (series.length === 0)
        return [{ key: seriesKey(q.tags ?? {}), tags: q.tags ?? {}, value: null, breached: true }];
      return series.map((s) => {
        const lastAt = s.points[s.points.length - 1]![0];
        const silentFor = now - lastAt;
        return {
          key: seriesKey(s.tags),
          tags: s.tags,
          value: silentFor / 1000,
          breached: silentFor >= rule.absentForMs,
        };
      });
    }
    case "burn_rate": {
      const budget = 1 - rule.objective;
      const ratio = async (windowMs: number): Promise<Map<string, { tags: Record<string, string>; burn: number }>> => {
        const start = now - windowMs - carryMs;
        const [errors, total] = await Promise.all([
          read(sink, rule.errors, start, now),
          read(sink, rule.total, start, now),
        ]);
        const errorsByKey = new Map(errors.map((s) => [seriesKey(s.tags), increase(windowPoints(s, now - windowMs))]));
        const out = new Map<string, { tags: Record<string, string>; burn: number }>();
        for (const s of total) {
          const key = seriesKey(s.tags);
          const all = increase(windowPoints(s, now - windowMs));
          const bad = errorsByKey.get(key) ?? 0;
          out.set(key, { tags: s.tags, burn: all > 0 ? bad / all / budget : 0 });
        }
        return out;
      };
      const [long, short] = await Promise.all([ratio(rule.longWindowMs), ratio(rule.shortWindowMs)]);
      return [...long.entries()].map(([key, { tags, burn }]) => ({
        key,
        tags,
        value: burn,
        breached: burn > rule.factor && (short.get(key)?.burn ?? 0) > rule.factor,
      }));
    }
  }
}
