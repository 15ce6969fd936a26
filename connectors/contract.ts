/**
 * The connector contract. A connector is declared, not coded: its manifest (credentials, options,
 * objects and directions) is data; a transport helper per vendor talks HTTP; one file per
 * operation does one thing. The sync engine (`connectors/sync`) only ever sees `CrmSession`.
 */

/** Identifiers of the connectors this layer ships. */
export type ConnectorId = "salesforce" | "dynamics";

/** Inbound: CRM → hub (CRM sync activities). Outbound: hub → CRM (leads, tasks, scores). */
export type SyncDirection = "inbound" | "outbound";

/** The value types a mapped field may carry. */
export type FieldType = "string" | "number" | "boolean" | "date";

/** A scalar field value as it crosses the connector boundary. */
export type FieldValue = string | number | boolean | null;

/** One credential field of an auth mode. `secret` fields are encrypted at rest and never returned. */
export interface CredentialFieldSpec {
  readonly name: string;
  readonly label: string;
  readonly secret: boolean;
  readonly required: boolean;
  readonly description?: string;
}

/** One way to authenticate (e.g. `jwt_bearer`, `client_credentials`, `refresh_token`). */
export interface CredentialModeSpec {
  readonly mode: string;
  readonly label: string;
  readonly fields: readonly CredentialFieldSpec[];
}

/** A connector option with its type and default (the defaults table is pinned by tests). */
export type OptionSpec =
  | { readonly name: string; readonly type: "string"; readonly default: string; readonly description: string }
  | { readonly name: string; readonly type: "number"; readonly default: number; readonly description: string }
  | { readonly name: string; readonly type: "boolean"; readonly default: boolean; readonly description: string };

/** A CRM object the connector can sync, and in which directions. */
export interface ObjectSpec {
  readonly name: string;
  readonly directions: readonly SyncDirection[];
  readonly description: string;
}

/** The declarative part of a connector. */
export interface ConnectorManifest {
  readonly id: ConnectorId;
  readonly name: string;
  readonly version: string;
  readonly docsUrl: string;
  readonly credentials: readonly CredentialModeSpec[];
  readonly options: readonly OptionSpec[];
  readonly objects: readonly ObjectSpec[];
  /** The CRM object hub leads and scores are written to, and the option naming its key field. */
  readonly leads: { readonly object: string; readonly keyOption: string };
}

/** Option values after defaults are applied. */
export type OptionValues = Readonly<Record<string, string | number | boolean>>;

/** Decrypted credentials, only ever held in memory by a live session. */
export interface Credentials {
  readonly mode: string;
  readonly values: Readonly<Record<string, string>>;
}

/** Everything a connector needs to open a session for one tenant's CRM. */
export interface SessionConfig {
  readonly tenantId: string;
  /** Id of this configured connector (one tenant may configure several). */
  readonly instanceId: string;
  readonly credentials: Credentials;
  readonly options: OptionValues;
}

/** A changed CRM record. `modifiedAt` is ISO-8601 (SystemModstamp / modifiedon). */
export interface CrmRecord {
  readonly object: string;
  readonly id: string;
  readonly modifiedAt: string;
  readonly fields: Readonly<Record<string, FieldValue>>;
}

/** A deleted CRM record. */
export interface CrmDeletion {
  readonly object: string;
  readonly id: string;
  readonly deletedAt: string;
}

/**
 * One page of inbound changes. `cursor` is opaque; persisting it after the page is handled makes
 * the next read resume exactly after this page (crash-safe watermark).
 */
export interface ChangePage {
  readonly records: readonly CrmRecord[];
  readonly deletions: readonly CrmDeletion[];
  readonly cursor: string;
}

/** A lead to create or update in the CRM, identified by the configured external id / alternate key. */
export interface LeadWrite {
  readonly key: string;
  readonly fields: Readonly<Record<string, FieldValue>>;
}

/** A hub activity to record in the CRM as a task / activity record. `activityId` makes it idempotent. */
export interface ActivityWrite {
  readonly activityId: string;
  readonly leadKey: string;
  readonly subject: string;
  readonly occurredAt: string;
  readonly description: string;
}

/** A lead score to write back. */
export interface ScoreWrite {
  readonly leadKey: string;
  readonly score: number;
}

/** Per-record outcome of a write; `key` is the lead key or activity id that was sent. */
export type WriteResult =
  | { readonly key: string; readonly ok: true; readonly crmId?: string; readonly created?: boolean }
  | {
      readonly key: string;
      readonly ok: false;
      readonly code: string;
      readonly message: string;
      readonly retriable: boolean;
    };

/** Which API path a write used (reported in run history and the benchmark). */
export type WritePath = "single" | "collection" | "bulk" | "batch";

/** A write's results plus the path it took. */
export interface WriteOutcome {
  readonly path: WritePath;
  readonly results: readonly WriteResult[];
}

/** API consumption as seen by the session. */
export interface ApiUsage {
  /** HTTP calls made by this session (token calls included). */
  readonly calls: number;
  /** CRM-reported daily usage, when the vendor reports it (Sforce-Limit-Info). */
  readonly dailyUsed?: number;
  readonly dailyLimit?: number;
}

/** Result of "test connection": identity and missing mapped fields, never secrets. */
export interface ConnectionTest {
  readonly ok: boolean;
  readonly identity?: string;
  readonly missingFields: readonly { readonly object: string; readonly field: string }[];
  readonly message?: string;
}

/** A live, authenticated connection to one tenant's CRM. */
export interface CrmSession {
  /** Authenticates and checks that `fields` (object → field names) exist in the CRM. */
  test(fields: Readonly<Record<string, readonly string[]>>): Promise<ConnectionTest>;
  /** Reads changes of `object` after `cursor` (undefined: from the beginning), one page at a time. */
  readChanges(object: string, fields: readonly string[], cursor: string | undefined): AsyncIterable<ChangePage>;
  upsertLeads(leads: readonly LeadWrite[]): Promise<WriteOutcome>;
  writeActivities(activities: readonly ActivityWrite[]): Promise<WriteOutcome>;
  updateScores(scores: readonly ScoreWrite[]): Promise<WriteOutcome>;
  usage(): ApiUsage;
  close(): Promise<void>;
}

/** Lets the session ask a shared budget before each API call (fair share between tenants). */
export interface CallGate {
  acquire(calls: number): Promise<void>;
}

/** Minimal structured logger; every message and field is redacted before it gets here. */
export interface ConnectorLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What a connector receives from its host. */
export interface SessionDeps {
  readonly gate?: CallGate;
  readonly logger?: ConnectorLogger;
  readonly signal?: AbortSignal;
}

/** A connector: its manifest plus a factory for sessions. */
export interface ConnectorDefinition {
  readonly manifest: ConnectorManifest;
  openSession(config: SessionConfig, deps: SessionDeps): Promise<CrmSession>;
}

/** Applies option defaults from the manifest and rejects unknown or mistyped options. */
export function resolveOptions(
  manifest: ConnectorManifest,
  given: Readonly<Record<string, unknown>>,
): { ok: true; options: OptionValues } | { ok: false; errors: { field: string; message: string }[] } {
  const options: Record<string, string | number | boolean> = {};
  const errors: { field: string; message: string }[] = [];
  const known = new Set(manifest.options.map((option) => option.name));
  for (const name of Object.keys(given)) {
    if (!known.has(name)) errors.push({ field: `options.${name}`, message: "unknown option" });
  }
  for (const spec of manifest.options) {
    const value = given[spec.name];
    if (value === undefined) options[spec.name] = spec.default;
    else if (typeof value === spec.type && (spec.type !== "number" || Number.isFinite(value))) {
      if (typeof value === "string" || typeof value === "number" || typeof value === "boolean")
        options[spec.name] = value;
    } else errors.push({ field: `options.${spec.name}`, message: `must be a ${spec.type}` });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, options };
}

/** Checks credentials against the manifest's mode spec (required fields present, no unknown fields). */
export function validateCredentials(
  manifest: ConnectorManifest,
  credentials: Credentials,
): { field: string; message: string }[] {
  const spec = manifest.credentials.find((mode) => mode.mode === credentials.mode);
  if (!spec) {
    return [
      { field: "credentials.mode", message: `must be one of ${manifest.credentials.map((m) => m.mode).join(", ")}` },
    ];
  }
  const errors: { field: string; message: string }[] = [];
  const known = new Set(spec.fields.map((field) => field.name));
  for (const field of spec.fields) {
    const value = credentials.values[field.name];
    if (field.required && (value === undefined || value === "")) {
      errors.push({ field: `credentials.${field.name}`, message: "is required" });
    }
  }
  for (const name of Object.keys(credentials.values)) {
    if (!known.has(name)) errors.push({ field: `credentials.${name}`, message: "unknown credential field" });
  }
  return errors;
}

/** Names of the secret fields of a credential mode (what the vault encrypts and `redact` masks). */
export function secretFieldNames(manifest: ConnectorManifest, mode: string): string[] {
  const spec = manifest.credentials.find((m) => m.mode === mode);
  return spec ? spec.fields.filter((field) => field.secret).map((field) => field.name) : [];
}

/** Typed option readers: the manifest guarantees presence and type after `resolveOptions`. */
export function optionString(options: OptionValues, name: string): string {
  const value = options[name];
  return typeof value === "string" ? value : String(value ?? "");
}

export function optionNumber(options: OptionValues, name: string): number {
  const value = options[name];
  return typeof value === "number" ? value : Number(value);
}

export function optionBoolean(options: OptionValues, name: string): boolean {
  return options[name] === true;
}
