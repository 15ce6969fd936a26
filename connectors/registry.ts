import type { ConnectorDefinition, ConnectorId } from "./contract";
import { dynamicsConnector } from "./dynamics";
import { ConnectorError } from "./errors";
import { salesforceConnector } from "./salesforce";

const CONNECTORS: Readonly<Record<ConnectorId, ConnectorDefinition>> = {
  salesforce: salesforceConnector,
  dynamics: dynamicsConnector,
};

/** Resolves a connector by id; fails with `connector_unknown` for anything else. */
export function resolveConnector(id: string): ConnectorDefinition {
  const found = Object.entries(CONNECTORS).find(([key]) => key === id)?.[1];
  if (!found)
    throw new ConnectorError(
      "connector_unknown",
      `unknown connector '${id}' (known: ${Object.keys(CONNECTORS).join(", ")})`,
    );
  return found;
}

/** Every shipped connector's manifest (what a console offers to configure). */
export function listConnectors(): ConnectorDefinition["manifest"][] {
  return Object.values(CONNECTORS).map((connector) => connector.manifest);
}
