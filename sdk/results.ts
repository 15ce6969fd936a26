/**
 * What a consumer's `handle` says about each activity: expected outcomes are values, not
 * exceptions. A thrown error means "retry the whole batch".
 */
export type Outcome =
  | { kind: "ok" }
  | { kind: "drop"; reason: string }
  | { kind: "retry"; reason: string; afterMs?: number }
  | { kind: "dead_letter"; reason: string };

export type OutcomeKind = Outcome["kind"];

/** Handled; commit it. */
export function ok(): Outcome {
  return { kind: "ok" };
}

/** Deliberately ignored (not an error); counted under `drop`. */
export function drop(reason: string): Outcome {
  return { kind: "drop", reason };
}

/** Transient failure: handle this activity again after a back-off, before the batch commits. */
export function retry(reason: string, afterMs?: number): Outcome {
  return afterMs === undefined ? { kind: "retry", reason } : { kind: "retry", reason, afterMs };
}

/** Permanent failure: park the activity on the dead-letter topic and move on. */
export function deadLetter(reason: string): Outcome {
  return { kind: "dead_letter", reason };
}
