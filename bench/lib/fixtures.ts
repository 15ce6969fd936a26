import { newActivityId } from "../../core/activity/ids";
import { ACTIVITY_SCHEMA_VERSION, type Activity } from "../../core/activity/model";

/** The web visit every benchmark sends (≈ 600 bytes as JSON): 5,000 leads, 300 pages. */
export function benchActivityInput(n: number): Record<string, unknown> {
  return {
    leadId: `lead-${n % 5000}`,
    type: "visit_web_page",
    occurredAt: new Date().toISOString(),
    attributes: {
      url: `https://www.example.com/products/item-${n % 300}?utm_source=newsletter&utm_campaign=fall`,
      title: "Product page",
      referrer: "https://www.google.com/",
      userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
      ip: "203.0.113.7",
    },
  };
}

/**
 * Stored activities for store benchmarks, in batches: one in ten is an `email_opened`, occurredAt
 * spread over a day.
 */
export function benchActivityBatches(tenantId: string, total: number, batchSize: number): Activity[][] {
  const out: Activity[][] = [];
  for (let b = 0; b * batchSize < total; b++) {
    out.push(
      Array.from({ length: batchSize }, (_, i) => {
        const n = b * batchSize + i;
        const input = benchActivityInput(n);
        const a: Activity = {
          id: newActivityId(),
          tenantId,
          leadId: String(input.leadId),
          type: n % 10 === 0 ? "email_opened" : "visit_web_page",
          source: "web",
          occurredAt: new Date(Date.now() - (n % 86_400) * 1000).toISOString(),
          receivedAt: new Date().toISOString(),
          attributes: input.attributes as Activity["attributes"],
          schemaVersion: ACTIVITY_SCHEMA_VERSION,
        };
        return a;
      }),
    );
  }
  return out;
}
