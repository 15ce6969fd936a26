import type { ActionSchema, Context, Middleware } from "moleculer";
import { AuthenticationError, ForbiddenError } from "../errors";
import type { Scope } from "../tenancy/keys";
import type { Principal } from "../tenancy/directory";

/** Scope an action requires: a tenant scope, or `platform` for the hub operator's admin token. */
export type ActionScope = Scope | "platform";

declare module "moleculer" {
  interface ActionSchema {
    /** Declared on an action, enforced by `scopesMiddleware` for every call carrying credentials. */
    scope?: ActionScope;
  }
}

export interface RequestMeta {
  principal?: Principal;
  /** Set when the caller presented the platform admin token. */
  platform?: boolean;
  idempotencyKey?: string;
  $statusCode?: number;
  $location?: string;
  $responseHeaders?: Record<string, string>;
}

/** The tenant principal of a call; throws when the call carries none. */
export function principalOf(ctx: Context<unknown, RequestMeta>): Principal {
  const principal = ctx.meta.principal;
  if (!principal) throw new AuthenticationError();
  return principal;
}

/**
 * Enforces the `scope` property of action schemas: a call needs a principal holding that scope
 * (or the platform token, for `platform`). Tenant data is reached only through the principal's
 * tenant, so this is the single authorization gate of the API.
 */
export const scopesMiddleware: Middleware = {
  localAction(handler: (ctx: Context) => Promise<unknown>, action: ActionSchema) {
    const scope = action.scope;
    if (scope === undefined) return handler;
    return function checkScope(ctx: Context<unknown, RequestMeta>): Promise<unknown> {
      if (scope === "platform") {
        if (ctx.meta.platform !== true)
          return Promise.reject(new AuthenticationError("This route needs the platform admin token"));
        return handler(ctx);
      }
      const principal = ctx.meta.principal;
      if (!principal) return Promise.reject(new AuthenticationError());
      if (!principal.scopes.includes(scope)) {
        return Promise.reject(new ForbiddenError(`This key lacks the '${scope}' scope`, "insufficient_scope"));
      }
      return handler(ctx);
    };
  },
};
