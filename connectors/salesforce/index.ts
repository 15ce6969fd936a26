import type { ConnectorDefinition, CrmSession, SessionConfig, SessionDeps } from "../contract";
import { salesforceManifest } from "./manifest";
import { createQueryChanges } from "./operations/query-changes";
import { createTestConnection } from "./operations/test-connection";
import { createUpdateScores } from "./operations/update-scores";
import { createUpsertLeads } from "./operations/upsert-leads";
import { createWriteTasks } from "./operations/write-tasks";
import { SalesforceTransport } from "./transport";

/** The Salesforce connector: manifest + a session assembled from one-file operations. */
export const salesforceConnector: ConnectorDefinition = {
  manifest: salesforceManifest,
  async openSession(config: SessionConfig, deps: SessionDeps): Promise<CrmSession> {
    const transport = new SalesforceTransport(config, deps);
    return {
      test: createTestConnection(transport),
      readChanges: createQueryChanges(transport),
      upsertLeads: createUpsertLeads(transport),
      writeActivities: createWriteTasks(transport),
      updateScores: createUpdateScores(transport),
      usage: () => transport.usage(),
      close: async () => undefined,
    };
  },
};
