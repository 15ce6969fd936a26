/**
 * Freezes an object graph in place and returns it: for objects shared between activities or
 * between a publisher and in-process consumers, which nobody may change. Stops at what is
 * already frozen.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) freezeObject(value);
  return value;
}

/** Only objects are visited: most values of an activity are strings and numbers. */
function freezeObject(object: object): void {
  Object.freeze(object);
  for (const key in object) {
    const child = (object as Record<string, unknown>)[key];
    if (typeof child === "object" && child !== null && !Object.isFrozen(child)) freezeObject(child);
  }
}
