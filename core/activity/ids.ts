import { randomFillSync } from "node:crypto";

/**
 * Time-sortable unique ids in the ULID format: 48 bits of milliseconds since the epoch, then 80
 * bits of randomness, as 26 Crockford base-32 characters. Lexicographic order is time order, so
 * stores can page by id and HBase/SQLite keys stay append-mostly.
 *
 * Ids made in the same millisecond by one process are strictly increasing (the random part is
 * incremented), so a batch keeps its order.
 */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

const pool = Buffer.alloc(10 * 256);
let poolOffset = pool.length;
let lastTime = -1;
const lastRandom = new Uint8Array(10);

function nextRandom(out: Uint8Array): void {
  if (poolOffset + 10 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  for (let i = 0; i < 10; i++) out[i] = pool[poolOffset + i]!;
  poolOffset += 10;
}

function increment(bytes: Uint8Array): void {
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] === 255) {
      bytes[i] = 0;
    } else {
      bytes[i]!++;
      return;
    }
  }
}

const CODES = Array.from(ALPHABET, (c) => c.charCodeAt(0));
/** The character codes of the id being encoded; its time part is kept while the time repeats. */
const idCodes = new Array<number>(26).fill(CODES[0]!);
let codedTime = -1;

/** One allocation per id (the string): a batch shares its millisecond, so its time part too. */
function encode(time: number, random: Uint8Array): string {
  if (time !== codedTime) {
    let t = time;
    for (let i = 9; i >= 0; i--) {
      idCodes[i] = CODES[t % 32]!;
      t = Math.floor(t / 32);
    }
    codedTime = time;
  }
  // 80 bits -> 16 chars of 5 bits.
  let buffer = 0;
  let bits = 0;
  let at = 10;
  for (let i = 0; i < 10; i++) {
    buffer = (buffer << 8) | random[i]!;
    bits += 8;
    while (bits >= 5) {
      idCodes[at++] = CODES[(buffer >> (bits - 5)) & 31]!;
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return String.fromCharCode.apply(null, idCodes);
}

/**
 * A new activity id for now, or for `time` (ms). Ids for the current clock are monotonic within
 * the process (a clock step backwards keeps the last time); an explicit older `time` gets a
 * fresh random part.
 */
export function newActivityId(time?: number): string {
  const now = time ?? Date.now();
  if (now === lastTime || (time === undefined && now < lastTime)) {
    increment(lastRandom);
    return encode(lastTime, lastRandom);
  }
  if (now < lastTime) {
    const random = new Uint8Array(10);
    nextRandom(random);
    return encode(now, random);
  }
  lastTime = now;
  nextRandom(lastRandom);
  return encode(now, lastRandom);
}

export function isActivityId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/** Milliseconds encoded in an activity id. */
export function activityIdTime(id: string): number {
  let t = 0;
  for (let i = 0; i < 10; i++) t = t * 32 + ALPHABET.indexOf(id[i]!);
  return t;
}

/** The smallest id of millisecond `time`: ids of activities received at or after `time` sort at or above it. */
export function activityIdFloor(time: number): string {
  return encode(Math.max(0, Math.floor(time)), new Uint8Array(10));
}
