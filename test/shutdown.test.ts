import assert from "node:assert/strict";
import http from "node:http";
import { describe, it } from "node:test";
import { z } from "zod";
import { definePlugin } from "../core/plugins/contract";
import { restIngestionPlugin } from "../plugins/ingestion/plugin";
import { startTestHub } from "./support/hub";

/** A route whose answer takes `ms`: a request that is in flight for as long as the test needs. */
const slowPlugin = definePlugin({
  manifest: {
    id: "slow",
    kind: "consumer",
    version: "1.0.0",
    description: "test: GET /api/v1/slow answers after 600 ms",
    config: z.object({}).strict(),
    roles: ["ingestion"],
  },
  services: ({ hub }) => {
    hub.extensions.apiRoutes["GET slow"] = "slow.wait";
    return [
      {
        name: "slow",
        actions: {
          wait: {
            scope: "read",
            async handler() {
              await new Promise((resolve) => setTimeout(resolve, 600));
              return { done: true };
            },
          },
        },
      },
    ];
  },
});

function get(url: string, key: string): Promise<{ status: number; connection?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${key}` }, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
    });
    req.on("error", reject);
  });
}

describe("graceful stop", () => {
  it("finishes the requests in flight and refuses new ones with 503 shutting_down and Connection: close", async () => {
    const t = await startTestHub({ plugins: [restIngestionPlugin, slowPlugin] });
    const { apiKey } = await t.createTenant();
    const inFlight = get(`${t.url}/api/v1/slow`, apiKey);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stopped = t.stop();
    // The listener stays open while the slow request is in flight; a request arriving now is refused.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const late = await get(`${t.url}/api/v1/activities`, apiKey);
    assert.equal(late.status, 503);
    assert.equal(JSON.parse(late.body).error.code, "shutting_down");
    assert.equal(late.connection, "close");
    const first = await inFlight;
    assert.equal(first.status, 200, "the request in flight is answered");
    assert.deepEqual(JSON.parse(first.body), { done: true });
    await stopped;
  });
});
