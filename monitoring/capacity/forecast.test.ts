import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { holt, linearRegression, timeToLimit, valueAt } from "./forecast";

const DAY = 86_400_000;

describe("capacity forecasts", () => {
  it("fits a straight line and says when it reaches the limit", () => {
    const points = Array.from({ length: 30 }, (_, i): [number, number] => [i * DAY, 100 + 10 * i]);
    const trend = linearRegression(points)!;
    assert.ok(Math.abs(trend.slope * DAY - 10) < 1e-9);
    const now = 29 * DAY;
    assert.ok(Math.abs(valueAt(trend, now) - 390) < 1e-6);
    assert.ok(Math.abs(timeToLimit(trend, 500, now)! - 40 * DAY) < 1000);
  });

  it("Holt's smoothing follows a recent change of pace that a regression averages away", () => {
    const points = Array.from({ length: 60 }, (_, i): [number, number] => [
      i * DAY,
      i < 40 ? 100 : 100 + (i - 40) * 20,
    ]);
    const linear = linearRegression(points)!;
    const smoothed = holt(points)!;
    assert.ok(smoothed.slope * DAY > 15, `holt slope ${smoothed.slope * DAY}`);
    assert.ok(linear.slope * DAY < smoothed.slope * DAY);
    const now = 59 * DAY;
    assert.ok(timeToLimit(smoothed, 1000, now)! < timeToLimit(linear, 1000, now)!);
  });

  it("never reaches a limit on a flat or falling trend", () => {
    const points = Array.from({ length: 10 }, (_, i): [number, number] => [i * 1000, 50 - i]);
    assert.equal(timeToLimit(linearRegression(points)!, 100, 10_000), undefined);
    assert.equal(linearRegression([[0, 1]]), undefined);
    assert.equal(
      holt([
        [0, 1],
        [1, 2],
      ]),
      undefined,
    );
  });
});
