/**
 * Builds the bytes a group writer hands its worker thread (`core/group-writer.ts`): strings
 * encoded as UTF-8 back to back into a Buffer with an ArrayBuffer of its own, which `postMessage`
 * can transfer instead of copying. Posted as strings, a group's activities were copied into the
 * message, copied again into strings on the worker's heap, and encoded to UTF-8 there once more
 * on their way to the disk; the worker now writes the bytes it was given and allocates nothing
 * for them.
 *
 * The buffer is sized for the caller's estimate (activities' JSON is nearly always ASCII: one
 * byte per UTF-16 code unit) and grows, by copying, only when the text takes more, so the usual
 * group is encoded once and never copied.
 */
export class TransferBuffer {
  private buf = Buffer.alloc(0);
  private at = 0;

  /** Starts a new buffer, sized for `estimatedBytes` (for text: its length, as if ASCII). */
  begin(estimatedBytes: number): void {
    this.buf = Buffer.allocUnsafeSlow(estimatedBytes + SLACK);
    this.at = 0;
  }

  /** Bytes written so far: the offset of what is written next. */
  get length(): number {
    return this.at;
  }

  skip(bytes: number): void {
    this.ensure(bytes);
    this.at += bytes;
  }

  byte(value: number): void {
    this.ensure(1);
    this.buf[this.at++] = value;
  }

  /** Writes a u32 (little-endian) here, or over bytes already written at `at`. */
  uint32(value: number, at = this.at): void {
    if (at === this.at) this.skip(4);
    this.buf.writeUInt32LE(value, at);
  }

  /** Writes a string as UTF-8; returns its length in bytes. */
  text(value: string): number {
    let bytes = this.buf.write(value, this.at, "utf8");
    // `write` stops before a character that does not fit, so a write that leaves fewer bytes
    // free than the longest character may have been cut short.
    if (this.buf.length - this.at - bytes < SLACK && Buffer.byteLength(value) !== bytes) {
      this.ensure(value.length * 3);
      bytes = this.buf.write(value, this.at, "utf8");
    }
    this.at += bytes;
    return bytes;
  }

  /** What was written, in an ArrayBuffer of its own (transferable); the next group starts with `begin`. */
  finish(): Buffer {
    const out = this.buf.subarray(0, this.at);
    this.buf = Buffer.alloc(0);
    this.at = 0;
    return out;
  }

  private ensure(bytes: number): void {
    if (this.at + bytes + SLACK <= this.buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.at + bytes + SLACK));
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
  }
}

/** Bytes kept free at the end: the longest UTF-8 character. */
const SLACK = 4;
