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

function encode(time: number, random: Uint8Array): string {
  let out = "";
  let t = time;
  const timeChars = new Array<string>(10);
  for (let i = 9; i >= 0; i--) {
    timeChars[i] = ALPHABET[t % 32]!;
    t = Math.floor(t / 32);
  }
  out = timeChars.join("");
  // 80 bits -> 16 chars of 5 bits.
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < 10; i++) {
    buffer = (buffer << 8) | random[i]!;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

/** A new monotonic activity id for the current time (or `time`, in ms). */
export function newActivityId(time: number = Date.now()): string {
  if (time <= lastTime) {
    increment(lastRandom);
    return encode(lastTime, lastRandom);
  }
  lastTime = time;
  nextRandom(lastRandom);
  return encode(time, lastRandom);
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
