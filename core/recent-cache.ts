/**
 * A bounded cache of recently used entries, in two generations: hits in the current generation
 * cost one map look-up (no re-ordering, unlike a strict LRU), hits in the previous one move the
 * entry forward, and when the current generation is full the previous one is dropped. An entry
 * used at least once per `capacity / 2` insertions is never evicted.
 */
export class RecentCache<K, V> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();
  private readonly generation: number;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new RangeError("capacity must be an integer of at least 2");
    this.generation = capacity >> 1;
  }

  /** Entries held (at most the capacity). */
  get size(): number {
    return this.current.size + this.previous.size;
  }

  get(key: K): V | undefined {
    const value = this.current.get(key);
    if (value !== undefined) return value;
    const old = this.previous.get(key);
    if (old !== undefined) this.set(key, old);
    return old;
  }

  set(key: K, value: V): void {
    if (this.current.size >= this.generation) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }

  /** The cached value, or `compute(key)` cached for next time. */
  getOrCompute(key: K, compute: (key: K) => V): V {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const value = compute(key);
    this.set(key, value);
    return value;
  }

  clear(): void {
    this.current.clear();
    this.previous.clear();
  }
}
