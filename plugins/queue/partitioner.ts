/** FNV-1a 32-bit: a fast, stable hash so a key always lands on the same partition. */
export function hashKey(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export function partitionFor(key: string, partitions: number): number {
  return hashKey(key) % partitions;
}
