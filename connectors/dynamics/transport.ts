/**
 * The Dynamics 365 transport helper: client-credentials tokens from the Microsoft identity
 * platform (cached until shortly before expiry, dropped on 401), a `dynamics-web-api` client
 * pointed at the environment, call counting, the fair-share gate, service-protection handling
 * (429 + Retry-After honoured, bounded), retries of transient errors, error normalisation.
 *
 * Token: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
 * Service protection limits: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/api-limits
 * Web API errors: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
 */
import { DynamicsWebApi } from "dynamics-web-api";
import { optionNumber, optionString, type ApiUsage, type SessionConfig, type SessionDeps } from "../contract";
import { ConnectorError } from "../errors";
import { redactText } from "../shared/redact";
import { withRetry, type RetryDecision } from "../shared/retry";

function field(value: unknown, name: string): unknown {
  return typeof value === "object" && value !== null ? Reflect.get(value, name) : undefined;
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** Vendor code and message of a dynamics-web-api error (top-level or inside a batch part). */
export function dynamicsErrorDetails(error: unknown): {
  status: number;
  code: string;
  message: string;
  retryAfterSeconds?: number;
} {
  const status = Number(field(error, "status") ?? 0);
  const inner = field(error, "error");
  const code = text(field(error, "code")) || text(field(inner, "code"));
  const message = text(field(inner, "message")) || text(field(error, "message")) || String(error);
  const headers = field(error, "headers");
  const retryAfter = Number(field(headers, "retry-after") ?? field(headers, "Retry-After"));
  return {
    status,
    code,
    message,
    ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterSeconds: retryAfter } : {}),
  };
}

/** Codes Dataverse uses for a column that does not exist. */
const INVALID_FIELD_CODES = new Set(["0x80060888", "0x80048d19", "0x80041103"]);

export function toDynamicsError(
  error: unknown,
  secrets: readonly string[],
  maxRetryAfterSeconds: number,
): ConnectorError {
  if (error instanceof ConnectorError) return error;
  const { status, code, message: raw, retryAfterSeconds } = dynamicsErrorDetails(error);
  const message = redactText(raw, secrets);
  if (status === 429) {
    const wait = retryAfterSeconds ?? 1;
    return new ConnectorError("connector_rate_limited", message, {
      vendorCode: code || "429",
      retriable: wait <= maxRetryAfterSeconds,
      retryAfterSeconds: wait,
    });
  }
  if (status === 401)
    return new ConnectorError("connector_auth_failed", message || "access token rejected", {
      vendorCode: "401",
      retriable: true,
    });
  if (INVALID_FIELD_CODES.has(code) || /Could not find a property named|does not exist on type/.test(raw)) {
    return new ConnectorError("connector_invalid_field", message, { vendorCode: code });
  }
  const netCode = text(field(error, "code"));
  if (status >= 500 || ["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE"].includes(netCode)) {
    return new ConnectorError("connector_transient", message, { vendorCode: code || String(status), retriable: true });
  }
  return new ConnectorError("connector_vendor_error", message, {
    vendorCode: code || (status ? String(status) : undefined),
  });
}

/** One authenticated Dataverse connection for one tenant's environment. */
export class DynamicsTransport {
  readonly api: DynamicsWebApi;
  readonly options: SessionConfig["options"];
  private readonly secrets: string[];
  private token?: { value: string; expiresAt: number };
  private calls = 0;

  constructor(
    private readonly config: SessionConfig,
    private readonly deps: SessionDeps,
  ) {
    this.options = config.options;
    this.secrets = [config.credentials.values.clientSecret ?? ""].filter((s) => s !== "");
    this.api = new DynamicsWebApi({
      serverUrl: config.credentials.values.environmentUrl,
      dataApi: { version: optionString(config.options, "apiVersion") },
      onTokenRefresh: () => this.accessToken(),
      propagateErrors: true,
    });
  }

  get logger(): SessionDeps["logger"] {
    return this.deps.logger;
  }

  get secretValues(): readonly string[] {
    return this.secrets;
  }

  usage(): ApiUsage {
    return { calls: this.calls };
  }

  /** A fresh client sharing this transport's token (batch state lives per client instance). */
  newClient(): DynamicsWebApi {
    return this.api.initializeInstance();
  }

  /** Returns a cached token or fetches one with the client-credentials grant. */
  async accessToken(): Promise<string> {
    if (this.token && this.token.expiresAt > Date.now()) return this.token.value;
    const { authorityUrl, tenantId, clientId, clientSecret, environmentUrl } = this.config.credentials.values;
    const body = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: clientId,
      client_secret: clientSecret,
      scope: `${environmentUrl.replace(/\/$/, "")}/.default`,
    });
    this.calls++;
    let response: Response;
    try {
      response = await fetch(`${authorityUrl.replace(/\/$/, "")}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body,
        signal: this.deps.signal,
      });
    } catch (error) {
      throw new ConnectorError(
        "connector_transient",
        redactText(`token endpoint unreachable: ${String(error)}`, this.secrets),
        { retriable: true },
      );
    }
    const payload: unknown = await response.json().catch(() => ({}));
    const accessToken = field(payload, "access_token");
    if (!response.ok || typeof accessToken !== "string") {
      const description = text(field(payload, "error_description")) || `HTTP ${response.status}`;
      throw new ConnectorError("connector_auth_failed", redactText(description, this.secrets), {
        vendorCode: text(field(payload, "error")) || undefined,
      });
    }
    const expiresIn = Number(field(payload, "expires_in") ?? 3600);
    this.token = { value: accessToken, expiresAt: Date.now() + Math.max(30, expiresIn - 120) * 1000 };
    return accessToken;
  }

  /**
   * Runs one HTTP request's worth of work (`cost` calls against the fair-share gate); retries 429
   * after the server's Retry-After, 5xx with backoff, and a 401 once after dropping the token.
   */
  async call<T>(cost: number, operation: () => Promise<T>): Promise<T> {
    const maxRetryAfter = optionNumber(this.options, "maxRetryAfterSeconds");
    let authRetries = 0;
    const classify = (error: unknown): RetryDecision => {
      if (!(error instanceof ConnectorError) || !error.retriable) return { retry: false };
      if (error.connectorCode === "connector_auth_failed") return { retry: authRetries++ < 1, afterMs: 0 };
      if (error.retryAfter !== undefined) return { retry: true, afterMs: error.retryAfter * 1000 };
      return { retry: true };
    };
    return withRetry(
      async () => {
        await this.deps.gate?.acquire(cost);
        await this.accessToken();
        this.calls++;
        try {
          return await operation();
        } catch (error) {
          const mapped = toDynamicsError(error, this.secrets, maxRetryAfter);
          if (mapped.connectorCode === "connector_auth_failed") this.token = undefined;
          throw mapped;
        }
      },
      classify,
      { maxAttempts: optionNumber(this.options, "maxAttempts"), baseDelayMs: 100, maxDelayMs: maxRetryAfter * 1000 },
      {
        signal: this.deps.signal,
        onRetry: (error, attempt, delayMs) =>
          this.deps.logger?.warn("dynamics call retried", {
            attempt,
            delayMs,
            error: error instanceof Error ? error.message : String(error),
          }),
      },
    );
  }
}
