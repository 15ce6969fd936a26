import type { IncomingMessage, ServerResponse } from "node:http";
import type { LoggerInstance } from "moleculer";
import { HubError, type FieldError } from "../../core/errors";

interface ErrorBody {
  error: { code: string; message: string; details?: FieldError[]; retryAfter?: number };
}

/** Turns anything thrown while serving a request into a status and a stable error body. */
export function toHttpError(
  err: unknown,
  logger: LoggerInstance,
): { status: number; body: ErrorBody; retryAfter?: number } {
  if (err instanceof HubError)
    return {
      status: err.status,
      body: err.toJSON(),
      ...(err.retryAfter !== undefined ? { retryAfter: err.retryAfter } : {}),
    };
  const e = (typeof err === "object" && err !== null ? err : {}) as {
    name?: string;
    message?: string;
    code?: unknown;
    type?: string;
    data?:
      | { status?: number; details?: FieldError[]; retryAfter?: number }
      | Array<{ field?: string; message?: string; type?: string }>;
  };
  // A HubError that crossed the transporter arrives as plain data.
  if (typeof e.code === "string" && !Array.isArray(e.data) && typeof e.data?.status === "number") {
    const hub = new HubError(e.code, e.data.status, e.message ?? e.code, e.data.details ?? [], e.data.retryAfter);
    return toHttpError(hub, logger);
  }
  switch (e.name) {
    case "NotFoundError":
      return { status: 404, body: { error: { code: "route_not_found", message: "No such route" } } };
    case "ServiceNotFoundError":
    case "ServiceNotAvailableError":
    case "RequestTimeoutError":
    case "RequestRejectedError":
    case "QueueIsFullError":
      return {
        status: 503,
        retryAfter: 2,
        body: {
          error: {
            code: "service_unavailable",
            message: "A service this request needs is not available; retry",
            retryAfter: 2,
          },
        },
      };
    case "ValidationError": {
      const details = Array.isArray(e.data)
        ? e.data.map((d) => ({
            field: String(d.field ?? "body"),
            code: String(d.type ?? "invalid"),
            message: String(d.message ?? "is invalid"),
          }))
        : [];
      return { status: 400, body: { error: { code: "validation_failed", message: "Invalid request", details } } };
    }
  }
  logger.error({ err: e.message, name: e.name }, "unexpected error while serving a request");
  return { status: 500, body: { error: { code: "internal_error", message: "Internal error" } } };
}

export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown, logger: LoggerInstance): void {
  const { status, body, retryAfter } = toHttpError(err, logger);
  if (res.headersSent) {
    res.end();
    return;
  }
  // Drain what is left of a body we refused, so the connection can be reused.
  req.resume();
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  if (retryAfter !== undefined) res.setHeader("Retry-After", String(retryAfter));
  if (status === 401)
    res.setHeader(
      "WWW-Authenticate",
      req.url?.startsWith("/v1/") ? 'Basic realm="activity-hub"' : 'Bearer realm="activity-hub"',
    );
  res.end(JSON.stringify(body));
}
