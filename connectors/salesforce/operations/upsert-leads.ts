/**
 * Outbound: create or update Leads by the hub's external id field (idempotent on redelivery).
 * https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_upsert.htm
 */
import { optionString, type LeadWrite, type WriteOutcome } from "../../contract";
import type { SalesforceTransport } from "../transport";
import { createUpsertRecords } from "../write-path";

export function createUpsertLeads(transport: SalesforceTransport) {
  const upsertRecords = createUpsertRecords(transport);
  return async function upsertLeads(leads: readonly LeadWrite[]): Promise<WriteOutcome> {
    const field = optionString(transport.options, "leadExternalIdField");
    return upsertRecords(
      "Lead",
      field,
      leads.map((lead) => ({ ...lead.fields, [field]: lead.key })),
    );
  };
}
