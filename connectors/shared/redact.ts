/**
 * Secrets never leave the connector layer: every log line, error message and returned object
 * passes through `redact`, which masks secret-looking keys and any known secret value that
 * appears inside a string (tokens echoed in vendor error bodies, URLs with credentials…).
 */
export const REDACTED = "[REDACTED]";

const SECRET_KEY = /(secret|password|passwd|token|assertion|private.?key|authorization|api.?key|credential|cookie)/i;
const BEARER = /\b(Bearer|OAuth)\s+[A-Za-z0-9._~+/=!-]{8,}/g;
const FORM_SECRET = /\b(client_secret|refresh_token|access_token|assertion|password)=([^&\s"]+)/gi;

function redactString(text: string, secrets: readonly string[]): string {
  let out = text.replace(BEARER, `$1 ${REDACTED}`).replace(FORM_SECRET, `$1=${REDACTED}`);
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join(REDACTED);
  }
  return out;
}

function redactValue(value: unknown, secrets: readonly string[], depth: number): unknown {
  if (depth > 12) return "[…]";
  if (typeof value === "string") return redactString(value, secrets);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, secrets, depth + 1));
  if (value instanceof Error) return redactString(`${value.name}: ${value.message}`, secrets);
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      out[key] =
        SECRET_KEY.test(key) && inner !== undefined && inner !== null
          ? REDACTED
          : redactValue(inner, secrets, depth + 1);
    }
    return out;
  }
  return value;
}

/**
 * Returns a deep copy of `value` with secret-named keys masked and every known `secrets` value
 * replaced inside strings. The input is never modified.
 */
export function redact(value: unknown, secrets: readonly string[] = []): unknown {
  return redactValue(value, secrets, 0);
}

/** `redact` for text: log lines and error messages. */
export function redactText(text: string, secrets: readonly string[] = []): string {
  return redactString(text, secrets);
}
