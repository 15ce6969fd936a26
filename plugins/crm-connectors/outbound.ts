import type { FieldValue, OutboundItem, RunRecord } from "../../connectors";
import { activityOf } from "../../core/activity/serialize";
import type { QueueMessage } from "../queue/contract";
import type { ScoreDelta } from "./score-ledger";

/** What a batch of queue messages becomes for one tenant's connector. */
export interface OutboundBatch {
  readonly items: OutboundItem[];
  readonly scoreDeltas: ScoreDelta[];
}

function scalar(value: unknown): value is FieldValue {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}

/** Queue position of a message as the engine stores it: opaque, increasing within a partition. */
function positionOf(message: QueueMessage): string {
  return `${message.partition}:${message.offset.padStart(20, "0")}`;
}

function isForTenant(message: QueueMessage, tenantId: string): boolean {
  const header = message.headers?.tenant;
  return header === undefined || header === tenantId;
}

/**
 * Turns queue messages into the engine's outbound items for one tenant:
 * - every activity of a known lead → an `activity` item (the engine applies the type filter);
 * - `identify` traits and `change_data_value` → one merged `lead` item per lead;
 * - `change_score` deltas → score deltas (made absolute by the ledger).
 * CRM sync activities (`crm_sync`, source `crm`) are never sent back; anonymous visitors have no CRM
 * record and are skipped.
 */
export function toOutboundBatch(messages: readonly QueueMessage[], tenantId: string): OutboundBatch {
  const items: OutboundItem[] = [];
  const leads = new Map<string, { updatedAt: string; fields: Record<string, FieldValue>; position: string }>();
  const scoreDeltas: ScoreDelta[] = [];
  for (const message of messages) {
    if (!isForTenant(message, tenantId) || message.headers?.type === "crm_sync") continue;
    const activity = activityOf(message);
    if (activity.tenantId !== tenantId || activity.type === "crm_sync" || activity.source === "crm") continue;
    if (activity.leadId === undefined) continue;
    const position = positionOf(message);
    const leadId = activity.leadId;
    items.push({
      position,
      kind: "activity",
      activity: {
        id: activity.id,
        tenantId,
        leadId,
        type: activity.type,
        source: activity.source,
        occurredAt: activity.occurredAt,
        attributes: activity.attributes,
      },
    });
    const changed: Record<string, FieldValue> = {};
    const attrs = activity.attributes;
    if (activity.type === "identify" && typeof attrs.traits === "object" && attrs.traits !== null) {
      for (const [name, value] of Object.entries(attrs.traits)) if (scalar(value)) changed[name] = value;
    } else if (activity.type === "change_data_value" && typeof attrs.field === "string" && scalar(attrs.newValue)) {
      changed[attrs.field] = attrs.newValue;
    } else if (activity.type === "change_score" && typeof attrs.delta === "number") {
      scoreDeltas.push({ activityId: activity.id, leadId, delta: attrs.delta });
    }
    if (Object.keys(changed).length > 0) {
      const lead = leads.get(leadId) ?? { updatedAt: activity.occurredAt, fields: {}, position };
      Object.assign(lead.fields, changed);
      if (activity.occurredAt > lead.updatedAt) lead.updatedAt = activity.occurredAt;
      lead.position = position;
      leads.set(leadId, lead);
    }
  }
  // The engine keeps one write per lead per flush: changes of a lead are merged here, not lost.
  for (const [leadId, lead] of leads)
    items.push({
      position: lead.position,
      kind: "lead",
      lead: { leadId, updatedAt: lead.updatedAt, fields: lead.fields },
    });
  return { items, scoreDeltas };
}

/** Score items for the absolute scores of a batch. */
export function scoreItems(scores: ReadonlyMap<string, number>, position: string): OutboundItem[] {
  return [...scores].map(([leadId, score]) => ({ position, kind: "score", score: { leadId, score } }));
}

interface Waiter {
  readonly messages: readonly QueueMessage[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Collects the batches every partition hands to one connector's consumer group and writes them
 * together, so the CRM sees thousands of records per write (Bulk API 2.0 / `$batch`) rather than
 * one partition's trickle. Each handler's promise settles only after the CRM accepted the whole
 * write: resolving commits the queue offsets, rejecting makes the queue redeliver (at-least-once).
 */
export class OutboundBatcher {
  private waiting: Waiter[] = [];
  private size = 0;
  private timer: NodeJS.Timeout | undefined;
  private tail: Promise<void> = Promise.resolve();
  private closing = false;

  constructor(
    private readonly write: (messages: QueueMessage[]) => Promise<RunRecord | undefined>,
    private readonly options: { readonly maxItems: number; readonly lingerMs: number },
  ) {}

  /** Number of messages waiting for the next write. */
  get pending(): number {
    return this.size;
  }

  offer(messages: readonly QueueMessage[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ messages, resolve, reject });
      this.size += messages.length;
      if (this.closing || this.size >= this.options.maxItems) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.lingerMs);
    });
  }

  /** Writes what is waiting now (run now, shutdown). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting;
    this.waiting = [];
    this.size = 0;
    if (batch.length > 0) {
      this.tail = this.tail.then(async () => {
        try {
          const run = await this.write(batch.flatMap((w) => w.messages));
          if (run && (run.status === "failed" || run.status === "skipped")) {
            throw new Error(`outbound write ${run.status}${run.error ? `: ${run.error.code}` : ""}`);
          }
          for (const w of batch) w.resolve();
        } catch (error) {
          for (const w of batch) w.reject(error);
        }
      });
    }
    return this.tail;
  }

  /** From now on every offer is written at once; returns when the current writes are done. */
  close(): Promise<void> {
    this.closing = true;
    return this.flush();
  }
}
