import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { utf8Text } from "./body";

/** What the intake accepted before: a fatal TextDecoder (drops a leading BOM, throws on bad UTF-8). */
function reference(body: Buffer): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    return undefined;
  }
}

describe("utf8Text", () => {
  it("decodes and refuses exactly as a fatal TextDecoder does", () => {
    const cases = [
      Buffer.from('{"a":"plain"}'),
      Buffer.from('{"a":"Café — 東京 👋🏽"}'),
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"bom":true}')]),
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.alloc(0),
      Buffer.from([0x7b, 0xff, 0x7d]), // never valid
      Buffer.from([0xc0, 0xaf]), // overlong "/"
      Buffer.from([0xed, 0xa0, 0x80]), // a UTF-16 surrogate encoded as UTF-8
      Buffer.from([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
      Buffer.from([0xe6, 0x9d]), // truncated
      Buffer.from('"\u0000"'),
    ];
    for (const body of cases) assert.equal(utf8Text(body), reference(body), body.toString("hex"));
  });

  it("agrees with it on random bytes", () => {
    // Bytes drawn mostly from lead and continuation ranges, so that many sequences are nearly valid.
    const alphabet = [0x41, 0x7f, 0x80, 0xbf, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xa0, 0x9f, 0x8f, 0xbb];
    let seed = 42;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648);
    let valid = 0;
    for (let n = 0; n < 5000; n++) {
      const body = Buffer.from(Array.from({ length: 1 + (next() % 8) }, () => alphabet[next() % alphabet.length]!));
      const got = utf8Text(body);
      assert.equal(got, reference(body), body.toString("hex"));
      if (got !== undefined) valid++;
    }
    assert.ok(valid > 100, `both accept some of them (${valid})`);
  });
});
