import type { LoggerInstance } from "moleculer";
import { leadKeyOf, type Activity, type JsonValue } from "../../core/activity/model";
import type { EffectLedger } from "../../sdk/effects";
import { deadLetter, ok, retry, type Outcome } from "../../sdk/results";
import type { ActivityStore } from "../store/contract";
import {
  qualifies,
  TriggerIndex,
  type CompiledCampaign,
  type HistoryCounter,
  type LeadView,
  type QualificationRecord,
} from "./rules";
import type { CampaignState, Run } from "./state";
import type { StepContext, StepOutcome, StepRegistry } from "./steps";

export interface EngineOptions {
  /** Leads whose runs execute at once (runs of one lead execute in order). */
  concurrency: number;
  /** Deliveries of an activity after which a failing run is marked failed and the activity dead-lettered. */
  maxAttempts: number;
  /** Called after every executed step, with the intake → step latency (ms). */
  onStep?: (run: Run, step: number, stepType: string, latencyMs: number) => void;
}

type RunResult = "done" | "waiting" | "failed" | "error";

const HISTORY_PAGE = 200;
const HISTORY_MAX_PAGES = 10;

/**
 * Evaluates activities against the trigger index, qualifies leads, and executes flow steps.
 * Runs are keyed by (campaign, activity), external steps by (campaign, activity, step) in the
 * effect ledger: a redelivered activity resumes its runs and never repeats a completed effect.
 */
export class CampaignEngine {
  private index = new TriggerIndex([]);
  private byId = new Map<string, CompiledCampaign["campaign"]>();
  private readonly executing = new Map<string, Promise<RunResult>>();

  constructor(
    private readonly state: CampaignState,
    private readonly steps: StepRegistry,
    private readonly effects: EffectLedger,
    private readonly store: () => Promise<ActivityStore>,
    private readonly logger: LoggerInstance,
    private readonly options: EngineOptions,
  ) {
    this.reload();
  }

  /** Rebuilds the trigger index from the saved campaigns. */
  reload(): void {
    const campaigns = this.state.allCampaigns();
    this.index = new TriggerIndex(campaigns);
    this.byId = new Map(campaigns.map((c) => [`${c.tenantId}/${c.id}`, c]));
  }

  async handle(batch: Activity[], attempt: number): Promise<Outcome[]> {
    await this.state.applyActivities(batch);
    const candidates: Array<{ activity: Activity; compiled: CompiledCampaign; runId: string }> = [];
    for (const activity of batch) {
      if (activity.leadId === undefined) continue;
      for (const compiled of this.index.matches(activity))
        candidates.push({ activity, compiled, runId: `${compiled.campaign.id}:${activity.id}` });
    }
    if (candidates.length === 0) return batch.map(() => ok());

    const leads = new Map<string, LeadView>();
    const leadOf = (tenantId: string, leadId: string): LeadView => {
      const key = `${tenantId}/${leadId}`;
      let lead = leads.get(key);
      if (!lead) leads.set(key, (lead = this.state.lead(tenantId, leadId)));
      return lead;
    };
    const store = await this.store();
    const verdicts = await Promise.all(
      candidates.map(async ({ activity, compiled, runId }): Promise<"resume" | "new" | "no"> => {
        if (this.state.run(runId) !== undefined) return "resume";
        const lead = leadOf(activity.tenantId, activity.leadId!);
        if (!compiled.syncFilters.every((f) => f(lead))) return "no";
        const counter = this.historyCounter(store, activity);
        for (const filter of compiled.historyFilters) if (!(await filter(lead, activity, counter))) return "no";
        return "new";
      }),
    );

    const overlay = new Map<string, QualificationRecord>();
    const fresh: Parameters<CampaignState["startRuns"]>[0] = [];
    const toExecute = new Set<string>();
    candidates.forEach(({ activity, compiled, runId }, i) => {
      if (verdicts[i] === "resume") toExecute.add(runId);
      if (verdicts[i] !== "new") return;
      const { campaign } = compiled;
      const key = `${campaign.tenantId}/${campaign.id}/${activity.leadId}`;
      const previous = overlay.get(key) ?? this.state.qualification(campaign.tenantId, campaign.id, activity.leadId!);
      const at = Date.parse(activity.occurredAt);
      if (!qualifies(campaign.qualification, previous, at)) return;
      overlay.set(key, { lastAt: Math.max(at, previous?.lastAt ?? 0), count: (previous?.count ?? 0) + 1 });
      fresh.push({
        id: runId,
        tenantId: campaign.tenantId,
        campaignId: campaign.id,
        activity,
        leadId: activity.leadId!,
      });
      toExecute.add(runId);
    });
    // New runs are executed from memory; only resumed ones are read back.
    const created = await this.state.startRuns(fresh);

    const runs = [...toExecute]
      .map((id) => created.get(id) ?? this.state.run(id))
      .filter((r): r is Run => r !== undefined && r.status === "running");
    const results = await this.executeByLead(runs);
    const failedActivities = new Set<string>();
    runs.forEach((run, i) => {
      if (results[i] === "error") failedActivities.add(run.activity.id);
    });
    if (failedActivities.size === 0) return batch.map(() => ok());
    const lastAttempt = attempt >= this.options.maxAttempts;
    if (lastAttempt) {
      await Promise.all(
        runs
          .filter((_r, i) => results[i] === "error")
          .map((r) =>
            this.state.progress(r, "failed", r.nextStep, null, {
              step: null,
              stepType: null,
              status: "failed",
              detail: { reason: "retries exhausted" },
            }),
          ),
      );
    }
    return batch.map((a) =>
      !failedActivities.has(a.id)
        ? ok()
        : lastAttempt
          ? deadLetter("campaign step kept failing")
          : retry("campaign step failed"),
    );
  }

  /** Resumes runs whose wait is over (and, at start, runs a crash interrupted). */
  async resume(runs: Run[]): Promise<number> {
    await this.executeByLead(runs);
    return runs.length;
  }

  private historyCounter(store: ActivityStore, trigger: Activity): HistoryCounter {
    return async ({ activityType, since, until, test, excludeId, atMost }) => {
      let count = 0;
      let pageToken: string | undefined;
      for (let page = 0; page < HISTORY_MAX_PAGES && count < atMost; page++) {
        const result = await store.leadHistory(trigger.tenantId, leadKeyOf(trigger), {
          types: [activityType],
          since,
          until,
          limit: HISTORY_PAGE,
          ...(pageToken ? { pageToken } : {}),
        });
        for (const a of result.items) if (a.id !== excludeId && test(a) && ++count >= atMost) break;
        if (!result.nextPageToken) break;
        pageToken = result.nextPageToken;
      }
      return count;
    };
  }

  private async executeByLead(runs: Run[]): Promise<RunResult[]> {
    const results: RunResult[] = new Array(runs.length);
    const byLead = new Map<string, number[]>();
    runs.forEach((run, i) => {
      const key = `${run.tenantId}/${run.leadId}`;
      byLead.set(key, [...(byLead.get(key) ?? []), i]);
    });
    const queue = [...byLead.values()];
    const worker = async (): Promise<void> => {
      for (let group = queue.shift(); group !== undefined; group = queue.shift()) {
        for (const i of group) results[i] = await this.execute(runs[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, queue.length) }, worker));
    return results;
  }

  /** Executes a run from its next step; concurrent calls for one run share the execution. */
  execute(run: Run): Promise<RunResult> {
    let pending = this.executing.get(run.id);
    if (!pending) {
      pending = this.executeSteps(run).finally(() => this.executing.delete(run.id));
      this.executing.set(run.id, pending);
    }
    return pending;
  }

  private async executeSteps(run: Run): Promise<RunResult> {
    const campaign = this.byId.get(`${run.tenantId}/${run.campaignId}`);
    if (!campaign) {
      await this.state.progress(run, "failed", run.nextStep, null, {
        step: null,
        stepType: null,
        status: "failed",
        detail: { reason: "campaign deleted" },
      });
      return "failed";
    }
    let lead = this.state.lead(run.tenantId, run.leadId);
    for (let i = run.nextStep; i < campaign.steps.length; i++) {
      const stepInput = campaign.steps[i]!;
      let parsed: ReturnType<StepRegistry["parse"]>;
      try {
        parsed = this.steps.parse(stepInput);
      } catch (error) {
        await this.state.progress(run, "failed", i, null, {
          step: i,
          stepType: stepInput.type,
          status: "failed",
          detail: { reason: String(error) },
        });
        return "failed";
      }
      if ("wait" in parsed) {
        const wakeAt = Date.now() + parsed.wait * 60_000;
        await this.state.progress(run, "waiting", i + 1, wakeAt, {
          step: i,
          stepType: "wait",
          status: "waiting",
          detail: { until: new Date(wakeAt).toISOString() },
        });
        return "waiting";
      }
      const effectKey = `${run.id}:${i}`;
      const ctx: StepContext = {
        tenantId: run.tenantId,
        campaign: { id: campaign.id, name: campaign.name },
        lead,
        activity: run.activity,
        runId: run.id,
        stepIndex: i,
        effectKey,
        leads: this.state,
        logger: this.logger,
        commit: async () => undefined,
      };
      let outcome: StepOutcome;
      try {
        if (parsed.type.external) {
          const type = parsed.type;
          const options = parsed.options;
          const result = await this.effects.once(
            effectKey,
            async (commit) => ((await type.execute(options, { ...ctx, commit })) ?? {}) as JsonValue,
            { inDoubt: type.inDoubt ?? "repeat", commitPoint: type.commitPoint === true },
          );
          if (!result.performed && result.reason === "in_doubt")
            this.logger.warn({ runId: run.id, step: i, effectKey }, "campaign step in doubt after a crash; skipped");
          outcome = result.performed
            ? (result.value as StepOutcome)
            : { status: "skipped", detail: { reason: result.reason === "done" ? "already performed" : result.reason } };
        } else {
          outcome = (await parsed.type.execute(parsed.options, ctx)) ?? {};
          lead = this.state.lead(run.tenantId, run.leadId);
        }
      } catch (error) {
        this.logger.warn({ runId: run.id, step: i, err: String(error) }, "campaign step failed");
        await this.state.log(run, i, stepInput.type, "error", {
          message: String(error instanceof Error ? error.message : error).slice(0, 500),
        });
        return "error";
      }
      this.options.onStep?.(run, i, stepInput.type, Date.now() - Date.parse(run.activity.receivedAt));
      await this.state.progress(run, "running", i + 1, null, {
        step: i,
        stepType: stepInput.type,
        status: outcome.status ?? "done",
        detail: outcome.detail ?? null,
      });
    }
    await this.state.progress(run, "done", campaign.steps.length, null, {
      step: null,
      stepType: null,
      status: "completed",
      detail: null,
    });
    return "done";
  }
}
