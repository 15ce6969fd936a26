import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ValidationError, ConflictError } from "../core/errors";

const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

const camel = (name: string): string => name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Creates `plugins/<name>/` with a one-file consumer, its test and a README; returns the files. */
export function scaffoldConsumerPlugin(name: string, root = process.cwd()): string[] {
  if (!NAME.test(name) || name.length > 50) {
    throw new ValidationError("Invalid plugin name", [
      { field: "name", code: "invalid_format", message: "must be kebab-case, e.g. order-notifier" },
    ]);
  }
  const dir = join(root, "plugins", name);
  if (existsSync(dir)) throw new ConflictError(`plugins/${name} exists`, "plugin_exists");
  const id = camel(name);
  const files: Record<string, string> = {
    "plugin.ts": `import { z } from "zod";
import { defineConsumer, drop, ok, type Outcome } from "../../sdk";

/** ${name}: describe what it does. */
export const ${id}Plugin = defineConsumer({
  id: "${name}",
  version: "0.1.0",
  description: "Describe what ${name} does",
  config: z.object({ minScore: z.number().default(0) }).strict(),
  subscribe: { types: ["visit_web_page"] },
  delivery: { batchSize: 100, maxInFlight: 4, retries: { max: 5, initialBackoffMs: 200 } },
  start: (ctx) => ({ seen: 0, minScore: ctx.config.minScore }),
  async handle(batch, ctx) {
    const outcomes: Outcome[] = [];
    for (const activity of batch) {
      if (activity.leadId === undefined) {
        outcomes.push(drop("anonymous visitor"));
        continue;
      }
      // Side effects that leave the hub go through the effect ledger: once per key, even on redelivery.
      await ctx.effects.once(\`notify:\${activity.id}\`, async () => {
        ctx.state.seen++;
      });
      outcomes.push(ok());
    }
    return outcomes;
  },
});
`,
    "plugin.test.ts": `import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { startConsumerHarness, type ConsumerHarness } from "../../sdk/testing";
import { ${id}Plugin } from "./plugin";

let harness: ConsumerHarness;
before(async () => {
  harness = await startConsumerHarness(${id}Plugin, { config: { minScore: 1 } });
});
after(() => harness.stop());

it("handles web visits of known leads and drops anonymous ones", async () => {
  const reports = await harness.deliver([
    { type: "visit_web_page", leadId: "lead-1", attributes: { url: "https://example.com/" } },
    { type: "visit_web_page", anonymousId: "anon-1", leadId: undefined, attributes: { url: "https://example.com/" } },
  ]);
  // Different leads may land on different partitions: compare without order.
  assert.deepEqual(reports.flatMap((r) => r.outcomes.map((o) => o.kind)).sort(), ["drop", "ok"]);
});
`,
    "README.md": `# ${name}

A consumer plugin written with the [consumer SDK](../../sdk/README.md).

- Load it: add \`${id}Plugin\` to the \`plugins\` array of \`moleculer.config.ts\`.
- Configure it under \`config.plugins["${name}"]\` (see the zod schema in \`plugin.ts\`).
- Test it without any server: \`node --import tsx --test plugins/${name}/plugin.test.ts\`.
`,
  };
  mkdirSync(dir, { recursive: true });
  return Object.entries(files).map(([file, text]) => {
    writeFileSync(join(dir, file), text, { flag: "wx" });
    return relative(root, join(dir, file));
  });
}
