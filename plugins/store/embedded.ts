import { join } from "node:path";
import type { Activity } from "../../core/activity/model";
import { leadKeyOf } from "../../core/activity/model";
import { activityIdFloor } from "../../core/activity/ids";
import { activityJson } from "../../core/activity/serialize";
import type { HealthStatus } from "../../core/health";
import { GroupCommit, openSqlite, type SqliteDatabase } from "../../core/sqlite";
import type { ActivityPage, ActivityQuery, ActivityStore, ClientIdClaim } from "./contract";
import { decodeCursor, encodeCursor, type Cursor } from "./page-token";

export interface EmbeddedStoreOptions {
  /** Folder of `store.db`. */
  dataDir: string;
}

/**
 * The default system of record: SQLite on local disk. The table is clustered by (tenant, id):
 * ids are time-sortable by arrival, so that one order serves both reads by id and tenant-wide
 * reads by arrival time; one index (tenant, lead, occurredAt, id) serves a lead's history.
 * Two B-tree writes per activity, group-committed with one fsync per commit.
 */
export class EmbeddedStore implements ActivityStore {
  readonly type = "embedded";
  private db?: SqliteDatabase;
  private commit?: GroupCommit<Activity>;

  constructor(private readonly options: EmbeddedStoreOptions) {}

  async start(): Promise<void> {
    if (this.db) return;
    const db = openSqlite(join(this.options.dataDir, "store.db"));
    db.exec(`
      CREATE TABLE IF NOT EXISTS activities (
        tenant_id TEXT NOT NULL, id TEXT NOT NULL, lead_key TEXT NOT NULL, type TEXT NOT NULL,
        occurred_at INTEGER NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (tenant_id, id)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS activities_by_lead ON activities (tenant_id, lead_key, occurred_at, id);
      CREATE TABLE IF NOT EXISTS client_ids (
        tenant_id TEXT NOT NULL, client_id TEXT NOT NULL, id TEXT NOT NULL,
        PRIMARY KEY (tenant_id, client_id)
      ) WITHOUT ROWID;
    `);
    const insert = db.prepare(
      "INSERT OR IGNORE INTO activities (tenant_id, id, lead_key, type, occurred_at, body) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.commit = new GroupCommit<Activity>(db, (items) => {
      for (const a of items) {
        insert.run(a.tenantId, a.id, leadKeyOf(a), a.type, Date.parse(a.occurredAt), activityJson(a));
      }
    });
    this.db = db;
  }

  async stop(): Promise<void> {
    this.commit?.flush();
    this.db?.close();
    this.db = undefined;
  }

  async claimClientIds(tenantId: string, claims: ClientIdClaim[]): Promise<string[]> {
    const db = this.open();
    const insert = db.prepare("INSERT OR IGNORE INTO client_ids (tenant_id, client_id, id) VALUES (?, ?, ?)");
    const select = db.prepare("SELECT id FROM client_ids WHERE tenant_id = ? AND client_id = ?").pluck();
    return db.transaction(() =>
      claims.map((claim) => {
        insert.run(tenantId, claim.clientId, claim.proposedId);
        return select.get(tenantId, claim.clientId) as string;
      }),
    )();
  }

  put(activities: Activity[]): Promise<void> {
    this.open();
    return this.commit!.add(activities);
  }

  async get(tenantId: string, id: string): Promise<Activity | undefined> {
    const body = this.open()
      .prepare("SELECT body FROM activities WHERE tenant_id = ? AND id = ?")
      .pluck()
      .get(tenantId, id) as string | undefined;
    return body === undefined ? undefined : (JSON.parse(body) as Activity);
  }

  async leadHistory(tenantId: string, leadKey: string, query: ActivityQuery): Promise<ActivityPage> {
    const clauses = ["tenant_id = ?", "lead_key = ?"];
    const args: Array<string | number> = [tenantId, leadKey];
    if (query.since !== undefined) {
      clauses.push("occurred_at >= ?");
      args.push(query.since);
    }
    if (query.until !== undefined) {
      clauses.push("occurred_at < ?");
      args.push(query.until);
    }
    if (query.pageToken !== undefined) {
      const cursor = decodeCursor(query.pageToken);
      clauses.push("(occurred_at < ? OR (occurred_at = ? AND id < ?))");
      args.push(cursor.occurredAt, cursor.occurredAt, cursor.id);
    }
    return this.page(clauses, args, query, "occurred_at DESC, id DESC", (last) => ({
      occurredAt: Date.parse(last.occurredAt),
      id: last.id,
    }));
  }

  async list(tenantId: string, query: ActivityQuery): Promise<ActivityPage> {
    const clauses = ["tenant_id = ?"];
    const args: Array<string | number> = [tenantId];
    // Ids are time-sortable by arrival, so a receivedAt window is a primary-key range.
    if (query.since !== undefined) {
      clauses.push("id >= ?");
      args.push(activityIdFloor(query.since));
    }
    if (query.until !== undefined) {
      clauses.push("id < ?");
      args.push(activityIdFloor(query.until));
    }
    if (query.pageToken !== undefined) {
      clauses.push("id < ?");
      args.push(decodeCursor(query.pageToken).id);
    }
    return this.page(clauses, args, query, "id DESC", (last) => ({ occurredAt: 0, id: last.id }));
  }

  async existing(tenantId: string, ids: string[]): Promise<Set<string>> {
    const select = this.open().prepare("SELECT 1 FROM activities WHERE tenant_id = ? AND id = ?").pluck();
    return new Set(ids.filter((id) => select.get(tenantId, id) !== undefined));
  }

  async health(): Promise<HealthStatus> {
    if (!this.db) return { ok: false, status: "down", detail: "not started" };
    return { ok: true, status: "up" };
  }

  private page(
    clauses: string[],
    args: Array<string | number>,
    query: ActivityQuery,
    order: string,
    cursorOf: (last: Activity) => Cursor,
  ): Promise<ActivityPage> {
    if (query.types !== undefined && query.types.length > 0) {
      clauses.push(`type IN (${query.types.map(() => "?").join(", ")})`);
      args.push(...query.types);
    }
    args.push(query.limit + 1);
    const bodies = this.open()
      .prepare(`SELECT body FROM activities WHERE ${clauses.join(" AND ")} ORDER BY ${order} LIMIT ?`)
      .pluck()
      .all(...args) as string[];
    const items = bodies.slice(0, query.limit).map((body) => JSON.parse(body) as Activity);
    const last = items[items.length - 1];
    return Promise.resolve(
      bodies.length > query.limit && last !== undefined ? { items, nextPageToken: encodeCursor(cursorOf(last)) } : { items },
    );
  }

  private open(): SqliteDatabase {
    if (!this.db) throw new Error("embedded store is not started");
    return this.db;
  }
}
