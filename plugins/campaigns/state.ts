import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Activity, JsonValue } from "../../core/activity/model";
import { activityJson } from "../../core/activity/serialize";
import { GroupCommit, openSqlite, WalSync, type SqliteDatabase } from "../../core/sqlite";
import type { Campaign, CampaignInput, CampaignStatus } from "./model";
import type { LeadView, QualificationRecord } from "./rules";
import type { LeadStateWriter } from "./steps";

export type RunStatus = "running" | "waiting" | "done" | "failed";

export interface Run {
  id: string;
  tenantId: string;
  campaignId: string;
  leadId: string;
  activity: Activity;
  status: RunStatus;
  nextStep: number;
  wakeAt: number | null;
}

export interface LogEntry {
  seq: number;
  at: string;
  campaignId: string;
  leadId: string;
  runId: string;
  activityId: string;
  step: number | null;
  stepType: string | null;
  status: string;
  detail: JsonValue;
}

interface RunRow {
  id: string;
  tenant_id: string;
  campaign_id: string;
  lead_id: string;
  activity: string;
  status: RunStatus;
  next_step: number;
  wake_at: number | null;
}

const toRun = (r: RunRow): Run => ({
  id: r.id,
  tenantId: r.tenant_id,
  campaignId: r.campaign_id,
  leadId: r.lead_id,
  activity: JSON.parse(r.activity) as Activity,
  status: r.status,
  nextStep: r.next_step,
  wakeAt: r.wake_at,
});

/**
 * Campaign definitions, the lead state campaigns read and change (fields, score, lists), runs
 * and the execution log, in `campaigns.db`. Run progress and log lines are group-committed.
 */
export class CampaignState implements LeadStateWriter {
  private readonly db: SqliteDatabase;
  private readonly writes: GroupCommit<() => void>;
  /** Commits fsync on the thread pool; writers await it before they report done. */
  private readonly walSync: WalSync;
  private readonly stmt;

  constructor(dataDir: string) {
    this.db = openSqlite(join(dataDir, "campaigns.db"));
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS campaigns (
        tenant_id TEXT NOT NULL, id TEXT NOT NULL, definition TEXT NOT NULL, status TEXT NOT NULL,
        version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (tenant_id, id)
      );
      CREATE TABLE IF NOT EXISTS leads (
        tenant_id TEXT NOT NULL, lead_id TEXT NOT NULL, fields TEXT NOT NULL, score REAL NOT NULL,
        PRIMARY KEY (tenant_id, lead_id)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS list_members (
        tenant_id TEXT NOT NULL, lead_id TEXT NOT NULL, list_id TEXT NOT NULL, PRIMARY KEY (tenant_id, lead_id, list_id)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS applied (key TEXT PRIMARY KEY) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS qualifications (
        tenant_id TEXT NOT NULL, campaign_id TEXT NOT NULL, lead_id TEXT NOT NULL, last_at INTEGER NOT NULL,
        count INTEGER NOT NULL, PRIMARY KEY (tenant_id, campaign_id, lead_id)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, campaign_id TEXT NOT NULL, lead_id TEXT NOT NULL,
        activity TEXT NOT NULL, status TEXT NOT NULL, next_step INTEGER NOT NULL, wake_at INTEGER,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS runs_waiting ON runs (status, wake_at);
      CREATE TABLE IF NOT EXISTS log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, tenant_id TEXT NOT NULL, campaign_id TEXT NOT NULL,
        lead_id TEXT NOT NULL, run_id TEXT NOT NULL, activity_id TEXT NOT NULL, step INTEGER, step_type TEXT,
        status TEXT NOT NULL, detail TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS log_by_campaign ON log (tenant_id, campaign_id, seq);
      CREATE INDEX IF NOT EXISTS log_by_lead ON log (tenant_id, lead_id, seq);
    `);
    const db = this.db;
    this.stmt = {
      applyOnce: db.prepare("INSERT OR IGNORE INTO applied (key) VALUES (?)"),
      lead: db.prepare("SELECT fields, score FROM leads WHERE tenant_id = ? AND lead_id = ?"),
      lists: db.prepare("SELECT list_id FROM list_members WHERE tenant_id = ? AND lead_id = ?"),
      upsertLead: db.prepare(
        "INSERT INTO leads (tenant_id, lead_id, fields, score) VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, lead_id) DO UPDATE SET fields = excluded.fields, score = excluded.score",
      ),
      addMember: db.prepare("INSERT OR IGNORE INTO list_members (tenant_id, lead_id, list_id) VALUES (?, ?, ?)"),
      removeMember: db.prepare("DELETE FROM list_members WHERE tenant_id = ? AND lead_id = ? AND list_id = ?"),
      qualification: db.prepare(
        "SELECT last_at AS lastAt, count FROM qualifications WHERE tenant_id = ? AND campaign_id = ? AND lead_id = ?",
      ),
      qualify: db.prepare(
        `INSERT INTO qualifications (tenant_id, campaign_id, lead_id, last_at, count) VALUES (?, ?, ?, ?, 1)
         ON CONFLICT (tenant_id, campaign_id, lead_id) DO UPDATE SET last_at = MAX(last_at, excluded.last_at), count = count + 1`,
      ),
      run: db.prepare("SELECT * FROM runs WHERE id = ?"),
      insertRun: db.prepare(
        "INSERT OR IGNORE INTO runs (id, tenant_id, campaign_id, lead_id, activity, status, next_step, wake_at, created_at) VALUES (?, ?, ?, ?, ?, 'running', 0, NULL, ?)",
      ),
      progress: db.prepare("UPDATE runs SET status = ?, next_step = ?, wake_at = ? WHERE id = ?"),
      due: db.prepare("SELECT * FROM runs WHERE status = 'waiting' AND wake_at <= ? ORDER BY wake_at LIMIT ?"),
      running: db.prepare("SELECT * FROM runs WHERE status = 'running' LIMIT ?"),
      log: db.prepare(
        "INSERT INTO log (at, tenant_id, campaign_id, lead_id, run_id, activity_id, step, step_type, status, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
    };
    this.walSync = new WalSync(db);
    this.writes = new GroupCommit<() => void>(
      db,
      (items) => {
        for (const write of items) write();
      },
      20_000,
      this.walSync,
    );
  }

  close(): void {
    this.writes.flushSync();
    this.walSync.close();
    this.db.close();
  }

  // ── campaigns ──────────────────────────────────────────────────────────────

  allCampaigns(): Campaign[] {
    return (this.db.prepare("SELECT * FROM campaigns").all() as CampaignRow[]).map(toCampaign);
  }

  listCampaigns(tenantId: string): Campaign[] {
    return (
      this.db
        .prepare("SELECT * FROM campaigns WHERE tenant_id = ? ORDER BY created_at, id")
        .all(tenantId) as CampaignRow[]
    ).map(toCampaign);
  }

  getCampaign(tenantId: string, id: string): Campaign | undefined {
    const row = this.db.prepare("SELECT * FROM campaigns WHERE tenant_id = ? AND id = ?").get(tenantId, id) as
      CampaignRow | undefined;
    return row ? toCampaign(row) : undefined;
  }

  createCampaign(tenantId: string, input: CampaignInput): Campaign {
    const id = `cmp_${randomBytes(8).toString("hex")}`;
    const now = new Date().toISOString();
    this.db
      .prepare(
        "INSERT INTO campaigns (tenant_id, id, definition, status, version, created_at, updated_at) VALUES (?, ?, ?, 'inactive', 1, ?, ?)",
      )
      .run(tenantId, id, JSON.stringify(input), now, now);
    this.walSync.syncNow(); // campaign edits are rare: sync them inline
    return this.getCampaign(tenantId, id)!;
  }

  updateCampaign(tenantId: string, id: string, input: CampaignInput): Campaign | undefined {
    const changed = this.db
      .prepare(
        "UPDATE campaigns SET definition = ?, version = version + 1, updated_at = ? WHERE tenant_id = ? AND id = ?",
      )
      .run(JSON.stringify(input), new Date().toISOString(), tenantId, id).changes;
    this.walSync.syncNow();
    return changed > 0 ? this.getCampaign(tenantId, id) : undefined;
  }

  setStatus(tenantId: string, id: string, status: CampaignStatus): Campaign | undefined {
    const changed = this.db
      .prepare("UPDATE campaigns SET status = ?, updated_at = ? WHERE tenant_id = ? AND id = ?")
      .run(status, new Date().toISOString(), tenantId, id).changes;
    this.walSync.syncNow();
    return changed > 0 ? this.getCampaign(tenantId, id) : undefined;
  }

  deleteCampaign(tenantId: string, id: string): boolean {
    const deleted = this.db.prepare("DELETE FROM campaigns WHERE tenant_id = ? AND id = ?").run(tenantId, id).changes;
    this.walSync.syncNow();
    return deleted > 0;
  }

  // ── lead state ─────────────────────────────────────────────────────────────

  lead(tenantId: string, leadId: string): LeadView {
    const row = this.stmt.lead.get(tenantId, leadId) as { fields: string; score: number } | undefined;
    const lists = (this.stmt.lists.all(tenantId, leadId) as Array<{ list_id: string }>).map((r) => r.list_id);
    return {
      leadId,
      fields: row ? (JSON.parse(row.fields) as { [key: string]: JsonValue }) : {},
      score: row?.score ?? 0,
      lists: new Set(lists),
    };
  }

  private writeLead(tenantId: string, leadId: string, change: (lead: LeadView) => void): void {
    const lead = this.lead(tenantId, leadId);
    change(lead);
    this.stmt.upsertLead.run(tenantId, leadId, JSON.stringify(lead.fields), lead.score);
  }

  /** Applies lead-changing activities (identify, change_data_value, change_score, lists) once each, in one transaction. */
  async applyActivities(activities: Activity[]): Promise<void> {
    let changed = false;
    this.db.transaction(() => {
      for (const a of activities) {
        if (a.leadId === undefined) continue;
        const attrs = a.attributes;
        const leadId = a.leadId;
        let change: ((lead: LeadView) => void) | undefined;
        if (
          a.type === "identify" &&
          typeof attrs.traits === "object" &&
          attrs.traits !== null &&
          !Array.isArray(attrs.traits)
        ) {
          const traits = attrs.traits;
          change = (lead) => Object.assign(lead.fields, traits);
        } else if (a.type === "change_data_value" && typeof attrs.field === "string") {
          const field = attrs.field;
          change = (lead) => void (lead.fields[field] = attrs.newValue ?? null);
        } else if (a.type === "change_score" && typeof attrs.delta === "number") {
          const delta = attrs.delta;
          change = (lead) => void (lead.score += delta);
        } else if ((a.type === "add_to_list" || a.type === "remove_from_list") && typeof attrs.listId === "string") {
          if (this.stmt.applyOnce.run(`a:${a.tenantId}:${a.id}`).changes === 0) continue;
          changed = true;
          if (a.type === "add_to_list") this.stmt.addMember.run(a.tenantId, leadId, attrs.listId);
          else this.stmt.removeMember.run(a.tenantId, leadId, attrs.listId);
          continue;
        }
        if (change === undefined) continue;
        if (this.stmt.applyOnce.run(`a:${a.tenantId}:${a.id}`).changes === 0) continue;
        changed = true;
        this.writeLead(a.tenantId, leadId, change);
      }
    })();
    if (changed) await this.walSync.sync();
  }

  // Score and list steps join the group commit: a thousand firings a second share a few fsyncs
  // instead of paying one each on the event loop.
  changeScore(tenantId: string, leadId: string, delta: number, effectKey: string): Promise<void> {
    return this.writes.add([
      () => {
        if (this.stmt.applyOnce.run(`e:${effectKey}`).changes === 0) return;
        this.writeLead(tenantId, leadId, (lead) => void (lead.score += delta));
      },
    ]);
  }

  setListMember(tenantId: string, listId: string, leadId: string, member: boolean, effectKey: string): Promise<void> {
    return this.writes.add([
      () => {
        if (this.stmt.applyOnce.run(`e:${effectKey}`).changes === 0) return;
        if (member) this.stmt.addMember.run(tenantId, leadId, listId);
        else this.stmt.removeMember.run(tenantId, leadId, listId);
      },
    ]);
  }

  // ── qualification and runs ─────────────────────────────────────────────────

  qualification(tenantId: string, campaignId: string, leadId: string): QualificationRecord | undefined {
    return this.stmt.qualification.get(tenantId, campaignId, leadId) as QualificationRecord | undefined;
  }

  run(id: string): Run | undefined {
    const row = this.stmt.run.get(id) as RunRow | undefined;
    return row ? toRun(row) : undefined;
  }

  /** Records new runs, their qualifications and a `triggered` log line in one transaction. */
  async startRuns(
    runs: Array<{ id: string; tenantId: string; campaignId: string; activity: Activity; leadId: string }>,
  ): Promise<Map<string, Run>> {
    const created = new Map<string, Run>();
    if (runs.length === 0) return created;
    const now = Date.now();
    const at = new Date(now).toISOString();
    this.db.transaction(() => {
      for (const r of runs) {
        // activityJson: the text the intake already made for the queue, when this is its object.
        if (
          this.stmt.insertRun.run(r.id, r.tenantId, r.campaignId, r.leadId, activityJson(r.activity), now).changes === 0
        )
          continue;
        created.set(r.id, { ...r, status: "running", nextStep: 0, wakeAt: null });
        this.stmt.qualify.run(r.tenantId, r.campaignId, r.leadId, Date.parse(r.activity.occurredAt));
        this.stmt.log.run(
          at,
          r.tenantId,
          r.campaignId,
          r.leadId,
          r.id,
          r.activity.id,
          null,
          null,
          "triggered",
          JSON.stringify({ activityType: r.activity.type }),
        );
      }
    })();
    await this.walSync.sync();
    return created;
  }

  /** Records a run's progress and a log line (group-committed; resolves once durable). */
  progress(
    run: Run,
    status: RunStatus,
    nextStep: number,
    wakeAt: number | null,
    log?: { step: number | null; stepType: string | null; status: string; detail: JsonValue },
  ): Promise<void> {
    const at = new Date().toISOString();
    return this.writes.add([
      () => {
        this.stmt.progress.run(status, nextStep, wakeAt, run.id);
        if (log)
          this.stmt.log.run(
            at,
            run.tenantId,
            run.campaignId,
            run.leadId,
            run.id,
            run.activity.id,
            log.step,
            log.stepType,
            log.status,
            JSON.stringify(log.detail),
          );
      },
    ]);
  }

  /** Appends a log line (group-committed). */
  log(
    run: Pick<Run, "id" | "tenantId" | "campaignId" | "leadId" | "activity">,
    step: number | null,
    stepType: string | null,
    status: string,
    detail: JsonValue,
  ): Promise<void> {
    const at = new Date().toISOString();
    return this.writes.add([
      () =>
        void this.stmt.log.run(
          at,
          run.tenantId,
          run.campaignId,
          run.leadId,
          run.id,
          run.activity.id,
          step,
          stepType,
          status,
          JSON.stringify(detail),
        ),
    ]);
  }

  dueRuns(now: number, limit: number): Run[] {
    return (this.stmt.due.all(now, limit) as RunRow[]).map(toRun);
  }

  runningRuns(limit: number): Run[] {
    return (this.stmt.running.all(limit) as RunRow[]).map(toRun);
  }

  campaignLog(tenantId: string, campaignId: string, limit: number, before?: number): LogEntry[] {
    return this.readLog("campaign_id", tenantId, campaignId, limit, before);
  }

  leadLog(tenantId: string, leadId: string, limit: number, before?: number): LogEntry[] {
    return this.readLog("lead_id", tenantId, leadId, limit, before);
  }

  private readLog(
    column: "campaign_id" | "lead_id",
    tenantId: string,
    value: string,
    limit: number,
    before?: number,
  ): LogEntry[] {
    const rows = this.db
      .prepare(`SELECT * FROM log WHERE tenant_id = ? AND ${column} = ? AND seq < ? ORDER BY seq DESC LIMIT ?`)
      .all(tenantId, value, before ?? Number.MAX_SAFE_INTEGER, limit) as LogRow[];
    return rows.map((r) => ({
      seq: r.seq,
      at: r.at,
      campaignId: r.campaign_id,
      leadId: r.lead_id,
      runId: r.run_id,
      activityId: r.activity_id,
      step: r.step,
      stepType: r.step_type,
      status: r.status,
      detail: JSON.parse(r.detail) as JsonValue,
    }));
  }
}

interface CampaignRow {
  tenant_id: string;
  id: string;
  definition: string;
  status: CampaignStatus;
  version: number;
  created_at: string;
  updated_at: string;
}

function toCampaign(row: CampaignRow): Campaign {
  return {
    ...(JSON.parse(row.definition) as CampaignInput),
    id: row.id,
    tenantId: row.tenant_id,
    status: row.status,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

interface LogRow {
  seq: number;
  at: string;
  campaign_id: string;
  lead_id: string;
  run_id: string;
  activity_id: string;
  step: number | null;
  step_type: string | null;
  status: string;
  detail: string;
}
