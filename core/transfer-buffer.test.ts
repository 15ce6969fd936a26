import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TransferBuffer, utf8Bound } from "./transfer-buffer";

describe("TransferBuffer", () => {
  it("encodes strings as UTF-8 into a buffer of its own, reusing its scratch between groups", () => {
    const out = new TransferBuffer();
    const parts = ["plain", "Café — 東京", "👋🏽", ""];
    out.begin(4 + utf8Bound(parts.join("").length));
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
    // Transferable: the whole ArrayBuffer is this group's bytes and nothing else.
    assert.equal(first.byteOffset, 0);
    assert.equal(first.buffer.byteLength, first.length);

    out.begin(utf8Bound(3));
    out.text("abc");
    out.byte(0x0a);
    const second = out.finish();
    assert.equal(second.toString(), "abc\n");
    assert.equal(first.toString("utf8", 4), parts.join(""), "an earlier group's bytes are not overwritten");
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(second, [second.buffer as ArrayBuffer]);
    assert.equal(second.length, 0, "transferred, not copied");
    port1.close();
    port2.close();
  });
});
