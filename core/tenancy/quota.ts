import type { Quota } from "./directory";

/**
 * Per-tenant token buckets for the intake. A request for n activities takes n tokens or none:
 * a batch is never half-admitted. The answer says how long until it would fit.
 */
export class QuotaBuckets {
  private readonly buckets = new Map<string, { tokens: number; updated: number; rate: number; burst: number }>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Takes `count` tokens; returns 0 when admitted, else the seconds to wait before retrying. */
  take(tenantId: string, quota: Quota, count: number): number {
    const now = this.now();
    let bucket = this.buckets.get(tenantId);
    if (!bucket || bucket.rate !== quota.rate || bucket.burst !== quota.burst) {
      bucket = {
        tokens: bucket ? Math.min(bucket.tokens, quota.burst) : quota.burst,
        updated: now,
        rate: quota.rate,
        burst: quota.burst,
      };
      this.buckets.set(tenantId, bucket);
    }
    bucket.tokens = Math.min(bucket.burst, bucket.tokens + ((now - bucket.updated) / 1000) * bucket.rate);
    bucket.updated = now;
    // A batch larger than the bucket is admitted when the bucket is full and leaves it in debt,
    // so the long-run rate still holds and no batch size is refused forever.
    const needed = Math.min(count, bucket.burst);
    if (needed <= bucket.tokens) {
      bucket.tokens -= count;
      return 0;
    }
    const deficit = needed - bucket.tokens;
    return Math.max(1, Math.ceil(deficit / bucket.rate));
  }
}
