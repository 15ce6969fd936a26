import { createHash, randomBytes } from "node:crypto";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError } from "../../core/errors";
import type { VaultKey } from "../../connectors";

/** A key as configured: base64 of 32 random bytes, with an optional id (for rotation). */
export interface ConfiguredKey {
  readonly id?: string | undefined;
  readonly key: string;
}

export interface VaultKeys {
  readonly current: VaultKey;
  readonly previous: VaultKey[];
  /** Where the current key came from (never the key itself): `config` or the key file path. */
  readonly origin: string;
}

export const KEY_FILE_NAME = "crm-connectors.key";

function fingerprintId(key: Buffer): string {
  return `k${createHash("sha256").update(key).digest("hex").slice(0, 12)}`;
}

function decode(configured: ConfiguredKey, field: string): VaultKey {
  const key = Buffer.from(configured.key, "base64");
  if (key.length !== 32) {
    throw new ConfigError("Invalid CRM connector vault key", [
      { field, code: "invalid_key", message: "must be the base64 encoding of exactly 32 bytes" },
    ]);
  }
  return { id: configured.id ?? fingerprintId(key), key };
}

/**
 * The vault master key: from the plugin config (`vault.key`, e.g. through `HUB_PLUGINS`), otherwise
 * from `<dataDir>/crm-connectors.key`, generated with mode 0600 on first start. A key file readable
 * by group or others is refused, as ssh refuses a private key.
 */
export function resolveVaultKeys(
  options: { key?: ConfiguredKey | undefined; previousKeys: readonly ConfiguredKey[]; keyFile?: string | undefined },
  dataDir: string,
): VaultKeys {
  const previous = options.previousKeys.map((k, i) => decode(k, `plugins.crm-connectors.vault.previousKeys[${i}]`));
  if (options.key) {
    return { current: decode(options.key, "plugins.crm-connectors.vault.key"), previous, origin: "config" };
  }
  const path = resolve(options.keyFile ?? join(dataDir, KEY_FILE_NAME));
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    const fresh = randomBytes(32);
    try {
      // `wx`: two nodes starting at once never overwrite each other's key.
      writeFileSync(path, `${fresh.toString("base64")}\n`, { mode: 0o600, flag: "wx" });
      chmodSync(path, 0o600);
    } catch (writeError) {
      if ((writeError as NodeJS.ErrnoException).code !== "EEXIST") throw writeError;
    }
    text = readFileSync(path, "utf8");
  }
  if ((statSync(path).mode & 0o077) !== 0) {
    throw new ConfigError("Unsafe CRM connector key file", [
      {
        field: "plugins.crm-connectors.vault.keyFile",
        code: "unsafe_permissions",
        message: `${path} must be mode 0600`,
      },
    ]);
  }
  return {
    current: decode({ key: text.trim() }, "plugins.crm-connectors.vault.keyFile"),
    previous,
    origin: path,
  };
}
