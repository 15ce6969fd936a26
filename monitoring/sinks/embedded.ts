import { join } from "node:path";
import type { HealthStatus } from "../../core/health";
import { openSqlite, type SqliteDatabase } from "../../core/sqlite";
import {
  aggregate,
  SinkWriteError,
  type MetricPoint,
  type MetricsSink,
  type Series,
  type SeriesQuery,
} from "./contract";

export interface EmbeddedSinkOptions {
  /** Directory of `metrics.db`. */
  dataDir: string;
  /** Points older than this are deleted (default 14 days). */
  retentionMs?: number;
}

const MAX_POINTS_PER_QUERY = 2_000_000;

/**
 * The local time-series store of the embedded profile: one SQLite file, series keyed by metric
 * and canonical tags, points `(series, ts)`. Writes are not fsynced one by one (metrics tolerate
 * losing the last second on a crash; activities do not, and live elsewhere).
 */
export class EmbeddedMetricsSink implements MetricsSink {
  readonly type = "embedded";
  private db: SqliteDatabase | undefined;
  private readonly seriesIds = new Map<string, number>();
  private retentionTimer: NodeJS.Timeout | undefined;
  private readonly retentionMs: number;

  constructor(private readonly options: EmbeddedSinkOptions) {
    this.retentionMs = options.retentionMs ?? 14 * 86_400_000;
  }

  async start(): Promise<void> {
    if (this.db) return;
    const db = openSqlite(join(this.options.dataDir, "metrics.db"));
    db.pragma("synchronous = NORMAL");
    db.exec(`
      CREATE TABLE IF NOT EXISTS series (
        id INTEGER PRIMARY KEY,
        metric TEXT NOT NULL,
        tags TEXT NOT NULL,
        UNIQUE (metric, tags)
      );
      CREATE TABLE IF NOT EXISTS points (
        series INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (series, ts)
      ) WITHOUT ROWID;
    `);
    this.db = db;
    this.prune();
    this.retentionTimer = setInterval(() => this.prune(), 3_600_000);
    this.retentionTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.retentionTimer);
    this.db?.close();
    this.db = undefined;
    this.seriesIds.clear();
  }

  async write(points: MetricPoint[]): Promise<void> {
    const db = this.db;
    if (!db) throw new SinkWriteError("the embedded metrics store is not started", true);
    if (points.length === 0) return;
    const insertSeries = db.prepare("INSERT INTO series (metric, tags) VALUES (?, ?) ON CONFLICT DO NOTHING");
    const findSeries = db.prepare("SELECT id FROM series WHERE metric = ? AND tags = ?");
    const insertPoint = db.prepare("INSERT OR REPLACE INTO points (series, ts, value) VALUES (?, ?, ?)");
    db.transaction(() => {
      for (const point of points) {
        if (!Number.isFinite(point.value)) continue;
        const tags = canonicalTags(point.tags);
        const key = `${point.metric}\u0000${tags}`;
        let id = this.seriesIds.get(key);
        if (id === undefined) {
          insertSeries.run(point.metric, tags);
          id = (findSeries.get(point.metric, tags) as { id: number }).id;
          this.seriesIds.set(key, id);
        }
        insertPoint.run(id, Math.round(point.timestamp), point.value);
      }
    })();
  }

  async query(query: SeriesQuery): Promise<Series[]> {
    const db = this.requireDb();
    const end = query.end ?? Date.now();
    const aggregator = query.aggregator ?? "avg";
    const groupBy = query.groupBy ?? [];
    const filter = query.tags ?? {};
    const candidates = (
      db.prepare("SELECT id, tags FROM series WHERE metric = ?").all(query.metric) as Array<{
        id: number;
        tags: string;
      }>
    )
      .map((row) => ({ id: row.id, tags: JSON.parse(row.tags) as Record<string, string> }))
      .filter(
        (s) =>
          Object.entries(filter).every(([k, v]) => s.tags[k] === v) && groupBy.every((k) => s.tags[k] !== undefined),
      );
    const groups = new Map<string, { tags: Record<string, string>; ids: number[] }>();
    for (const s of candidates) {
      const tags: Record<string, string> = { ...filter };
      for (const k of groupBy) tags[k] = s.tags[k]!;
      const key = canonicalTags(tags);
      const group = groups.get(key) ?? { tags, ids: [] };
      group.ids.push(s.id);
      groups.set(key, group);
    }
    const select = db.prepare(
      "SELECT ts, value FROM points WHERE series = ? AND ts BETWEEN ? AND ? ORDER BY ts LIMIT ?",
    );
    const out: Series[] = [];
    for (const group of groups.values()) {
      // bucket timestamp -> one summarised value per member series
      const buckets = new Map<number, number[]>();
      for (const id of group.ids) {
        const rows = select.all(id, query.start, end, MAX_POINTS_PER_QUERY) as Array<{ ts: number; value: number }>;
        const perBucket = new Map<number, number[]>();
        for (const row of rows) {
          const bucket = query.downsampleMs ? row.ts - (row.ts % query.downsampleMs) : row.ts;
          const list = perBucket.get(bucket);
          if (list) list.push(row.value);
          else perBucket.set(bucket, [row.value]);
        }
        for (const [bucket, values] of perBucket) {
          const summary = aggregate(values, query.downsampleAggregator ?? aggregator);
          const list = buckets.get(bucket);
          if (list) list.push(summary);
          else buckets.set(bucket, [summary]);
        }
      }
      if (buckets.size === 0) continue;
      const points = [...buckets.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([ts, values]): [number, number] => [ts, aggregate(values, aggregator)]);
      out.push({ metric: query.metric, tags: group.tags, points });
    }
    return out.sort((a, b) => canonicalTags(a.tags).localeCompare(canonicalTags(b.tags)));
  }

  async tagValues(metric: string, tag: string, since: number): Promise<string[]> {
    const db = this.requireDb();
    const rows = db
      .prepare(
        "SELECT s.tags FROM series s WHERE s.metric = ? AND EXISTS (SELECT 1 FROM points p WHERE p.series = s.id AND p.ts >= ?)",
      )
      .all(metric, since) as Array<{ tags: string }>;
    const values = new Set<string>();
    for (const row of rows) {
      const value = (JSON.parse(row.tags) as Record<string, string>)[tag];
      if (value !== undefined) values.add(value);
    }
    return [...values].sort();
  }

  async health(): Promise<HealthStatus> {
    if (!this.db) return { ok: false, status: "down", detail: "not started" };
    try {
      this.db.prepare("SELECT 1").get();
      return { ok: true, status: "up" };
    } catch (error) {
      return { ok: false, status: "down", detail: String(error) };
    }
  }

  private prune(): void {
    this.db?.prepare("DELETE FROM points WHERE ts < ?").run(Date.now() - this.retentionMs);
  }

  private requireDb(): SqliteDatabase {
    if (!this.db) throw new Error("the embedded metrics store is not started");
    return this.db;
  }
}

function canonicalTags(tags: Record<string, string>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}
