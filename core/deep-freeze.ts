/**
 * Freezes an object graph in place and returns it: for objects shared between activities or
 * between a publisher and in-process consumers, which nobody may change. Stops at what is
 * already frozen. Only objects are visited: most values of an activity are strings and numbers.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key in value) {
      const child = (value as Record<string, unknown>)[key];
      if (typeof child === "object" && child !== null) deepFreeze(child);
    }
  }
  return value;
}
