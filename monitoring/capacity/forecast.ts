/** A fitted trend: value(t) = level + slope * (t - origin), t in ms. */
export interface Trend {
  method: "linear" | "holt";
  origin: number;
  level: number;
  /** Change per millisecond. */
  slope: number;
}

/** Least-squares line through the points. Needs at least two distinct timestamps. */
export function linearRegression(points: ReadonlyArray<readonly [number, number]>): Trend | undefined {
  if (points.length < 2) return undefined;
  const origin = points[points.length - 1]![0];
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  for (const [t, y] of points) {
    const x = t - origin;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const n = points.length;
  const denominator = n * sxx - sx * sx;
  if (denominator === 0) return undefined;
  const slope = (n * sxy - sx * sy) / denominator;
  const level = (sy - slope * sx) / n;
  return { method: "linear", origin, level, slope };
}

/**
 * Holt's linear (double exponential) smoothing on points resampled to a regular step: the level
 * follows recent values (`alpha`) and the trend recent changes (`beta`), so a recent change of
 * pace weighs more than in a straight regression over the whole history.
 */
export function holt(points: ReadonlyArray<readonly [number, number]>, alpha = 0.5, beta = 0.3): Trend | undefined {
  if (points.length < 3) return undefined;
  const first = points[0]![0];
  const last = points[points.length - 1]![0];
  if (last <= first) return undefined;
  const steps = Math.min(500, points.length);
  const step = (last - first) / (steps - 1);
  // Resample by linear interpolation so irregular sampling (de-duplicated points) does not skew the trend.
  const series: number[] = [];
  let j = 0;
  for (let i = 0; i < steps; i++) {
    const t = first + i * step;
    while (j < points.length - 2 && points[j + 1]![0] < t) j++;
    const [t0, y0] = points[j]!;
    const [t1, y1] = points[j + 1]!;
    series.push(t1 === t0 ? y1 : y0 + ((y1 - y0) * (t - t0)) / (t1 - t0));
  }
  let level = series[0]!;
  let trend = series[1]! - series[0]!;
  for (let i = 1; i < series.length; i++) {
    const previousLevel = level;
    level = alpha * series[i]! + (1 - alpha) * (level + trend);
    trend = beta * (level - previousLevel) + (1 - beta) * trend;
  }
  return { method: "holt", origin: last, level, slope: trend / step };
}

export function valueAt(trend: Trend, t: number): number {
  return trend.level + trend.slope * (t - trend.origin);
}

/** When the trend reaches `limit` (epoch ms), or undefined when it never does (flat or moving away). */
export function timeToLimit(trend: Trend, limit: number, now: number): number | undefined {
  const current = valueAt(trend, now);
  if (current >= limit) return now;
  if (trend.slope <= 0) return undefined;
  return now + (limit - current) / trend.slope;
}
