import { z } from "zod";
import type { MetricsSink, SeriesQuery } from "../sinks/contract";
import { holt, linearRegression, timeToLimit, valueAt, type Trend } from "./forecast";

export const capacityItemSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9-]{1,40}$/),
    title: z.string().max(100),
    unit: z.string().max(20).default(""),
    query: z
      .object({
        metric: z.string(),
        tags: z.record(z.string()).optional(),
        aggregator: z.enum(["sum", "avg", "min", "max"]).default("sum"),
        /** Plot and fit the per-second rate of a cumulative counter rather than its value. */
        rate: z.boolean().default(false),
      })
      .strict(),
    /** The limit, or a metric whose latest value is the limit (e.g. the disk's size). */
    limit: z.union([
      z.number().positive(),
      z
        .object({
          metric: z.string(),
          tags: z.record(z.string()).optional(),
          /** The limit is the current value plus this metric (e.g. data size + free disk). */
          addCurrent: z.boolean().default(false),
        })
        .strict(),
    ]),
    /** History the trend is fitted on (default 7 days). */
    historyMs: z
      .number()
      .int()
      .min(60_000)
      .default(7 * 86_400_000),
  })
  .strict();

export type CapacityItem = z.output<typeof capacityItemSchema>;

export interface CapacityForecast {
  id: string;
  title: string;
  unit: string;
  limit: number | null;
  current: number | null;
  history: Array<[number, number]>;
  forecasts: Array<{
    method: Trend["method"];
    slopePerDay: number;
    reachesLimitAt: string | null;
    projection: Array<[number, number]>;
  }>;
}

/** Capacity items every hub plans for; more come from `plugins.monitoring.capacity`. */
export function defaultCapacityItems(): CapacityItem[] {
  return [
    capacityItemSchema.parse({
      id: "disk",
      title: "Data dir disk space",
      unit: "bytes",
      query: { metric: "hub.host.disk.bytes", tags: { kind: "used" }, aggregator: "max" },
      limit: { metric: "hub.host.disk.bytes", tags: { kind: "total" } },
    }),
    capacityItemSchema.parse({
      id: "storage-growth",
      title: "Hub data growth vs. free disk",
      unit: "bytes",
      query: { metric: "hub.storage.data_dir.bytes", aggregator: "max" },
      limit: { metric: "hub.host.disk.bytes", tags: { kind: "available" }, addCurrent: true },
    }),
    capacityItemSchema.parse({
      id: "memory",
      title: "Machine memory",
      unit: "bytes",
      query: { metric: "hub.host.memory.bytes", tags: { kind: "used" }, aggregator: "max" },
      limit: { metric: "hub.host.memory.bytes", tags: { kind: "total" } },
    }),
    capacityItemSchema.parse({
      id: "intake-throughput",
      title: "Intake throughput",
      unit: "activities/s",
      query: { metric: "hub.intake.activities.accepted", aggregator: "sum", rate: true },
      limit: 11_600,
    }),
    capacityItemSchema.parse({
      id: "queue-lag",
      title: "Worst consumer lag",
      unit: "seconds",
      query: { metric: "hub.queue.lag.seconds", aggregator: "max" },
      limit: 60,
    }),
  ];
}

function toRate(points: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 1; i < points.length; i++) {
    const dt = (points[i]![0] - points[i - 1]![0]) / 1000;
    const dv = points[i]![1] - points[i - 1]![1];
    if (dt > 0) out.push([points[i]![0], dv >= 0 ? dv / dt : points[i]![1] / dt]);
  }
  return out;
}

/** Fits each item's history with linear regression and Holt's smoothing and says when the limit is reached. */
export async function planCapacity(
  sink: MetricsSink,
  items: CapacityItem[],
  now = Date.now(),
  horizonMs = 30 * 86_400_000,
): Promise<CapacityForecast[]> {
  return Promise.all(
    items.map(async (item) => {
      const start = now - item.historyMs;
      const downsampleMs = Math.max(10_000, Math.round(item.historyMs / 300 / 10_000) * 10_000);
      const query: SeriesQuery = {
        ...(item.query.rate ? { downsampleAggregator: "max" as const } : {}),
        metric: item.query.metric,
        start,
        end: now,
        aggregator: item.query.aggregator,
        downsampleMs,
        ...(item.query.tags ? { tags: item.query.tags } : {}),
      };
      const [series] = await sink.query(query);
      let history = series?.points ?? [];
      if (item.query.rate) history = toRate(history);
      let limit: number | null = null;
      if (typeof item.limit === "number") limit = item.limit;
      else {
        const [limitSeries] = await sink.query({
          metric: item.limit.metric,
          start,
          end: now,
          aggregator: "max",
          ...(item.limit.tags ? { tags: item.limit.tags } : {}),
        });
        limit = limitSeries?.points[limitSeries.points.length - 1]?.[1] ?? null;
        if (limit !== null && item.limit.addCurrent) limit += history[history.length - 1]?.[1] ?? 0;
      }
      const trends = [linearRegression(history), holt(history)].filter((t): t is Trend => t !== undefined);
      return {
        id: item.id,
        title: item.title,
        unit: item.unit,
        limit,
        current: history[history.length - 1]?.[1] ?? null,
        history,
        forecasts: trends.map((trend) => {
          const at = limit === null ? undefined : timeToLimit(trend, limit, now);
          const end = Math.min(now + horizonMs, at ?? Infinity);
          const projection: Array<[number, number]> = [
            [now, valueAt(trend, now)],
            [end, valueAt(trend, end)],
          ];
          return {
            method: trend.method,
            slopePerDay: trend.slope * 86_400_000,
            reachesLimitAt: at === undefined ? null : new Date(at).toISOString(),
            projection,
          };
        }),
      };
    }),
  );
}
