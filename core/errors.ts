/**
 * One error hierarchy for the whole hub. Every error carries a stable, machine-readable `code`
 * (part of the public API: clients branch on it) and the HTTP status it maps to.
 */
export interface FieldError {
  /** JSON-pointer-like path of the offending field, e.g. `activities[3].attributes.url`. */
  field: string;
  code: string;
  message: string;
}

export class HubError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: FieldError[];
  /** Seconds a client should wait before retrying (429, 503). */
  readonly retryAfter?: number;
  /** The same facts in the shape Moleculer carries across the transporter (`err.data`). */
  readonly data: { status: number; details: FieldError[]; retryAfter?: number };

  constructor(code: string, status: number, message: string, details: FieldError[] = [], retryAfter?: number) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.details = details;
    this.retryAfter = retryAfter;
    this.data = { status, details, ...(retryAfter !== undefined ? { retryAfter } : {}) };
  }

  toJSON(): { error: { code: string; message: string; details?: FieldError[]; retryAfter?: number } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details.length > 0 ? { details: this.details } : {}),
        ...(this.retryAfter !== undefined ? { retryAfter: this.retryAfter } : {}),
      },
    };
  }
}

export class ValidationError extends HubError {
  constructor(message: string, details: FieldError[] = [], code = "validation_failed") {
    super(code, 400, message, details);
  }
}

export class AuthenticationError extends HubError {
  constructor(message = "Missing or invalid credentials", code = "unauthenticated") {
    super(code, 401, message);
  }
}

export class ForbiddenError extends HubError {
  constructor(message: string, code = "forbidden") {
    super(code, 403, message);
  }
}

export class NotFoundError extends HubError {
  constructor(message: string, code = "not_found") {
    super(code, 404, message);
  }
}

export class ConflictError extends HubError {
  constructor(message: string, code = "conflict") {
    super(code, 409, message);
  }
}

export class PayloadTooLargeError extends HubError {
  constructor(message: string, code = "payload_too_large") {
    super(code, 413, message);
  }
}

export class UnsupportedMediaTypeError extends HubError {
  constructor(message: string) {
    super("unsupported_media_type", 415, message);
  }
}

export class RateLimitedError extends HubError {
  constructor(message: string, retryAfter: number) {
    super("rate_limited", 429, message, [], retryAfter);
  }
}

export class UnavailableError extends HubError {
  constructor(message: string, retryAfter = 1, code = "unavailable") {
    super(code, 503, message, [], retryAfter);
  }
}

/** Invalid configuration: stops start-up with field-level messages. */
export class ConfigError extends HubError {
  constructor(message: string, details: FieldError[]) {
    super("invalid_config", 500, message, details);
  }

  override toString(): string {
    return [this.message, ...this.details.map((d) => `  - ${d.field}: ${d.message}`)].join("\n");
  }
}
