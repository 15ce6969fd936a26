import type { Context, ServiceSchema } from "moleculer";
import { validateTypeDefinition } from "../activity/validate";
import { BUILT_IN_ACTIVITY_TYPES } from "../activity/types";
import { ValidationError } from "../errors";
import { principalOf, type RequestMeta } from "../middleware/scopes";
import type { TenantDirectory } from "./directory";
import { SCOPES, type KeyKind, type Scope } from "./keys";

type HttpParams = { body?: unknown; query?: Record<string, unknown>; params?: Record<string, string> };
type Ctx = Context<HttpParams, RequestMeta>;

function bodyObject(ctx: Ctx): Record<string, unknown> {
  const body = ctx.params.body;
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ValidationError("The body must be a JSON object", [
      { field: "body", code: "invalid_type", message: "must be an object" },
    ]);
  }
  return body as Record<string, unknown>;
}

function actor(ctx: Ctx): string {
  if (ctx.meta.platform === true) return "platform-admin";
  const p = ctx.meta.principal;
  return p ? `key:${p.keyId}` : "system";
}

export const TENANCY_EVENTS = { keysChanged: "tenancy.keysChanged", typesChanged: "tenancy.typesChanged" } as const;

/**
 * The `tenancy` service: tenants, keys, custom activity types and the audit log. It is the only
 * component that reads key hashes; other nodes ask it to authenticate and cache the answer.
 */
export function tenancyService(directory: TenantDirectory): ServiceSchema {
  return {
    name: "tenancy",
    actions: {
      /** Internal: checks an API key or write key. Returns the principal or null. */
      authenticate: {
        visibility: "public",
        params: { key: "string", kind: { type: "enum", values: ["api", "write"] } },
        handler(ctx: Context<{ key: string; kind: KeyKind }>) {
          return directory.authenticate(ctx.params.key, ctx.params.kind) ?? null;
        },
      },
      /** Internal: a tenant's custom activity types. */
      tenantTypes: {
        visibility: "public",
        params: { tenantId: "string" },
        handler(ctx: Context<{ tenantId: string }>) {
          return directory.listTypes(ctx.params.tenantId);
        },
      },

      // ---- tenant-scoped REST actions (tenant from the credentials) ----
      currentTenant: {
        scope: "read",
        handler(ctx: Ctx) {
          return directory.getTenant(principalOf(ctx).tenantId);
        },
      },
      listTypes: {
        scope: "read",
        handler(ctx: Ctx) {
          return { builtIn: BUILT_IN_ACTIVITY_TYPES, custom: directory.listTypes(principalOf(ctx).tenantId) };
        },
      },
      createType: {
        scope: "admin",
        handler(ctx: Ctx) {
          return defineType(ctx, "create");
        },
      },
      replaceType: {
        scope: "admin",
        handler(ctx: Ctx) {
          return defineType(ctx, "replace");
        },
      },
      deleteType: {
        scope: "admin",
        handler(ctx: Ctx) {
          directory.deleteType(principalOf(ctx).tenantId, ctx.params.params?.name ?? "", actor(ctx));
          ctx.emit(TENANCY_EVENTS.typesChanged, { tenantId: principalOf(ctx).tenantId });
          ctx.meta.$statusCode = 204;
          return null;
        },
      },
      listKeys: {
        scope: "admin",
        handler(ctx: Ctx) {
          return { keys: directory.listKeys(principalOf(ctx).tenantId) };
        },
      },
      createKey: {
        scope: "admin",
        handler(ctx: Ctx) {
          const body = bodyObject(ctx);
          const kind = body.kind ?? "api";
          if (kind !== "api" && kind !== "write") {
            throw new ValidationError("Invalid key kind", [
              { field: "kind", code: "invalid_value", message: "must be api or write" },
            ]);
          }
          const scopes = body.scopes ?? (kind === "write" ? ["ingest"] : [...SCOPES]);
          if (!Array.isArray(scopes))
            throw new ValidationError("Invalid scopes", [
              { field: "scopes", code: "invalid_type", message: "must be an array" },
            ]);
          const name = typeof body.name === "string" ? body.name : "unnamed";
          const created = directory.createKey(principalOf(ctx).tenantId, actor(ctx), kind, name, scopes as Scope[]);
          ctx.meta.$statusCode = 201;
          ctx.meta.$location = `/api/v1/keys/${created.info.keyId}`;
          return { ...created.info, key: created.key };
        },
      },
      revokeKey: {
        scope: "admin",
        handler(ctx: Ctx) {
          directory.revokeKey(principalOf(ctx).tenantId, ctx.params.params?.keyId ?? "", actor(ctx));
          ctx.emit(TENANCY_EVENTS.keysChanged, {});
          ctx.meta.$statusCode = 204;
          return null;
        },
      },
      audit: {
        scope: "admin",
        handler(ctx: Ctx) {
          return { entries: directory.auditLog(principalOf(ctx).tenantId) };
        },
      },

      // ---- platform operator actions (admin token) ----
      createTenant: {
        scope: "platform",
        handler(ctx: Ctx) {
          const body = bodyObject(ctx);
          const quota = (body.quota ?? {}) as { rate?: number; burst?: number };
          const created = directory.createTenant(String(body.name ?? ""), actor(ctx), quota);
          ctx.meta.$statusCode = 201;
          ctx.meta.$location = `/api/v1/admin/tenants/${created.tenant.id}`;
          return {
            tenantId: created.tenant.id,
            tenant: created.tenant,
            apiKey: created.apiKey,
            writeKey: created.writeKey,
          };
        },
      },
      listTenants: {
        scope: "platform",
        handler() {
          return { tenants: directory.listTenants() };
        },
      },
      updateTenant: {
        scope: "platform",
        handler(ctx: Ctx) {
          const body = bodyObject(ctx);
          const tenant = directory.updateTenant(ctx.params.params?.tenantId ?? "", actor(ctx), {
            ...(body.quota !== undefined ? { quota: body.quota as { rate?: number; burst?: number } } : {}),
            ...(body.settings !== undefined ? { settings: body.settings as { anonymizeIp?: boolean } } : {}),
          });
          ctx.emit(TENANCY_EVENTS.keysChanged, {});
          return tenant;
        },
      },
      deleteTenant: {
        scope: "platform",
        handler(ctx: Ctx) {
          directory.deleteTenant(ctx.params.params?.tenantId ?? "", actor(ctx));
          ctx.emit(TENANCY_EVENTS.keysChanged, {});
          ctx.meta.$statusCode = 204;
          return null;
        },
      },
    },
  };

  function defineType(ctx: Ctx, mode: "create" | "replace"): unknown {
    const body = bodyObject(ctx);
    const input = mode === "replace" ? { ...body, name: ctx.params.params?.name } : body;
    const result = validateTypeDefinition(input);
    if (!result.ok) throw new ValidationError("Invalid activity type definition", result.errors);
    const tenantId = principalOf(ctx).tenantId;
    const saved = directory.defineType(tenantId, actor(ctx), result.value, mode);
    ctx.emit(TENANCY_EVENTS.typesChanged, { tenantId });
    if (mode === "create") {
      ctx.meta.$statusCode = 201;
      ctx.meta.$location = `/api/v1/activity-types/${saved.name}`;
    }
    return saved;
  }
}
