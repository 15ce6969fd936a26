import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import { ConfigError } from "../errors";
import { definePlugin } from "../plugins/contract";
import { createHub } from "../runtime";
import { loadHubConfig } from "./load";
import { profileDefaults } from "./schema";

function fieldsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.details.map((d) => d.field);
  }
  assert.fail("expected a ConfigError");
}

describe("configuration", () => {
  it("pins the defaults of each profile", () => {
    const embedded = loadHubConfig({}, {});
    assert.deepEqual(embedded, profileDefaults("embedded"));
    assert.equal(embedded.transporter, null);
    assert.equal(embedded.queue, "embedded");
    assert.equal(embedded.store, "embedded");
    assert.deepEqual(embedded.http, { host: "127.0.0.1", port: 8800, maxBodyBytes: 1048576, maxBatch: 1000 });
    assert.deepEqual(embedded.roles, ["ingestion", "consumer", "control"]);
    assert.deepEqual(embedded.topics, { activities: "hub.activities", deadLetter: "hub.activities.dlq" });
    const stack = loadHubConfig({}, { HUB_PROFILE: "stack" });
    assert.equal(stack.transporter, "nats://127.0.0.1:4222");
    assert.deepEqual(stack.queue, { type: "kafka", options: { brokers: ["127.0.0.1:9092"] } });
    assert.equal(typeof stack.store === "object" && stack.store.type, "hbase");
  });

  it("applies file overrides, then HUB_* variables", () => {
    const config = loadHubConfig(
      { http: { port: 9000 }, quota: { rate: 10 } },
      {
        HUB_PORT: "9100",
        HUB_ROLES: "ingestion, consumer",
        HUB_DATA_DIR: "/tmp/x",
        HUB_QUEUE: '{"type":"embedded","options":{"partitions":4}}',
      },
    );
    assert.equal(config.http.port, 9100);
    assert.equal(config.quota.rate, 10);
    assert.deepEqual(config.roles, ["ingestion", "consumer"]);
    assert.deepEqual(config.queue, { type: "embedded", options: { partitions: 4 } });
  });

  it("reports every invalid field, including unknown variables", () => {
    assert.deepEqual(
      fieldsOf(() =>
        loadHubConfig({}, { HUB_PORT: "eighty", HUB_ROLES: "ingestion,chef", HUB_NOPE: "1", HUB_LOG_LEVEL: "loud" }),
      ).sort(),
      ["HUB_NOPE", "http.port", "logLevel", "roles.1"],
    );
    assert.deepEqual(
      fieldsOf(() => loadHubConfig({}, { HUB_PROFILE: "cloud" })),
      ["HUB_PROFILE"],
    );
    assert.deepEqual(
      fieldsOf(() => loadHubConfig({}, { HUB_PLUGINS: "{not json" })),
      ["HUB_PLUGINS"],
    );
  });

  it("validates each plugin's config at start-up, with the plugin id in the field path", () => {
    const plugin = definePlugin({
      manifest: {
        id: "demo",
        kind: "consumer",
        version: "1.0.0",
        description: "demo",
        config: z.object({ batch: z.number().int().max(10) }).strict(),
        roles: ["consumer"],
      },
      services: () => [],
    });
    const env = { HUB_DATA_DIR: "/tmp/hub-config-test", HUB_PLUGINS: '{"demo":{"batch":99,"extra":1},"ghost":{}}' };
    assert.deepEqual(fieldsOf(() => createHub({ plugins: [plugin] }, env)).sort(), [
      "plugins.demo",
      "plugins.demo.batch",
      "plugins.ghost",
    ]);
    assert.throws(
      () => createHub({ plugins: [] }, { HUB_DATA_DIR: "/tmp/hub-config-test", HUB_QUEUE: "carrier-pigeon" }),
      /Unknown queue type/,
    );
  });
});
