import { HubError } from "../core/errors";

/**
 * Stable error codes of the connector layer. Callers (REST API, console) branch on these; the
 * messages are for humans and never contain secrets (they pass through `redact`).
 */
export type ConnectorErrorCode =
  | "connector_unknown"
  | "connector_config_invalid"
  | "connector_auth_failed"
  | "connector_invalid_field"
  | "connector_rate_limited"
  | "connector_quota_exhausted"
  | "connector_transient"
  | "connector_vendor_error"
  | "connector_run_locked"
  | "connector_mapping_invalid"
  | "connector_vault_error";

const STATUS: Record<ConnectorErrorCode, number> = {
  connector_unknown: 404,
  connector_config_invalid: 400,
  connector_auth_failed: 502,
  connector_invalid_field: 502,
  connector_rate_limited: 429,
  connector_quota_exhausted: 429,
  connector_transient: 503,
  connector_vendor_error: 502,
  connector_run_locked: 409,
  connector_mapping_invalid: 400,
  connector_vault_error: 500,
};

/** The one error type of `connectors/`; `retriable` tells the sync engine whether to try again. */
export class ConnectorError extends HubError {
  readonly connectorCode: ConnectorErrorCode;
  readonly retriable: boolean;
  /** Vendor error code when the CRM gave one (e.g. `INVALID_FIELD`, `0x80060891`). */
  readonly vendorCode?: string;

  constructor(
    code: ConnectorErrorCode,
    message: string,
    options: { retriable?: boolean; vendorCode?: string; retryAfterSeconds?: number } = {},
  ) {
    super(code, STATUS[code], message, [], options.retryAfterSeconds);
    this.connectorCode = code;
    this.retriable = options.retriable ?? false;
    this.vendorCode = options.vendorCode;
  }
}

export function isConnectorError(value: unknown): value is ConnectorError {
  return value instanceof ConnectorError;
}
