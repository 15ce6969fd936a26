import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import type { HubConfigOverrides } from "../../core/config/load";
import type { HubPlugin } from "../../core/plugins/contract";
import { createHub, type Hub } from "../../core/runtime";
import { restIngestionPlugin } from "../../plugins/ingestion/plugin";
import { leadProfilesPlugin } from "../../plugins/lead-profiles/plugin";
import { tempDir } from "./tmp";

export const TEST_ADMIN_TOKEN = "test-admin-token-0123456789abcdef";

export interface TestHub {
  hub: Hub;
  /** Base URL of the HTTP API, e.g. `http://127.0.0.1:40123`. */
  url: string;
  dataDir: string;
  /** Creates a tenant through the admin API; returns its id and keys. */
  createTenant(
    name?: string,
    quota?: { rate?: number; burst?: number },
  ): Promise<{ tenantId: string; apiKey: string; writeKey: string }>;
  /** fetch() against the hub with a Bearer key and JSON body. */
  request(
    method: string,
    path: string,
    key: string | undefined,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: any; headers: Headers }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  stop(): Promise<void>;
}

let tenantCounter = 0;

/**
 * Starts a complete hub in this process on the embedded profile, on an ephemeral port and a
 * fresh data directory. `plugins` defaults to REST ingestion + lead profiles.
 */
export async function startTestHub(
  options: { plugins?: HubPlugin[]; config?: HubConfigOverrides; env?: Record<string, string>; dataDir?: string } = {},
): Promise<TestHub> {
  const tmp = options.dataDir === undefined ? tempDir("hub-it-") : undefined;
  const dataDir = options.dataDir ?? tmp!.dir;
  const hub = createHub(
    {
      plugins: options.plugins ?? [restIngestionPlugin, leadProfilesPlugin],
      config: {
        logLevel: "warn",
        ...options.config,
        http: { port: 0, ...options.config?.http },
        adminToken: TEST_ADMIN_TOKEN,
      },
    },
    { HUB_DATA_DIR: dataDir, ...options.env },
  );
  await hub.start();
  const api = hub.broker.getLocalService("api") as unknown as { server: Server };
  const port = (api.server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  const request: TestHub["request"] = async (method, path, key, body, headers = {}) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      // non-JSON bodies are returned as text
    }
    return { status: response.status, body: parsed, headers: response.headers };
  };

  return {
    hub,
    url,
    dataDir,
    request,
    async createTenant(name = `tenant-${process.pid}-${++tenantCounter}`, quota) {
      const result = await request("POST", "/api/v1/admin/tenants", TEST_ADMIN_TOKEN, {
        name,
        ...(quota ? { quota } : {}),
      });
      if (result.status !== 201)
        throw new Error(`tenant creation failed: ${result.status} ${JSON.stringify(result.body)}`);
      return { tenantId: result.body.tenantId, apiKey: result.body.apiKey, writeKey: result.body.writeKey };
    },
    async stop() {
      await hub.stop();
      tmp?.cleanup();
    },
  };
}
