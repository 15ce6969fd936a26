/**
 * The Salesforce transport helper: one jsforce `Connection` per session, OAuth 2.0 grants
 * (JWT bearer, client credentials, refresh token), re-authentication on 401 INVALID_SESSION_ID
 * (jsforce's refresh delegate), call counting, `Sforce-Limit-Info` tracking with a daily-quota
 * guard, the fair-share gate, retries with backoff, and error normalisation to `ConnectorError`.
 *
 * OAuth JWT bearer: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm
 * Client credentials: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm
 * API limits header: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
 */
import { createSign } from "node:crypto";
import { Connection, OAuth2, type TokenResponse } from "jsforce";
import { Transport } from "jsforce/lib/transport";
import type { HttpRequest, HttpRequestOptions } from "jsforce/lib/types";
import { optionNumber, optionString, type ApiUsage, type SessionConfig, type SessionDeps } from "../contract";
import { ConnectorError } from "../errors";
import { redactText } from "../shared/redact";
import { withRetry, type RetryDecision } from "../shared/retry";

const JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/** Counts every HTTP call jsforce makes and reads `Sforce-Limit-Info` from each response. */
class MeteredTransport extends Transport {
  calls = 0;
  dailyUsed?: number;
  dailyLimit?: number;

  override httpRequest(req: HttpRequest, options?: HttpRequestOptions): ReturnType<Transport["httpRequest"]> {
    this.calls++;
    const pending = super.httpRequest(req, options);
    pending.then(
      (response) => {
        const header = response.headers["sforce-limit-info"];
        const usage = typeof header === "string" ? /api-usage=(\d+)\/(\d+)/.exec(header) : null;
        if (usage) {
          this.dailyUsed = Number(usage[1]);
          this.dailyLimit = Number(usage[2]);
        }
      },
      () => undefined,
    );
    return pending;
  }
}

function base64url(input: string | Buffer): string {
  return Buffer.from(input).toString("base64url");
}

/** Builds an RS256-signed JWT bearer assertion (iss = consumer key, sub = user, aud = login URL). */
export function signJwtAssertion(
  clientId: string,
  username: string,
  audience: string,
  privateKeyPem: string,
  nowMs = Date.now(),
): string {
  const header = base64url(JSON.stringify({ alg: "RS256" }));
  const claims = base64url(
    JSON.stringify({ iss: clientId, sub: username, aud: audience, exp: Math.floor(nowMs / 1000) + 180 }),
  );
  const signer = createSign("RSA-SHA256");
  signer.update(`${header}.${claims}`);
  return `${header}.${claims}.${signer.sign(privateKeyPem).toString("base64url")}`;
}

function errorField(error: unknown, field: "errorCode" | "name" | "code" | "message"): string {
  if (typeof error !== "object" || error === null || !(field in error)) return "";
  const value: unknown = Reflect.get(error, field);
  return typeof value === "string" ? value : "";
}

/** Maps whatever jsforce / fetch threw to a `ConnectorError` with a stable code; secrets are masked. */
export function toSalesforceError(error: unknown, secrets: readonly string[]): ConnectorError {
  if (error instanceof ConnectorError) return error;
  const code = errorField(error, "errorCode") || errorField(error, "name");
  const message = redactText(errorField(error, "message") || String(error), secrets);
  const netCode = errorField(error, "code");
  if (code === "INVALID_FIELD" || code === "INVALID_FIELD_FOR_INSERT_UPDATE" || /No such column/.test(message)) {
    return new ConnectorError("connector_invalid_field", message, { vendorCode: code || "INVALID_FIELD" });
  }
  if (code === "REQUEST_LIMIT_EXCEEDED") {
    return /TotalRequests/i.test(message)
      ? new ConnectorError("connector_quota_exhausted", message, { vendorCode: code })
      : new ConnectorError("connector_rate_limited", message, { vendorCode: code, retriable: true });
  }
  if (
    code === "UNABLE_TO_LOCK_ROW" ||
    code === "SERVER_UNAVAILABLE" ||
    /^ERROR_HTTP_5\d\d$/.test(code) ||
    code === "ERROR_HTTP_420" ||
    code === "ERROR_HTTP_429"
  ) {
    return new ConnectorError("connector_transient", message, { vendorCode: code, retriable: true });
  }
  if (
    ["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE", "UND_ERR_SOCKET"].includes(netCode) ||
    errorField(error, "name") === "FetchError"
  ) {
    return new ConnectorError("connector_transient", message, {
      vendorCode: netCode || "FETCH_ERROR",
      retriable: true,
    });
  }
  if (
    code === "INVALID_SESSION_ID" ||
    code.startsWith("invalid_") ||
    code === "unsupported_grant_type" ||
    /Unable to refresh session/.test(message)
  ) {
    return new ConnectorError("connector_auth_failed", message, { vendorCode: code });
  }
  return new ConnectorError("connector_vendor_error", message, { vendorCode: code || undefined });
}

function classify(error: unknown): RetryDecision {
  return { retry: error instanceof ConnectorError && error.retriable };
}

/** One authenticated Salesforce connection for one tenant's org. */
export class SalesforceTransport {
  readonly conn: Connection;
  readonly options: SessionConfig["options"];
  private readonly metered = new MeteredTransport();
  private readonly oauth2: OAuth2;
  private readonly secrets: string[];
  private authenticated = false;

  constructor(
    private readonly config: SessionConfig,
    private readonly deps: SessionDeps,
  ) {
    const values = config.credentials.values;
    this.options = config.options;
    this.secrets = Object.entries(values)
      .filter(([name]) => /secret|token|key|password/i.test(name))
      .map(([, value]) => value);
    this.oauth2 = new OAuth2({
      loginUrl: values.loginUrl,
      clientId: values.clientId,
      clientSecret: values.clientSecret,
    });
    this.oauth2._transport = this.metered;
    this.conn = new Connection({
      oauth2: this.oauth2,
      loginUrl: values.loginUrl,
      version: optionString(config.options, "apiVersion"),
      refreshFn: (conn, callback) => {
        this.grant().then(
          (token) => {
            conn.instanceUrl = token.instance_url;
            callback(null, token.access_token, token);
          },
          (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
        );
      },
    });
    this.conn._transport = this.metered;
  }

  /** Secrets of this session, for redaction by callers. */
  get secretValues(): readonly string[] {
    return this.secrets;
  }

  get logger(): SessionDeps["logger"] {
    return this.deps.logger;
  }

  usage(): ApiUsage {
    return { calls: this.metered.calls, dailyUsed: this.metered.dailyUsed, dailyLimit: this.metered.dailyLimit };
  }

  private async grant(): Promise<TokenResponse> {
    const { mode, values } = this.config.credentials;
    if (mode === "jwt_bearer") {
      const assertion = signJwtAssertion(values.clientId, values.username, values.loginUrl, values.privateKey);
      return this.oauth2.requestToken({ grant_type: JWT_GRANT, assertion });
    }
    if (mode === "client_credentials") return this.oauth2.requestToken({ grant_type: "client_credentials" });
    if (mode === "refresh_token") return this.oauth2.refreshToken(values.refreshToken);
    throw new ConnectorError("connector_config_invalid", `unknown credentials mode ${mode}`);
  }

  /** Obtains an access token (first call of a session). */
  async authenticate(): Promise<void> {
    if (this.authenticated) return;
    try {
      const token = await this.grant();
      this.conn.instanceUrl = token.instance_url;
      this.conn.accessToken = token.access_token;
      this.authenticated = true;
    } catch (error) {
      throw toSalesforceError(error, this.secrets);
    }
  }

  /** Refuses to spend API calls beyond the configured share of the org's daily limit. */
  private checkQuota(): void {
    const { dailyUsed, dailyLimit } = this.metered;
    const share = optionNumber(this.options, "maxDailyApiShare");
    if (dailyUsed !== undefined && dailyLimit !== undefined && dailyUsed >= Math.floor(dailyLimit * share)) {
      throw new ConnectorError(
        "connector_quota_exhausted",
        `daily API share used: ${dailyUsed}/${dailyLimit} requests (share ${share}); resuming when the org's 24h window frees up`,
        { vendorCode: "HUB_DAILY_SHARE" },
      );
    }
  }

  /**
   * Runs one logical API operation costing about `cost` calls: waits for the fair-share gate,
   * checks the daily quota, retries transient failures with backoff, normalises errors.
   */
  async call<T>(cost: number, operation: () => Promise<T>): Promise<T> {
    await this.authenticate();
    return withRetry(
      async () => {
        this.checkQuota();
        await this.deps.gate?.acquire(cost);
        try {
          return await operation();
        } catch (error) {
          throw toSalesforceError(error, this.secrets);
        }
      },
      classify,
      { maxAttempts: optionNumber(this.options, "maxAttempts"), baseDelayMs: 100, maxDelayMs: 10_000 },
      {
        signal: this.deps.signal,
        onRetry: (error, attempt, delayMs) =>
          this.deps.logger?.warn("salesforce call retried", {
            attempt,
            delayMs,
            error: error instanceof Error ? error.message : String(error),
          }),
      },
    );
  }
}
