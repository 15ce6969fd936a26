import { rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { metricsSinkContractSuite } from "./contract-suite";
import { EmbeddedMetricsSink } from "./embedded";

const dir = mkdtempSync(join(tmpdir(), "metrics-sink-"));
metricsSinkContractSuite(
  "embedded",
  async () => {
    const sink = new EmbeddedMetricsSink({ dataDir: dir });
    await sink.start();
    return sink;
  },
  async () => rmSync(dir, { recursive: true, force: true }),
);
