/**
 * Outbound: create or update leads with PATCH `leads(<alternate key>='…')` (upsert by alternate key).
 * https://learn.microsoft.com/en-us/power-apps/developer/data-platform/use-alternate-key-reference-record
 */
import { optionString, type LeadWrite, type WriteOutcome } from "../../contract";
import type { DynamicsTransport } from "../transport";
import { createBatchUpsert } from "./batch-upsert";

export function createUpsertLeads(transport: DynamicsTransport) {
  const batchUpsert = createBatchUpsert(transport);
  return async function upsertLeads(leads: readonly LeadWrite[]): Promise<WriteOutcome> {
    const keyField = optionString(transport.options, "leadAlternateKey");
    return batchUpsert(
      "leads",
      leads.map((lead) => ({ resultKey: lead.key, keyField, keyValue: lead.key, data: lead.fields })),
    );
  };
}
