/** The tag value every tenant beyond the guard's limit is folded into. */
export const OTHER_TENANT = "_other";

/**
 * Bounds the cardinality the `tenant` tag adds: the first `maxTenants` tenants seen (and the
 * pinned ones) keep their own series; every other tenant is reported as `_other`. Admission is
 * first come, first kept, so a series never changes meaning while the process runs; the number
 * of folded tenants and observations is counted so an operator knows when to raise the limit.
 */
export class TenantGuard {
  private readonly admitted = new Set<string>();
  private readonly folded = new Set<string>();
  private foldedObservations = 0;

  constructor(
    private maxTenants: number,
    pinned: readonly string[] = [],
  ) {
    for (const tenant of pinned) this.admitted.add(tenant);
  }

  /** Changes the limit (already admitted tenants stay) and pins tenants. */
  configure(maxTenants: number, pinned: readonly string[] = []): void {
    this.maxTenants = maxTenants;
    for (const tenant of pinned) this.admitted.add(tenant);
  }

  /** The tag value to use for this tenant. */
  tag(tenantId: string): string {
    if (this.admitted.has(tenantId)) return tenantId;
    if (this.admitted.size < this.maxTenants) {
      this.admitted.add(tenantId);
      return tenantId;
    }
    this.foldedObservations++;
    // Bounded too: past this size the count of distinct folded tenants is a lower bound.
    if (this.folded.size < 100_000) this.folded.add(tenantId);
    return OTHER_TENANT;
  }

  stats(): { admitted: number; foldedTenants: number; foldedObservations: number } {
    return {
      admitted: this.admitted.size,
      foldedTenants: this.folded.size,
      foldedObservations: this.foldedObservations,
    };
  }
}
