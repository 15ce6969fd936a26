import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TransferBuffer } from "./transfer-buffer";

describe("TransferBuffer", () => {
  it("encodes strings as UTF-8, growing past an ASCII estimate when the text needs it", () => {
    const out = new TransferBuffer();
    const parts = ["plain", "Café — 東京", "👋🏽", "", "x".repeat(1000), "é".repeat(700)];
    out.begin(4 + parts.join("").length);
    out.skip(4);
    const lengths = parts.map((p) => out.text(p));
    out.uint32(out.length, 0);
    const first = out.finish();
    assert.deepEqual(
      lengths,
      parts.map((p) => Buffer.byteLength(p)),
    );
    assert.equal(first.readUInt32LE(0), first.length);
    assert.equal(first.toString("utf8", 4), parts.join(""));
  });

  it("writes ASCII into the buffer it started with, and gives every group an ArrayBuffer of its own", () => {
    const out = new TransferBuffer();
    out.begin(7);
    out.text("abc");
    out.byte(0x0a);
    out.text("def");
    const first = out.finish();
    assert.equal(first.toString(), "abc\ndef");
    assert.equal(first.byteOffset, 0);
    assert.ok(first.buffer.byteLength <= first.length + 4, "not grown: the estimate held");

    out.begin(3);
    out.text("ghi");
    const second = out.finish();
    assert.notEqual(second.buffer, first.buffer);
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(second, [second.buffer as ArrayBuffer]);
    assert.equal(second.length, 0, "transferred, not copied");
    assert.equal(first.toString(), "abc\ndef", "another group's bytes are untouched");
    port1.close();
    port2.close();
  });

  it("never cuts a character short at the end of the buffer", () => {
    for (let pad = 0; pad < 8; pad++) {
      const out = new TransferBuffer();
      const text = `${"a".repeat(pad)}€👋`;
      out.begin(pad + 1);
      out.text(text);
      assert.equal(out.finish().toString(), text);
    }
  });
});
