/** A hub process for the crash test: REST ingestion + campaigns on the given data dir; prints its URL. */
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { createHub } from "../../core/runtime";
import { restIngestionPlugin } from "../ingestion/plugin";
import { campaignsPlugin } from "./plugin";

async function main(): Promise<void> {
  const hub = createHub(
    {
      plugins: [restIngestionPlugin, campaignsPlugin],
      config: {
        logLevel: "warn",
        http: { port: Number(process.env.HUB_TEST_PORT ?? 0) },
        adminToken: process.env.HUB_TEST_ADMIN ?? "",
        plugins: { campaigns: { smtp: { port: Number(process.env.HUB_TEST_SMTP_PORT) } } },
      },
    },
    { HUB_DATA_DIR: process.env.HUB_DATA_DIR },
  );
  await hub.start();
  const port = ((hub.broker.getLocalService("api") as unknown as { server: Server }).server.address() as AddressInfo)
    .port;
  process.stdout.write(`READY http://127.0.0.1:${port}\n`);
}

void main();
