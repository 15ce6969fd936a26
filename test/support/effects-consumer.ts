import { Pool } from "pg";
import { z } from "zod";
import { defineConsumer, type ConsumerPlugin } from "../../sdk";

const config = z
  .object({
    /** PostgreSQL connection string (shared by every node). */
    url: z.string().min(1),
    /** Table prefix: `<prefix>_effects` (one row per applied activity) and `<prefix>_deliveries`. */
    table: z.string().regex(/^[a-z][a-z0-9_]{0,40}$/),
  })
  .strict();

/** Creates the effect and delivery tables; nodes starting together serialise on an advisory lock. */
export async function createEffectTables(pool: Pool, table: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [table]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${table}_effects (
         activity_id TEXT PRIMARY KEY, lead TEXT NOT NULL, node TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
    );
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${table}_deliveries (
         activity_id TEXT NOT NULL, node TEXT NOT NULL, lead TEXT NOT NULL, applied BOOLEAN NOT NULL,
         at TIMESTAMPTZ NOT NULL DEFAULT now())`,
    );
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * A consumer for multi-node tests whose effect lives outside every node: it applies each activity
 * once into PostgreSQL (`INSERT … ON CONFLICT DO NOTHING` on the activity id) and logs every
 * delivery, so a test can count redeliveries across nodes and prove no effect was applied twice.
 */
export function effectsConsumer(group: string): ConsumerPlugin<typeof config> {
  return defineConsumer({
    id: "scaleout-effects",
    version: "1.0.0",
    description: "Records applied activity ids in PostgreSQL with a unique constraint (tests)",
    config,
    delivery: { group, batchSize: 200, maxInFlight: 4, fromBeginning: true },
    async start(ctx) {
      const pool = new Pool({ connectionString: ctx.config.url, max: 4 });
      await createEffectTables(pool, ctx.config.table);
      return { pool, node: ctx.hub.config.nodeId ?? "unknown" };
    },
    async handle(batch, ctx) {
      const { pool, node } = ctx.state;
      const ids = batch.map((a) => a.id);
      const leads = batch.map((a) => `${a.tenantId}/${a.leadId ?? a.anonymousId ?? ""}`);
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const applied = await client.query<{ activity_id: string }>(
          `INSERT INTO ${ctx.config.table}_effects (activity_id, lead, node)
           SELECT * FROM unnest($1::text[], $2::text[], array_fill($3::text, ARRAY[cardinality($1::text[])]))
           ON CONFLICT (activity_id) DO NOTHING RETURNING activity_id`,
          [ids, leads, node],
        );
        const fresh = new Set(applied.rows.map((r) => r.activity_id));
        await client.query(
          `INSERT INTO ${ctx.config.table}_deliveries (activity_id, node, lead, applied)
           SELECT * FROM unnest($1::text[], array_fill($2::text, ARRAY[cardinality($1::text[])]), $3::text[], $4::boolean[])`,
          [ids, node, leads, ids.map((id) => fresh.has(id))],
        );
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    async stop(ctx) {
      await ctx.state.pool.end();
    },
  });
}
