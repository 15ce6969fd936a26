import hubDefinition from "../moleculer.config";
import { ConfigError } from "./errors";
import { createHub } from "./runtime";

/** `npm start`: runs the hub of `moleculer.config.ts` until SIGINT/SIGTERM, then drains and stops. */
async function main(): Promise<void> {
  let hub;
  try {
    hub = createHub(hubDefinition);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.toString()}\n`);
      process.exit(78);
    }
    throw error;
  }
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    hub.services.logger.info({ signal }, "stopping: finishing in-flight requests");
    hub.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  await hub.start();
  hub.services.logger.info(
    {
      profile: hub.config.profile,
      roles: hub.config.roles,
      url: `http://${hub.config.http.host}:${hub.config.http.port}`,
    },
    "activity hub started",
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`start-up failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
