/**
 * "Test connection": gets a token, then reads one row of each mapped entity set selecting the
 * mapped columns; a column that no longer exists is reported (and removed) one at a time.
 * https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/select-columns
 */
import type { ConnectionTest } from "../../contract";
import { ConnectorError } from "../../errors";
import type { DynamicsTransport } from "../transport";

export function createTestConnection(transport: DynamicsTransport) {
  return async function testConnection(fields: Readonly<Record<string, readonly string[]>>): Promise<ConnectionTest> {
    const missingFields: { object: string; field: string }[] = [];
    try {
      await transport.accessToken();
      for (const [collection, names] of Object.entries(fields)) {
        let select = [...names];
        for (let attempt = 0; attempt <= names.length; attempt++) {
          try {
            await transport.call(1, async () => transport.api.retrieveMultiple({ collection, select, top: 1 }));
            break;
          } catch (error) {
            const missing =
              error instanceof ConnectorError && error.connectorCode === "connector_invalid_field"
                ? /property named '([^']+)'/.exec(error.message)?.[1]
                : undefined;
            if (!missing) throw error;
            missingFields.push({ object: collection, field: missing });
            select = select.filter((name) => name !== missing);
            if (select.length === 0) break;
          }
        }
      }
      return { ok: missingFields.length === 0, identity: transport.api.Utility.toAbsoluteUrl(""), missingFields };
    } catch (error) {
      if (error instanceof ConnectorError)
        return { ok: false, missingFields, message: `${error.code}: ${error.message}` };
      throw error;
    }
  };
}
