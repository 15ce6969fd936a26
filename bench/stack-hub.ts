/**
 * The hub that `npm run bench:stack` measures: REST ingestion (intake → Kafka + store in parallel)
 * alone on one node, configured by HUB_* variables (stack profile).
 */
import { createHub } from "../core/runtime";
import { restIngestionPlugin } from "../plugins/ingestion/plugin";

const hub = createHub({ plugins: [restIngestionPlugin], broker: { namespace: `bench-stack-${process.pid}` } });
let stopping = false;
const shutdown = (): void => {
  if (stopping) return;
  stopping = true;
  hub.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
hub.start().catch((error: unknown) => {
  process.stderr.write(`start-up failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
