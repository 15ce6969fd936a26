import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { AuthenticationError, UnavailableError, ValidationError } from "../../core/errors";
import type { RequestMeta } from "../../core/middleware/scopes";
import type { HubServices } from "../../core/plugins/contract";
import type { Principal } from "../../core/tenancy/directory";
import type { KeyKind } from "../../core/tenancy/keys";
import { TENANCY_EVENTS } from "../../core/tenancy/service";
import { jsonBody, type RequestWithBody } from "./body";
import { sendError } from "./errors-http";
import { openApiDocument } from "./openapi";

type Req = IncomingMessage & { $ctx?: Context<unknown, RequestMeta> };

const AUTH_CACHE_MS = 30_000;

/**
 * Extra REST routes other plugins add to the gateway (e.g. the lead-profile consumer adds
 * `GET /api/v1/leads/:leadId`). Keys are moleculer-web aliases, values action names.
 */
export type ApiAliases = Record<string, string>;

/** The hub's HTTP API (moleculer-web): authentication, strict JSON bodies, stable error bodies. */
export function gatewayService(hub: HubServices, extraAliases: ApiAliases): ServiceSchema {
  const { http, adminToken } = hub.config;
  const authCache = new Map<string, { principal: Principal | null; expires: number }>();
  const adminDigest = adminToken === undefined ? undefined : createHash("sha256").update(adminToken).digest();

  async function principalFor(ctx: Context, key: string, kind: KeyKind): Promise<Principal> {
    const cacheKey = createHash("sha256").update(`${kind}:${key}`).digest("base64");
    let entry = authCache.get(cacheKey);
    if (!entry || entry.expires < Date.now()) {
      const principal = (await ctx.call("tenancy.authenticate", { key, kind })) as Principal | null;
      entry = { principal, expires: Date.now() + AUTH_CACHE_MS };
      if (authCache.size > 100_000) authCache.clear();
      authCache.set(cacheKey, entry);
    }
    if (!entry.principal) throw new AuthenticationError("Unknown or revoked key", "invalid_credentials");
    return entry.principal;
  }

  /**
   * Once the broker is stopping, a request that arrives (on a keep-alive connection the listener
   * cannot close while it is in use) is refused at once, 503 with `Connection: close`: the drain
   * then waits only for the requests already in flight, and none reaches a service that is stopping.
   */
  function refuseWhileStopping(req: IncomingMessage, res: ServerResponse, next: () => void): void {
    if (!hub.broker.stopping) {
      next();
      return;
    }
    res.setHeader("Connection", "close");
    sendError(req, res, new UnavailableError("The hub is shutting down; retry", 2, "shutting_down"), hub.logger);
  }

  const common = {
    bodyParsers: false,
    mergeParams: false,
    mappingPolicy: "restrict",
    logging: false,
    use: [refuseWhileStopping, jsonBody(http.maxBodyBytes)],
    onBeforeCall(ctx: Context<unknown, RequestMeta>, _route: unknown, req: RequestWithBody) {
      if (req.$bodyError !== undefined) throw req.$bodyError;
      const key = req.headers["idempotency-key"];
      if (typeof key === "string") ctx.meta.idempotencyKey = key;
    },
    onError(this: { logger: HubServices["logger"] }, req: IncomingMessage, res: ServerResponse, err: unknown) {
      sendError(req, res, err, this.logger);
    },
  };

  const coreAliases: Record<string, string> = {
    "POST activities": "intake.ingest",
    "GET activities": "intake.list",
    "GET activities/:id": "intake.get",
    "GET leads/:leadId/activities": "intake.leadHistory",
    "GET tenant": "tenancy.currentTenant",
    "GET activity-types": "tenancy.listTypes",
    "POST activity-types": "tenancy.createType",
    "PUT activity-types/:name": "tenancy.replaceType",
    "DELETE activity-types/:name": "tenancy.deleteType",
    "GET keys": "tenancy.listKeys",
    "POST keys": "tenancy.createKey",
    "DELETE keys/:keyId": "tenancy.revokeKey",
    "GET audit": "tenancy.audit",
    "POST admin/tenants": "tenancy.createTenant",
    "GET admin/tenants": "tenancy.listTenants",
    "PATCH admin/tenants/:tenantId": "tenancy.updateTenant",
    "DELETE admin/tenants/:tenantId": "tenancy.deleteTenant",
    "POST admin/reconcile": "reconciler.run",
    "GET admin/reconcile": "reconciler.last",
  };

  return {
    name: "api",
    mixins: [ApiGateway],
    settings: {
      port: http.port,
      ip: http.host,
      log4XXResponses: false,
      logRequest: null,
      logResponse: null,
      onError(this: { logger: HubServices["logger"] }, req: IncomingMessage, res: ServerResponse, err: unknown) {
        sendError(req, res, err, this.logger);
      },
      routes: [
        {
          path: "/health",
          ...common,
          aliases: { "GET live": "api.live", "GET ready": "api.ready" },
        },
        {
          path: "/api",
          ...common,
          aliases: { "GET openapi.json": "api.openapi" },
        },
        {
          path: "/api/v1",
          ...common,
          authorization: "authorizeBearer",
          // Plugins' own routes (campaigns, connectors, …) are added while the hub is assembled,
          // before this service is created: read them then.
          get aliases() {
            return { ...coreAliases, ...hub.extensions.apiRoutes, ...extraAliases };
          },
        },
        {
          path: "/v1",
          ...common,
          authorization: "authorizeWriteKey",
          aliases: {
            "POST track": "segment.track",
            "POST page": "segment.page",
            "POST screen": "segment.screen",
            "POST identify": "segment.identify",
            "POST batch": "segment.batch",
            "POST import": "segment.batch",
          },
        },
      ],
    },
    events: {
      [TENANCY_EVENTS.keysChanged]() {
        authCache.clear();
      },
    },
    actions: {
      live() {
        return { status: "ok" };
      },
      async ready(ctx: Context<unknown, RequestMeta>) {
        const checks: Record<string, { ok: boolean; status: string; detail?: string }> = {};
        if (hub.config.roles.includes("ingestion")) {
          const [queue, store] = await Promise.allSettled([
            hub.queue().then((q) => q.health()),
            hub.store().then((s) => s.health()),
          ]);
          checks.queue =
            queue.status === "fulfilled" ? queue.value : { ok: false, status: "down", detail: String(queue.reason) };
          checks.store =
            store.status === "fulfilled" ? store.value : { ok: false, status: "down", detail: String(store.reason) };
        }
        const tenancy = ctx.broker.registry.getServiceList({ onlyAvailable: true }).some((s) => s.name === "tenancy");
        checks.tenancy = { ok: tenancy, status: tenancy ? "up" : "down" };
        const ok = Object.values(checks).every((c) => c.ok);
        if (!ok) {
          ctx.meta.$statusCode = 503;
          ctx.meta.$responseHeaders = { "Retry-After": "2" };
        }
        return { status: ok ? "ready" : "not_ready", checks };
      },
      openapi() {
        return openApiDocument;
      },
    },
    methods: {
      /** Replaces moleculer-web's handler, which logs every client error at error level. */
      errorHandler(this: { logger: HubServices["logger"] }, req: IncomingMessage, res: ServerResponse, err: unknown) {
        sendError(req, res, err, this.logger);
      },
      async authorizeBearer(ctx: Context<unknown, RequestMeta>, _route: unknown, req: Req) {
        const header = req.headers.authorization ?? "";
        const match = /^Bearer\s+(\S+)$/i.exec(header);
        if (!match) throw new AuthenticationError("Send 'Authorization: Bearer <api key>'");
        const presented = match[1]!;
        if (adminDigest !== undefined) {
          const digest = createHash("sha256").update(presented).digest();
          if (timingSafeEqual(digest, adminDigest)) {
            ctx.meta.platform = true;
            return;
          }
        }
        ctx.meta.principal = await principalFor(ctx, presented, "api");
      },
      async authorizeWriteKey(ctx: Context<unknown, RequestMeta>, _route: unknown, req: Req) {
        const header = req.headers.authorization ?? "";
        const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
        if (!match) throw new AuthenticationError("Send HTTP Basic auth with the write key as user name");
        const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
        const writeKey = decoded.split(":")[0] ?? "";
        if (writeKey === "")
          throw new ValidationError("Empty write key", [
            { field: "Authorization", code: "required", message: "write key missing" },
          ]);
        ctx.meta.principal = await principalFor(ctx, writeKey, "write");
      },
    },
  };
}
