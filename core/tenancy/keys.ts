import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export const SCOPES = ["ingest", "read", "admin"] as const;
export type Scope = (typeof SCOPES)[number];
export type KeyKind = "api" | "write";

const PREFIX: Record<KeyKind, string> = { api: "ahk", write: "ahw" };
const KEY_PATTERN = /^(ahk|ahw)_([0-9a-z]{16})_([A-Za-z0-9_-]{43})$/;

export interface IssuedKey {
  keyId: string;
  kind: KeyKind;
  /** The full secret key, shown to its owner once and never stored. */
  key: string;
  /** SHA-256 of the secret part: keys carry 256 random bits, so a fast hash is the right one. */
  hash: string;
}

/** Issues a key: `ahk_<keyId>_<secret>` (API key) or `ahw_<keyId>_<secret>` (Segment write key). */
export function issueKey(kind: KeyKind): IssuedKey {
  const keyId = randomBytes(10).toString("hex").slice(0, 16);
  const secret = randomBytes(32).toString("base64url");
  return { keyId, kind, key: `${PREFIX[kind]}_${keyId}_${secret}`, hash: hashSecret(secret) };
}

export function parseKey(key: string): { kind: KeyKind; keyId: string; secret: string } | undefined {
  const match = KEY_PATTERN.exec(key);
  if (!match) return undefined;
  return { kind: match[1] === "ahk" ? "api" : "write", keyId: match[2]!, secret: match[3]! };
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

export function hashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, "hex");
  const right = Buffer.from(b, "hex");
  return left.length === right.length && timingSafeEqual(left, right);
}
