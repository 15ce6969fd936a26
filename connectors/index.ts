/**
 * CRM connector layer of Activity Hub: Salesforce and Microsoft Dynamics 365, two-way sync.
 *
 * The surface is small on purpose:
 * - `resolveConnector` / `listConnectors`: manifests (credentials, options, objects, directions).
 * - `SyncEngine`: configure, test, run (inbound → `emit`, outbound ← `OutboundSource`), status.
 * - `ConnectorScheduler`: node-cron scheduling, no overlapping runs.
 * - Persistence: `ConnectorStateStore` (`MemoryStateStore`, `SqliteStateStore`) and
 *   `CredentialVault` (`AesGcmCredentialVault`, secrets encrypted at rest, never returned).
 * - `redact`: masks secrets in anything that may be logged or returned.
 */
export type {
  ConnectorId,
  ConnectorManifest,
  ConnectorDefinition,
  ConnectionTest,
  Credentials,
  CredentialFieldSpec,
  CredentialModeSpec,
  OptionSpec,
  ObjectSpec,
  FieldType,
  FieldValue,
  SyncDirection,
  ConnectorLogger,
} from "./contract";
export { ConnectorError, isConnectorError, type ConnectorErrorCode } from "./errors";
export { resolveConnector, listConnectors } from "./registry";
export { redact, redactText, REDACTED } from "./shared/redact";
export type { ConnectorInstanceConfig, FieldProblem } from "./sync/config";
export { validateInstanceConfig } from "./sync/config";
export type { FieldMapping } from "./sync/mapping";
export type { ConflictRule } from "./sync/conflict";
export type { CrmSyncActivity, HubActivity, OutboundItem, OutboundSource } from "./sync/activity";
export { SyncEngine, type SyncEngineDeps, type RunOptions, type ConnectorStatus } from "./sync/engine";
export { ConnectorScheduler } from "./sync/scheduler";
export {
  MemoryStateStore,
  type ConnectorStateStore,
  type RunRecord,
  type RunCounts,
  type DeadLetter,
} from "./sync/state-store";
export { SqliteStateStore } from "./sync/sqlite-state-store";
export {
  AesGcmCredentialVault,
  type CredentialVault,
  type CredentialRef,
  type CredentialsView,
  type VaultKey,
} from "./sync/vault";
export { BudgetRegistry, FairShareBudget, DEFAULT_BUDGETS, type RateBudget } from "./sync/budget";
