import { ConfigError } from "./errors";

/** A part named by its registry name, or `{ type, options }`. */
export type PartConfig = string | { type: string; options?: Record<string, unknown> };

export type PartFactory<T, C> = (options: Record<string, unknown>, context: C) => T;

/**
 * One registry per family of pluggable parts (queue, store, search, metrics sink): it resolves a
 * name or `{ type, options }` to an implementation and fails with a clear, field-level error for
 * anything unknown.
 */
export class Registry<T, C> {
  private readonly factories = new Map<string, PartFactory<T, C>>();

  constructor(private readonly family: string) {}

  register(type: string, factory: PartFactory<T, C>): this {
    this.factories.set(type, factory);
    return this;
  }

  types(): string[] {
    return [...this.factories.keys()];
  }

  resolve(config: PartConfig, context: C): T {
    const { type, options } = typeof config === "string" ? { type: config, options: {} } : config;
    return this.factory(type)(options ?? {}, context);
  }

  /** Fails, as `resolve` would, when the configured type is not registered; creates nothing. */
  check(config: PartConfig): void {
    this.factory(typeof config === "string" ? config : config.type);
  }

  private factory(type: string): PartFactory<T, C> {
    const factory = this.factories.get(type);
    if (factory === undefined) {
      throw new ConfigError(`Unknown ${this.family} type '${type}'`, [
        { field: `${this.family}.type`, code: "unknown_type", message: `must be one of ${this.types().join(", ")}` },
      ]);
    }
    return factory;
  }
}

/** Reads an optional option of a given primitive type, for factories turning options into typed config. */
export function option<K extends "string" | "number" | "boolean">(
  options: Record<string, unknown>,
  name: string,
  kind: K,
): (K extends "string" ? string : K extends "number" ? number : boolean) | undefined {
  const value = options[name];
  return typeof value === kind
    ? (value as K extends "string" ? string : K extends "number" ? number : boolean)
    : undefined;
}
