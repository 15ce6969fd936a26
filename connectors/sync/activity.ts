import { createHash } from "node:crypto";
import type { FieldValue } from "../contract";

/** The activity shape handed to the hub (`emit`). `id` is deterministic so redelivery dedupes. */
export interface CrmSyncActivity {
  readonly id: string;
  readonly tenantId: string;
  readonly leadId: string;
  readonly type: "crm_sync";
  readonly source: "crm";
  readonly occurredAt: string;
  readonly attributes: {
    readonly connector: string;
    readonly instanceId: string;
    readonly object: string;
    readonly crmId: string;
    readonly operation: "upsert" | "delete";
    /** Mapped lead fields (type-checked). */
    readonly fields: Readonly<Record<string, FieldValue>>;
    /** Whether the lead profile should take these values (conflict rule outcome). */
    readonly apply: boolean;
    readonly conflict?: { readonly rule: string; readonly winner: "crm" | "hub" };
    /** Mapped fields whose CRM value failed the type check (kept out of `fields`). */
    readonly invalidFields?: readonly { readonly field: string; readonly message: string }[];
  };
}

/** The same CRM change always yields the same id: tenant, instance, object, record, version, operation. */
export function crmActivityId(parts: {
  tenantId: string;
  instanceId: string;
  object: string;
  crmId: string;
  version: string;
  operation: string;
}): string {
  const hash = createHash("sha256")
    .update(
      [parts.tenantId, parts.instanceId, parts.object, parts.crmId, parts.version, parts.operation].join("\u0000"),
    )
    .digest("hex");
  return `crm_${hash.slice(0, 32)}`;
}

/** A hub activity offered for outbound sync. */
export interface HubActivity {
  readonly id: string;
  readonly tenantId: string;
  readonly leadId: string;
  readonly type: string;
  readonly source?: string;
  readonly occurredAt: string;
  readonly attributes?: Readonly<Record<string, unknown>>;
}

/** One item of the outbound stream; `position` is opaque and increasing (e.g. a queue offset). */
export type OutboundItem =
  | { readonly position: string; readonly kind: "activity"; readonly activity: HubActivity }
  | {
      readonly position: string;
      readonly kind: "lead";
      readonly lead: {
        readonly leadId: string;
        readonly updatedAt: string;
        readonly fields: Readonly<Record<string, FieldValue>>;
      };
    }
  | {
      readonly position: string;
      readonly kind: "score";
      readonly score: { readonly leadId: string; readonly score: number };
    };

/** Caller-provided outbound stream, resumable after `position` (undefined: from the start). */
export type OutboundSource = (afterPosition: string | undefined) => AsyncIterable<OutboundItem>;
