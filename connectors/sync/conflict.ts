/**
 * What happens when a lead changed on both sides since the last sync.
 * - `crm-wins`: the CRM's value is applied in the hub; hub changes to a field the CRM changed are not pushed.
 * - `hub-wins`: the hub's value is kept and pushed; CRM changes are recorded but not applied.
 * - `newest-wins`: the later change wins (CRM modification time vs hub update time).
 */
export type ConflictRule = "crm-wins" | "hub-wins" | "newest-wins";

export const CONFLICT_RULES: readonly ConflictRule[] = ["crm-wins", "hub-wins", "newest-wins"];

/**
 * Decides the winner. `crmChangedAt` / `hubChangedAt` are the unsynced change times of each side
 * (undefined: that side has no pending change, so there is no conflict and the other side wins).
 */
export function resolveConflict(
  rule: ConflictRule,
  crmChangedAt: string | undefined,
  hubChangedAt: string | undefined,
): "crm" | "hub" {
  if (crmChangedAt === undefined) return "hub";
  if (hubChangedAt === undefined) return "crm";
  if (rule === "crm-wins") return "crm";
  if (rule === "hub-wins") return "hub";
  return Date.parse(crmChangedAt) >= Date.parse(hubChangedAt) ? "crm" : "hub";
}
