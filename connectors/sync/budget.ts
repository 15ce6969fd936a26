import type { CallGate } from "../contract";
import { sleep } from "../shared/retry";

/** Calls per second and burst a CRM endpoint (one org / environment) accepts from the hub. */
export interface RateBudget {
  readonly callsPerSecond: number;
  readonly burst: number;
}

interface Waiter {
  readonly calls: number;
  readonly resolve: () => void;
}

/**
 * A token bucket shared by every tenant that talks to the same CRM endpoint, handed out
 * round-robin between tenants with waiting calls: a tenant with a thousand queued calls cannot
 * delay another tenant's next call by more than one round (max-min fair, work-conserving).
 */
export class FairShareBudget {
  private tokens: number;
  private last = Date.now();
  private readonly queues = new Map<string, Waiter[]>();
  private order: string[] = [];
  private pumping = false;
  private readonly used = new Map<string, number>();

  constructor(readonly budget: RateBudget) {
    this.tokens = budget.burst;
  }

  /** The gate a session of `tenantId` calls before each API call. */
  gate(tenantId: string): CallGate {
    return { acquire: (calls: number) => this.acquire(tenantId, calls) };
  }

  /** Calls granted per tenant so far (for tests and status). */
  grantedCalls(): Record<string, number> {
    return Object.fromEntries(this.used);
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.budget.burst, this.tokens + ((now - this.last) / 1000) * this.budget.callsPerSecond);
    this.last = now;
  }

  acquire(tenantId: string, calls: number): Promise<void> {
    const cost = Math.max(1, Math.min(calls, this.budget.burst));
    this.refill();
    if (this.order.length === 0 && this.tokens >= cost) {
      this.tokens -= cost;
      this.used.set(tenantId, (this.used.get(tenantId) ?? 0) + cost);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const queue = this.queues.get(tenantId) ?? [];
      queue.push({ calls: cost, resolve });
      this.queues.set(tenantId, queue);
      if (!this.order.includes(tenantId)) this.order.push(tenantId);
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.order.length > 0) {
        const tenantId = this.order[0];
        const queue = this.queues.get(tenantId) ?? [];
        const waiter = queue[0];
        if (!waiter) {
          this.order.shift();
          continue;
        }
        this.refill();
        if (this.tokens < waiter.calls) {
          await sleep(Math.max(1, Math.ceil(((waiter.calls - this.tokens) / this.budget.callsPerSecond) * 1000)));
          continue;
        }
        this.tokens -= waiter.calls;
        this.used.set(tenantId, (this.used.get(tenantId) ?? 0) + waiter.calls);
        queue.shift();
        this.order.shift();
        if (queue.length > 0) this.order.push(tenantId);
        else this.queues.delete(tenantId);
        waiter.resolve();
      }
    } finally {
      this.pumping = false;
    }
  }
}

/** One `FairShareBudget` per CRM endpoint key (connector + org/environment URL). */
export class BudgetRegistry {
  private readonly budgets = new Map<string, FairShareBudget>();

  constructor(private readonly defaults: Readonly<Record<string, RateBudget>>) {}

  for(connector: string, endpoint: string): FairShareBudget {
    const key = `${connector} ${endpoint.toLowerCase()}`;
    let budget = this.budgets.get(key);
    if (!budget) {
      budget = new FairShareBudget(this.defaults[connector] ?? { callsPerSecond: 10, burst: 20 });
      this.budgets.set(key, budget);
    }
    return budget;
  }
}

/** Defaults: Salesforce ~25 calls/s per org; Dataverse 6,000 requests / 300 s per user = 20/s. */
export const DEFAULT_BUDGETS: Readonly<Record<string, RateBudget>> = {
  salesforce: { callsPerSecond: 25, burst: 50 },
  dynamics: { callsPerSecond: 20, burst: 40 },
};
