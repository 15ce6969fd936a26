import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { HUB_NODE_FLAGS } from "./node-flags";

describe("the hub's V8 flags", () => {
  it("npm start passes every one of them to node", () => {
    const pkg = JSON.parse(readFileSync(resolve(__dirname, "../package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    const start = pkg.scripts.start!.split(/\s+/);
    assert.equal(start[0], "node");
    for (const flag of HUB_NODE_FLAGS) assert.ok(start.includes(flag), `npm start lacks ${flag}`);
    assert.ok(start.indexOf("core/main.ts") > Math.max(...HUB_NODE_FLAGS.map((f) => start.indexOf(f))));
  });
});
