/**
 * One hub process of the scale-out test (test/scale-out.integration.test.ts): REST ingestion and
 * the PostgreSQL effects consumer, on whatever roles HUB_ROLES gives it. The Moleculer namespace
 * and the consumer group come from HUB_TEST_SCALEOUT_RUN so parallel runs never meet on NATS or
 * in Kafka.
 */
import { createHub } from "../../core/runtime";
import { restIngestionPlugin } from "../../plugins/ingestion/plugin";
import { effectsConsumer } from "./effects-consumer";

const run = process.env.HUB_TEST_SCALEOUT_RUN ?? "local";
const hub = createHub({
  plugins: [restIngestionPlugin, effectsConsumer(`scaleout-${run}`)],
  broker: { namespace: `scaleout-${run}` },
});
let stopping = false;
const shutdown = (): void => {
  if (stopping) return;
  stopping = true;
  hub.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`shutdown failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
hub.start().then(
  () => process.stdout.write(`started ${hub.config.nodeId ?? ""}\n`),
  (error: unknown) => {
    process.stderr.write(`start-up failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
