import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { ConnectorManifest, Credentials } from "../contract";
import { ConnectorError } from "../errors";
import { REDACTED } from "../shared/redact";
import type { SecretBlobStore } from "./state-store";

/** Where credentials belong: a tenant's connector instance (bound into the ciphertext as AAD). */
export interface CredentialRef {
  readonly tenantId: string;
  readonly instanceId: string;
}

/** Credentials as shown to an admin: secret fields are only reported as set, never returned. */
export interface CredentialsView {
  readonly mode: string;
  readonly values: Readonly<Record<string, string>>;
  readonly secretsSet: readonly string[];
}

/** Stores connector credentials encrypted at rest. */
export interface CredentialVault {
  store(ref: CredentialRef, credentials: Credentials): Promise<void>;
  /** Decrypted credentials, for opening a session only. */
  load(ref: CredentialRef): Promise<Credentials>;
  remove(ref: CredentialRef): Promise<void>;
  /** What an API may return: non-secret fields in clear, secret fields masked. */
  view(ref: CredentialRef, manifest: ConnectorManifest): Promise<CredentialsView | undefined>;
}

/** A 32-byte AES key with an id, so keys can rotate (old blobs stay readable). */
export interface VaultKey {
  readonly id: string;
  readonly key: Buffer;
}

function isCredentials(value: unknown): value is Credentials {
  if (typeof value !== "object" || value === null) return false;
  const mode: unknown = Reflect.get(value, "mode");
  const values: unknown = Reflect.get(value, "values");
  return (
    typeof mode === "string" &&
    typeof values === "object" &&
    values !== null &&
    Object.values(values).every((v) => typeof v === "string")
  );
}

/**
 * AES-256-GCM vault. Blob format `v1.<keyId>.<iv>.<tag>.<ciphertext>` (base64url); the AAD is
 * `tenantId/instanceId`, so a blob copied to another tenant's row does not decrypt.
 */
export class AesGcmCredentialVault implements CredentialVault {
  private readonly keys: Map<string, Buffer>;

  constructor(
    private readonly blobs: SecretBlobStore,
    private readonly current: VaultKey,
    previous: readonly VaultKey[] = [],
  ) {
    for (const key of [current, ...previous]) {
      if (key.key.length !== 32)
        throw new ConnectorError("connector_vault_error", `vault key ${key.id} must be 32 bytes`);
      if (!/^[A-Za-z0-9_-]+$/.test(key.id))
        throw new ConnectorError("connector_vault_error", "vault key id must be [A-Za-z0-9_-]+");
    }
    this.keys = new Map([current, ...previous].map((k) => [k.id, k.key]));
  }

  private aad(ref: CredentialRef): Buffer {
    return Buffer.from(`${ref.tenantId}/${ref.instanceId}`, "utf8");
  }

  async store(ref: CredentialRef, credentials: Credentials): Promise<void> {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.current.key, iv);
    cipher.setAAD(this.aad(ref));
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(credentials), "utf8"), cipher.final()]);
    const blob = [
      "v1",
      this.current.id,
      iv.toString("base64url"),
      cipher.getAuthTag().toString("base64url"),
      ciphertext.toString("base64url"),
    ].join(".");
    await this.blobs.putSecretBlob(ref.instanceId, blob);
  }

  async load(ref: CredentialRef): Promise<Credentials> {
    const blob = await this.blobs.getSecretBlob(ref.instanceId);
    if (!blob)
      throw new ConnectorError("connector_config_invalid", `no credentials stored for connector ${ref.instanceId}`);
    const [version, keyId, iv, tag, ciphertext] = blob.split(".");
    const key = this.keys.get(keyId ?? "");
    if (version !== "v1" || !key || !iv || !tag || ciphertext === undefined) {
      throw new ConnectorError(
        "connector_vault_error",
        `credentials of ${ref.instanceId} use an unknown format or key`,
      );
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
      decipher.setAAD(this.aad(ref));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
      const plain = Buffer.concat([decipher.update(Buffer.from(ciphertext, "base64url")), decipher.final()]).toString(
        "utf8",
      );
      const parsed: unknown = JSON.parse(plain);
      if (!isCredentials(parsed)) throw new Error("malformed");
      if (keyId !== this.current.id) await this.store(ref, parsed);
      return parsed;
    } catch {
      throw new ConnectorError(
        "connector_vault_error",
        `credentials of ${ref.instanceId} cannot be decrypted (wrong key or tampered)`,
      );
    }
  }

  async remove(ref: CredentialRef): Promise<void> {
    await this.blobs.deleteSecretBlob(ref.instanceId);
  }

  async view(ref: CredentialRef, manifest: ConnectorManifest): Promise<CredentialsView | undefined> {
    if (!(await this.blobs.getSecretBlob(ref.instanceId))) return undefined;
    const credentials = await this.load(ref);
    const spec = manifest.credentials.find((mode) => mode.mode === credentials.mode);
    const secret = new Set(
      spec ? spec.fields.filter((f) => f.secret).map((f) => f.name) : Object.keys(credentials.values),
    );
    const values: Record<string, string> = {};
    const secretsSet: string[] = [];
    for (const [name, value] of Object.entries(credentials.values)) {
      if (secret.has(name)) {
        values[name] = REDACTED;
        secretsSet.push(name);
      } else values[name] = value;
    }
    return { mode: credentials.mode, values, secretsSet };
  }
}
