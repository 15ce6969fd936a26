import type { ServiceBroker } from "moleculer";
import { builtInType } from "../../core/activity/types";
import { metricsOf, type Metrics } from "../metrics/library";
import type { Collector } from "../collectors/collector";

/** Events other nodes emit to report SLA facts to the monitoring plugin (payloads as below). */
export const SLA_EVENTS = {
  /** `SlaTrigger`: a consumer acted on an activity (campaign step, webhook, CRM task …). */
  triggered: "monitoring.sla.triggered",
  /** `SlaConsumed`: a consumer group finished an activity. */
  consumed: "monitoring.sla.consumed",
} as const;

export interface SlaTrigger {
  tenantId: string;
  /** The activity's `receivedAt` (ISO string or epoch ms). */
  receivedAt: string | number;
  /** Who triggered, e.g. `campaigns`. */
  consumer: string;
  /** When the effect happened (default now), epoch ms. */
  at?: number;
}

export interface SlaConsumed {
  tenantId: string;
  receivedAt: string | number;
  group: string;
  at?: number;
  /** Activities this report stands for (default one): they share tenant, receivedAt and at. */
  count?: number;
}

/** Custom types are per tenant and unbounded; they share one tag value. */
function typeTag(type: string): string {
  return builtInType(type) !== undefined ? type : "custom";
}

function epoch(value: string | number): number {
  return typeof value === "number" ? value : Date.parse(value);
}

/**
 * Business SLA metrics: what the intake accepted, rejected and throttled per tenant and type;
 * intake → store and intake → trigger latency; freshness (age of the oldest activity a tenant's
 * consumers have not caught up with) and consumer lag per tenant. Any component calls
 * `businessSla(broker)`; on other nodes, emit `SLA_EVENTS` instead.
 */
export class BusinessSla {
  private readonly accepted;
  private readonly rejected;
  private readonly throttled;
  private readonly intakeToStore;
  private readonly intakeToTrigger;
  private readonly consumerLag;
  private readonly freshnessGauge;
  /** Per tenant tag: receivedAt of the oldest activity accepted after consumers last caught up. */
  private readonly pending = new Map<string, { since?: number; lastAccepted: number }>();
  /** Freshness means something only once some consumer reports what it finished. */
  private consumersReporting = false;

  constructor(private readonly metrics: Metrics) {
    this.accepted = metrics.counter({
      name: "hub.intake.activities.accepted",
      description: "Activities accepted (durable in queue and store)",
      tags: ["tenant", "type"],
    });
    this.rejected = metrics.counter({
      name: "hub.intake.activities.rejected",
      description: "Activities refused as invalid",
      tags: ["tenant", "type"],
    });
    this.throttled = metrics.counter({
      name: "hub.intake.activities.throttled",
      description: "Activities refused by the tenant's quota (429)",
      tags: ["tenant"],
    });
    this.intakeToStore = metrics.histogram({
      name: "hub.sla.intake_to_store.ms",
      description: "From intake to durable in queue and store",
      tags: ["tenant"],
      unit: "ms",
    });
    this.intakeToTrigger = metrics.histogram({
      name: "hub.sla.intake_to_trigger.ms",
      description: "From intake to a consumer's triggered effect",
      tags: ["tenant", "consumer"],
      unit: "ms",
    });
    this.consumerLag = metrics.histogram({
      name: "hub.sla.consumer_lag.ms",
      description: "From intake to a consumer group finishing the activity",
      tags: ["tenant", "group"],
      unit: "ms",
    });
    this.freshnessGauge = metrics.gauge({
      name: "hub.sla.freshness.seconds",
      description: "Age of the oldest activity a tenant's consumers have not caught up with",
      tags: ["tenant"],
      unit: "seconds",
    });
  }

  /** A batch became durable; `receivedAt` is the intake time (epoch ms). */
  stored(tenantId: string, types: readonly string[], receivedAt: number, now = Date.now()): void {
    const counts = new Map<string, number>();
    for (const type of types) {
      const tag = typeTag(type);
      counts.set(tag, (counts.get(tag) ?? 0) + 1);
    }
    for (const [type, n] of counts) this.accepted.inc({ tenant: tenantId, type }, n);
    this.intakeToStore.observe(now - receivedAt, { tenant: tenantId });
    const key = this.metrics.tenants.tag(tenantId);
    const entry = this.pending.get(key) ?? { lastAccepted: 0 };
    entry.since ??= receivedAt;
    entry.lastAccepted = Math.max(entry.lastAccepted, receivedAt);
    this.pending.set(key, entry);
  }

  rejectedItems(tenantId: string, types: readonly string[]): void {
    for (const type of types) this.rejected.inc({ tenant: tenantId, type: typeTag(type) });
  }

  throttledItems(tenantId: string, count: number): void {
    this.throttled.inc({ tenant: tenantId }, count);
  }

  /** A consumer acted on an activity: the intake → trigger SLA. */
  triggered(event: SlaTrigger): void {
    const at = event.at ?? Date.now();
    const receivedAt = epoch(event.receivedAt);
    if (Number.isFinite(receivedAt))
      this.intakeToTrigger.observe(Math.max(0, at - receivedAt), { tenant: event.tenantId, consumer: event.consumer });
  }

  /** A consumer group finished an activity: consumer lag and freshness per tenant. */
  consumed(event: SlaConsumed): void {
    const at = event.at ?? Date.now();
    const receivedAt = epoch(event.receivedAt);
    if (!Number.isFinite(receivedAt)) return;
    this.consumersReporting = true;
    this.consumerLag.observe(Math.max(0, at - receivedAt), { tenant: event.tenantId, group: event.group }, event.count);
    const entry = this.pending.get(this.metrics.tenants.tag(event.tenantId));
    if (!entry) return;
    // Caught up with everything accepted so far, or at least as far as this activity.
    if (receivedAt >= entry.lastAccepted) entry.since = undefined;
    else if (entry.since !== undefined && receivedAt > entry.since) entry.since = receivedAt;
  }

  freshness(now = Date.now()): Map<string, number> {
    const out = new Map<string, number>();
    for (const [tenant, entry] of this.pending)
      out.set(tenant, entry.since === undefined ? 0 : Math.max(0, (now - entry.since) / 1000));
    return out;
  }

  /** Sets the freshness gauges; run by the monitoring plugin while any consumer reports. */
  collector(intervalMs: number): Collector {
    return {
      name: "sla-freshness",
      intervalMs,
      collect: (now) => {
        if (!this.consumersReporting) return;
        for (const [tenant, seconds] of this.freshness(now)) this.freshnessGauge.set(seconds, { tenant });
      },
    };
  }
}

const instances = new WeakMap<ServiceBroker, BusinessSla>();

/** The broker's business SLA recorder (no-op instruments when metrics are off). */
export function businessSla(broker: ServiceBroker): BusinessSla {
  let sla = instances.get(broker);
  if (!sla) {
    sla = new BusinessSla(metricsOf(broker));
    instances.set(broker, sla);
  }
  return sla;
}
