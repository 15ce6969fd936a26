import type { ConnectorDefinition, CrmSession, SessionConfig, SessionDeps } from "../contract";
import { dynamicsManifest } from "./manifest";
import { createQueryChanges } from "./operations/query-changes";
import { createTestConnection } from "./operations/test-connection";
import { createUpdateScores } from "./operations/update-scores";
import { createUpsertLeads } from "./operations/upsert-leads";
import { createWriteActivities } from "./operations/write-activities";
import { DynamicsTransport } from "./transport";

/** The Dynamics 365 connector: manifest + a session assembled from one-file operations. */
export const dynamicsConnector: ConnectorDefinition = {
  manifest: dynamicsManifest,
  async openSession(config: SessionConfig, deps: SessionDeps): Promise<CrmSession> {
    const transport = new DynamicsTransport(config, deps);
    return {
      test: createTestConnection(transport),
      readChanges: createQueryChanges(transport),
      upsertLeads: createUpsertLeads(transport),
      writeActivities: createWriteActivities(transport),
      updateScores: createUpdateScores(transport),
      usage: () => transport.usage(),
      close: async () => undefined,
    };
  },
};
