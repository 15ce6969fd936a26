import { ConfigError, type FieldError } from "../errors";
import { hubConfigSchema, PROFILES, profileDefaults, type HubConfig, type Profile } from "./schema";

export type HubConfigOverrides = Partial<Omit<HubConfig, "http" | "topics" | "quota" | "reconciler">> & {
  http?: Partial<HubConfig["http"]>;
  reconciler?: Partial<HubConfig["reconciler"]>;
  topics?: Partial<HubConfig["topics"]>;
  quota?: Partial<HubConfig["quota"]>;
};

type Env = Record<string, string | undefined>;

function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** A number from the environment, or the raw string so validation reports it with its field. */
function numeric(value: string): number | string {
  return /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value;
}

/** `HUB_*` variables, as overrides. Unknown `HUB_*` names are reported, not ignored. */
export function envOverrides(env: Env): { overrides: HubConfigOverrides; errors: FieldError[] } {
  const o: HubConfigOverrides = {};
  const http: Partial<Record<keyof HubConfig["http"], unknown>> = {};
  const quota: Partial<Record<keyof HubConfig["quota"], unknown>> = {};
  const reconciler: Partial<Record<keyof HubConfig["reconciler"], unknown>> = {};
  const errors: FieldError[] = [];
  const known = new Set<string>();
  const read = (name: string): string | undefined => {
    known.add(name);
    const value = env[name];
    return value === undefined || value === "" ? undefined : value;
  };
  const set = <T>(name: string, apply: (v: string) => T): void => {
    const v = read(name);
    if (v !== undefined) apply(v);
  };
  // Values are passed through loosely typed: the schema reports what is wrong with each.
  const loose = o as Record<string, unknown>;
  set("HUB_NODE_ID", (v) => (loose.nodeId = v));
  set("HUB_ROLES", (v) => (loose.roles = list(v)));
  set("HUB_DATA_DIR", (v) => (loose.dataDir = v));
  set("HUB_LOG_LEVEL", (v) => (loose.logLevel = v));
  set("HUB_TRANSPORTER", (v) => (loose.transporter = v === "none" ? null : v));
  set("HUB_HOST", (v) => (http.host = v));
  set("HUB_PORT", (v) => (http.port = numeric(v)));
  set("HUB_MAX_BODY_BYTES", (v) => (http.maxBodyBytes = numeric(v)));
  set("HUB_QUOTA_RATE", (v) => (quota.rate = numeric(v)));
  set("HUB_QUOTA_BURST", (v) => (quota.burst = numeric(v)));
  set("HUB_RECONCILE_INTERVAL_MS", (v) => (reconciler.intervalMs = numeric(v)));
  set("HUB_RECONCILE_GRACE_MS", (v) => (reconciler.graceMs = numeric(v)));
  set("HUB_ADMIN_TOKEN", (v) => (loose.adminToken = v));
  set("HUB_QUEUE", (v) => (loose.queue = v.trim().startsWith("{") ? parseJson(v, "HUB_QUEUE", errors) : v));
  set("HUB_STORE", (v) => (loose.store = v.trim().startsWith("{") ? parseJson(v, "HUB_STORE", errors) : v));
  set("HUB_PLUGINS", (v) => (loose.plugins = parseJson(v, "HUB_PLUGINS", errors)));
  if (Object.keys(http).length > 0) loose.http = http;
  if (Object.keys(quota).length > 0) loose.quota = quota;
  if (Object.keys(reconciler).length > 0) loose.reconciler = reconciler;
  known.add("HUB_PROFILE");
  for (const name of Object.keys(env)) {
    if (
      name.startsWith("HUB_") &&
      !known.has(name) &&
      !name.startsWith("HUB_STACK_") &&
      !name.startsWith("HUB_TEST_")
    ) {
      errors.push({ field: name, code: "unknown_variable", message: "is not a configuration variable of the hub" });
    }
  }
  return { overrides: o, errors };
}

function parseJson(value: string, name: string, errors: FieldError[]): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    errors.push({ field: name, code: "invalid_json", message: "must be valid JSON" });
    return undefined;
  }
}

function merge<B extends HubConfigOverrides>(base: B, overrides: HubConfigOverrides): B {
  return {
    ...base,
    ...overrides,
    http: { ...base.http, ...overrides.http },
    topics: { ...base.topics, ...overrides.topics },
    quota: { ...base.quota, ...overrides.quota },
    reconciler: { ...base.reconciler, ...overrides.reconciler },
    plugins: { ...base.plugins, ...overrides.plugins },
  };
}

/**
 * The one config loader: profile defaults, then the file's overrides (`moleculer.config.ts`), then
 * `HUB_*` environment variables; validated as a whole. Any problem throws a ConfigError listing
 * every offending field.
 */
export function loadHubConfig(fileOverrides: HubConfigOverrides = {}, env: Env = process.env): HubConfig {
  const profileName = env.HUB_PROFILE ?? fileOverrides.profile ?? "embedded";
  if (!(PROFILES as readonly string[]).includes(profileName)) {
    throw new ConfigError("Invalid hub configuration", [
      { field: "HUB_PROFILE", code: "invalid_value", message: `must be one of ${PROFILES.join(", ")}` },
    ]);
  }
  const profile = profileName as Profile;
  const { overrides, errors } = envOverrides(env);
  const merged = merge(merge(profileDefaults(profile), { ...fileOverrides, profile }), overrides);
  const parsed = hubConfigSchema.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      errors.push({ field: issue.path.join(".") || "config", code: issue.code, message: issue.message });
    }
  }
  if (errors.length > 0 || !parsed.success) throw new ConfigError("Invalid hub configuration", errors);
  return parsed.data;
}
