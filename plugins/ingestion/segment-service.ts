import type { Context, ServiceSchema } from "moleculer";
import { ValidationError, type FieldError } from "../../core/errors";
import { principalOf, type RequestMeta } from "../../core/middleware/scopes";
import type { IntakeResult, Submission } from "./intake";
import { SEGMENT_CALLS, segmentToActivity, type SegmentCall } from "./segment";

type Ctx = Context<{ body?: unknown }, RequestMeta>;

/**
 * Segment-spec intake. Batches are accepted item by item (Segment clients drop a whole batch on
 * a 4xx): valid messages are stored, invalid ones are reported under `rejected` with their index.
 * A batch in which nothing is valid is a 400.
 */
export function segmentService(): ServiceSchema {
  async function accept(
    ctx: Ctx,
    messages: Array<{ call: SegmentCall | undefined; raw: unknown }>,
    path: string,
  ): Promise<unknown> {
    const mapped: unknown[] = [];
    const positions: number[] = [];
    const errors: Array<{ index: number; errors: FieldError[] }> = [];
    messages.forEach(({ call, raw }, index) => {
      const at = path === "" ? "" : `${path}[${index}]`;
      if (call === undefined) {
        errors.push({
          index,
          errors: [
            {
              field: `${at}.type`.replace(/^\./, ""),
              code: "invalid_value",
              message: `must be one of ${SEGMENT_CALLS.join(", ")}`,
            },
          ],
        });
        return;
      }
      const result = segmentToActivity(call, raw);
      if (!result.ok)
        errors.push({
          index,
          errors: result.errors.map((e) => ({ ...e, field: at === "" ? e.field : `${at}.${e.field}` })),
        });
      else {
        mapped.push(result.value);
        positions.push(index);
      }
    });
    let result: IntakeResult = { accepted: 0, rejected: 0, ids: [], errors: [] };
    if (mapped.length > 0) {
      const submission: Submission = { items: mapped, path, partial: true };
      try {
        result = (await ctx.call("intake.submit", submission, { meta: ctx.meta })) as IntakeResult;
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        // Every mapped message was invalid: report them with the others.
        throw new ValidationError("No message of the request is valid", [
          ...errors.flatMap((e) => e.errors),
          ...error.details,
        ]);
      }
    }
    if (mapped.length === 0)
      throw new ValidationError(
        "No message of the request is valid",
        errors.flatMap((e) => e.errors),
      );
    const ids: Array<string | null> = messages.map(() => null);
    positions.forEach((original, i) => (ids[original] = result.ids[i] ?? null));
    for (const e of result.errors) errors.push({ index: positions[e.index]!, errors: e.errors });
    return { success: true, accepted: result.accepted, ids, rejected: errors.sort((a, b) => a.index - b.index) };
  }

  const single = (call: SegmentCall) => ({
    scope: "ingest" as const,
    handler(ctx: Ctx) {
      return accept(ctx, [{ call, raw: ctx.params.body }], "");
    },
  });

  return {
    name: "segment",
    actions: {
      track: single("track"),
      page: single("page"),
      screen: single("screen"),
      identify: single("identify"),
      batch: {
        scope: "ingest",
        handler(ctx: Ctx) {
          const body = ctx.params.body as { batch?: unknown } | undefined;
          const batch = body?.batch;
          if (!Array.isArray(batch)) {
            throw new ValidationError("batch must be an array", [
              { field: "batch", code: "invalid_type", message: "must be an array of messages" },
            ]);
          }
          principalOf(ctx);
          return accept(
            ctx,
            batch.map((raw: unknown) => {
              const type = (raw as { type?: unknown } | null)?.type;
              return { call: SEGMENT_CALLS.find((c) => c === type), raw };
            }),
            "batch",
          );
        },
      },
    },
  };
}
