/**
 * Builds the bytes a group writer hands its worker thread (`core/group-writer.ts`): strings
 * encoded as UTF-8 back to back into a reused scratch buffer, then copied into a Buffer with an
 * ArrayBuffer of its own, which `postMessage` can transfer instead of copying. Posted as strings,
 * a group's activities were copied into the message, copied again into strings on the worker's
 * heap, and encoded to UTF-8 there once more on their way to the disk; the worker now writes
 * the bytes it was given and allocates nothing for them.
 */
export class TransferBuffer {
  private buf = Buffer.alloc(0);
  private at = 0;

  /** Starts a new buffer that will hold at most `mostBytes` (`utf8Bound` of its strings, plus the rest). */
  begin(mostBytes: number): void {
    if (this.buf.length < mostBytes) this.buf = Buffer.allocUnsafeSlow(Math.max(mostBytes, this.buf.length * 2));
    this.at = 0;
  }

  /** Bytes written so far: the offset of what is written next. */
  get length(): number {
    return this.at;
  }

  skip(bytes: number): void {
    this.at += bytes;
  }

  byte(value: number): void {
    this.buf[this.at++] = value;
  }

  uint32(value: number, at = this.at): void {
    this.buf.writeUInt32LE(value, at);
    if (at === this.at) this.at += 4;
  }

  /** Writes a string as UTF-8; returns its length in bytes. */
  text(value: string): number {
    const bytes = this.buf.write(value, this.at, "utf8");
    this.at += bytes;
    return bytes;
  }

  /** A copy of what was written, in an ArrayBuffer of its own (transferable). */
  finish(): Buffer {
    const out = Buffer.allocUnsafeSlow(this.at);
    this.buf.copy(out, 0, 0, this.at);
    return out;
  }
}

/** The most bytes a string of this many UTF-16 code units takes as UTF-8. */
export function utf8Bound(chars: number): number {
  return chars * 3;
}
