/**
 * "Test connection": authenticates and describes each mapped object to find fields that no
 * longer exist (a renamed or deleted custom field breaks sync; better to say so up front).
 * https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
 */
import type { ConnectionTest } from "../../contract";
import { ConnectorError } from "../../errors";
import type { SalesforceTransport } from "../transport";

export function createTestConnection(transport: SalesforceTransport) {
  return async function testConnection(fields: Readonly<Record<string, readonly string[]>>): Promise<ConnectionTest> {
    try {
      await transport.authenticate();
      const missingFields: { object: string; field: string }[] = [];
      for (const [object, names] of Object.entries(fields)) {
        const described = await transport.call(1, async () => transport.conn.describe(object));
        const present = new Set(described.fields.map((field) => field.name));
        for (const name of names) if (!present.has(name)) missingFields.push({ object, field: name });
      }
      return { ok: missingFields.length === 0, identity: transport.conn.instanceUrl, missingFields };
    } catch (error) {
      if (error instanceof ConnectorError)
        return { ok: false, missingFields: [], message: `${error.code}: ${error.message}` };
      throw error;
    }
  };
}
