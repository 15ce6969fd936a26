import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { MetricsSink, Series } from "./contract";

/** Polls until `read` gives a value `ok` accepts (sinks like OpenTSDB show writes shortly after). */
async function eventually(
  read: () => Promise<Series[]>,
  ok: (s: Series[]) => boolean,
  timeoutMs = 15_000,
): Promise<Series[]> {
  const deadline = Date.now() + timeoutMs;
  let last: Series[] = [];
  for (let attempt = 0; attempt < 200 && Date.now() < deadline; attempt++) {
    last = await read();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}

/**
 * The metrics sink contract. Every implementation runs this suite; `open()` returns a started
 * sink. Metric names are random per run, so the suite can run against a shared OpenTSDB.
 */
export function metricsSinkContractSuite(
  name: string,
  open: () => Promise<MetricsSink>,
  cleanup: () => Promise<void> = async () => {},
): void {
  describe(`metrics sink contract: ${name}`, () => {
    let sink: MetricsSink;
    const run = randomUUID().slice(0, 8);
    const metric = (suffix: string): string => `hub.contract.r${run}.${suffix}`;
    const base = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;

    before(async () => {
      sink = await open();
    });
    after(async () => {
      await sink.stop();
      await cleanup();
    });

    it("is healthy once started", async () => {
      assert.equal((await sink.health()).ok, true);
    });

    it("reads back written points of one series, oldest first", async () => {
      const m = metric("raw");
      await sink.write([
        { metric: m, timestamp: base + 2000, value: 3, tags: { host: "h1", tenant: "t1" } },
        { metric: m, timestamp: base, value: 1, tags: { host: "h1", tenant: "t1" } },
        { metric: m, timestamp: base + 1000, value: 2.5, tags: { host: "h1", tenant: "t1" } },
      ]);
      const series = await eventually(
        () => sink.query({ metric: m, start: base - 1000, end: base + 10_000, tags: { tenant: "t1" } }),
        (s) => s[0]?.points.length === 3,
      );
      assert.equal(series.length, 1);
      assert.deepEqual(series[0]!.tags, { tenant: "t1" }, "only the filter's and the groups' tags");
      assert.deepEqual(series[0]!.points, [
        [base, 1],
        [base + 1000, 2.5],
        [base + 2000, 3],
      ]);
    });

    it("filters by tag and groups by tag", async () => {
      const m = metric("grouped");
      const points = [];
      for (const tenant of ["a", "b", "c"]) {
        for (let i = 0; i < 3; i++)
          points.push({ metric: m, timestamp: base + i * 1000, value: i + 1, tags: { host: "h1", tenant } });
      }
      await sink.write(points);
      const grouped = await eventually(
        () => sink.query({ metric: m, start: base, end: base + 5000, groupBy: ["tenant"] }),
        (s) => s.length === 3 && s.every((x) => x.points.length === 3),
      );
      assert.deepEqual(grouped.map((s) => s.tags.tenant).sort(), ["a", "b", "c"]);
      const onlyB = await sink.query({ metric: m, start: base, end: base + 5000, tags: { tenant: "b" } });
      assert.equal(onlyB.length, 1);
      assert.deepEqual(
        onlyB[0]!.points.map((p) => p[1]),
        [1, 2, 3],
      );
      assert.deepEqual((await sink.tagValues(m, "tenant", base - 1000)).sort(), ["a", "b", "c"]);
    });

    it("downsamples into aligned buckets and aggregates across series", async () => {
      const m = metric("downsampled");
      const points = [];
      for (const host of ["h1", "h2"]) {
        for (let i = 0; i < 6; i++) points.push({ metric: m, timestamp: base + i * 10_000, value: 10, tags: { host } });
      }
      await sink.write(points);
      const summed = await eventually(
        () => sink.query({ metric: m, start: base, end: base + 59_000, aggregator: "sum", downsampleMs: 30_000 }),
        (s) => s[0]?.points.length === 2 && s[0].points[1]![1] === 60,
      );
      assert.equal(summed.length, 1);
      // per series a bucket sums its three points (30); across the two hosts the buckets sum to 60
      assert.deepEqual(summed[0]!.points, [
        [base, 60],
        [base + 30_000, 60],
      ]);
    });

    it("summarises buckets and series separately (counters: max per bucket, sum across series)", async () => {
      const m = metric("counter");
      const points = [];
      for (const host of ["h1", "h2"]) {
        for (let i = 0; i < 6; i++)
          points.push({ metric: m, timestamp: base + i * 10_000, value: 100 + i, tags: { host } });
      }
      await sink.write(points);
      const totals = await eventually(
        () =>
          sink.query({
            metric: m,
            start: base,
            end: base + 59_000,
            aggregator: "sum",
            downsampleAggregator: "max",
            downsampleMs: 30_000,
          }),
        (s) => s[0]?.points.length === 2 && s[0].points[1]![1] === 210,
      );
      assert.deepEqual(totals[0]!.points, [
        [base, 204],
        [base + 30_000, 210],
      ]);
    });

    it("returns nothing for a metric never written", async () => {
      assert.deepEqual(await sink.query({ metric: metric("never"), start: base, end: base + 1000 }), []);
    });
  });
}
