import { randomUUID } from "node:crypto";
import type { LoggerInstance } from "moleculer";
import { ConflictError, NotFoundError, ValidationError, type FieldError } from "../../core/errors";
import type { MetricsSink } from "../sinks/contract";
import { evaluateRule, type Judgement } from "./evaluate";
import type { AlertNotification, Notifier } from "./notify";
import { defaultRules, ruleInputSchema, SEVERITIES, type Rule } from "./rules";
import type { Alert, AlertEvent, AlertStore, Silence } from "./store";

export interface AlertEngineOptions {
  /** How far before a window to carry the last value (the publisher's de-duplication horizon). */
  carryMs: number;
  logger: LoggerInstance;
  consoleUrl?: string;
}

function validationError(error: {
  issues: Array<{ path: Array<string | number>; code: string; message: string }>;
}): ValidationError {
  const details: FieldError[] = error.issues.map((i) => ({
    field: i.path.join(".") || "body",
    code: i.code,
    message: i.message,
  }));
  return new ValidationError("Invalid alert rule", details);
}

/** A silence matches an alert when its rule (if any) and every matcher agree with the alert's labels. */
export function silenceMatches(silence: Silence, alert: Pick<Alert, "ruleId" | "labels">, now: number): boolean {
  if (Date.parse(silence.startsAt) > now || Date.parse(silence.endsAt) <= now) return false;
  if (silence.ruleId !== undefined && silence.ruleId !== alert.ruleId) return false;
  return Object.entries(silence.matchers).every(([k, v]) => alert.labels[k] === v);
}

const severityRank = (s: string): number => SEVERITIES.indexOf(s as (typeof SEVERITIES)[number]);

/**
 * The alert engine: evaluates rules against the metrics sink, moves alerts through
 * pending → firing → resolved (a pending period per rule), applies silences, keeps
 * acknowledgements and a history, and notifies each group of changed alerts once per evaluation.
 */
export class AlertEngine {
  private evaluating: Promise<void> | undefined;
  private readonly lastRuleError = new Map<string, number>();
  private readonly inFlightNotifications = new Set<Promise<void>>();
  /** When each evaluation finished, for the console's "last evaluated" and the latency bench. */
  lastEvaluationAt = 0;

  constructor(
    private readonly store: AlertStore,
    private readonly sink: MetricsSink,
    private readonly notifier: Notifier,
    private readonly options: AlertEngineOptions,
  ) {}

  /** Creates the default rules that do not exist yet (ids fixed, so edits survive restarts). */
  seedDefaults(): void {
    const existing = new Set(this.store.listRules().map((r) => r.id));
    for (const { id, spec } of defaultRules()) {
      if (!existing.has(id)) this.store.putRule(id, ruleInputSchema.parse(spec));
    }
  }

  // --- rules ---

  rules(): Rule[] {
    return this.store.listRules();
  }

  rule(id: string): Rule {
    const rule = this.store.getRule(id);
    if (!rule) throw new NotFoundError(`No alert rule '${id}'`, "rule_not_found");
    return rule;
  }

  createRule(input: unknown, by: string, id?: string): Rule {
    const parsed = ruleInputSchema.safeParse(input);
    if (!parsed.success) throw validationError(parsed.error);
    const ruleId =
      id ??
      `${parsed.data.name
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-|-$/g, "")
        .slice(0, 40)}-${randomUUID().slice(0, 6)}`;
    if (this.store.getRule(ruleId)) throw new ConflictError(`Alert rule '${ruleId}' exists`, "rule_exists");
    const rule = this.store.putRule(ruleId, parsed.data);
    this.store.record("rule_created", { by, rule: parsed.data }, null, ruleId);
    return rule;
  }

  updateRule(id: string, input: unknown, by: string): Rule {
    const before = this.rule(id);
    const parsed = ruleInputSchema.safeParse(input);
    if (!parsed.success) throw validationError(parsed.error);
    const rule = this.store.putRule(id, parsed.data);
    this.store.record("rule_updated", { by, before: stripMeta(before), after: parsed.data }, null, id);
    return rule;
  }

  deleteRule(id: string, by: string): void {
    this.rule(id);
    this.store.deleteRule(id);
    this.store.record("rule_deleted", { by }, null, id);
  }

  // --- alerts ---

  /** Active alerts, most severe first, firing before pending, oldest first. */
  board(): Alert[] {
    const now = Date.now();
    const silences = this.store.listSilences();
    return this.store
      .activeAlerts()
      .map((a) => {
        const silence = silences.find((s) => silenceMatches(s, a, now));
        const { silencedBy: _previous, ...rest } = a;
        return silence ? { ...rest, silencedBy: silence.id } : rest;
      })
      .sort(
        (a, b) =>
          severityRank(a.severity) - severityRank(b.severity) ||
          (a.state === b.state ? 0 : a.state === "firing" ? -1 : 1) ||
          (a.firingAt ?? a.startedAt).localeCompare(b.firingAt ?? b.startedAt),
      );
  }

  alert(id: string): Alert {
    const alert = this.store.getAlert(id);
    if (!alert) throw new NotFoundError(`No alert '${id}'`, "alert_not_found");
    return alert;
  }

  acknowledge(id: string, by: string, comment: string): Alert {
    const alert = this.alert(id);
    if (alert.state === "resolved") throw new ConflictError("The alert is resolved already", "alert_resolved");
    const acked: Alert = { ...alert, ack: { by, comment, at: new Date().toISOString() } };
    this.store.saveAlert(acked);
    this.store.record("acknowledged", { by, comment }, id, alert.ruleId);
    return acked;
  }

  silences(): Silence[] {
    return this.store.listSilences();
  }

  silence(
    input: { ruleId?: string; matchers?: Record<string, string>; durationMs: number; comment: string },
    by: string,
  ): Silence {
    if (input.ruleId !== undefined) this.rule(input.ruleId);
    if (input.ruleId === undefined && Object.keys(input.matchers ?? {}).length === 0) {
      throw new ValidationError("A silence needs a rule or at least one matcher", [
        { field: "matchers", code: "required", message: "give ruleId or matchers" },
      ]);
    }
    const now = Date.now();
    const silence = this.store.addSilence({
      ...(input.ruleId !== undefined ? { ruleId: input.ruleId } : {}),
      matchers: input.matchers ?? {},
      startsAt: new Date(now).toISOString(),
      endsAt: new Date(now + input.durationMs).toISOString(),
      comment: input.comment,
      createdBy: by,
    });
    this.store.record("silence_created", { by, silence }, null, input.ruleId ?? null);
    return silence;
  }

  expireSilence(id: string, by: string): void {
    if (!this.store.expireSilence(id)) throw new NotFoundError(`No active silence '${id}'`, "silence_not_found");
    this.store.record("silence_expired", { by, silenceId: id }, null, null);
  }

  history(options: { limit: number; ruleId?: string; alertId?: string; before?: number }): AlertEvent[] {
    return this.store.history(options);
  }

  recentAlerts(limit: number): Alert[] {
    return this.store.recentAlerts(limit);
  }

  // --- evaluation ---

  /** One evaluation of every rule; concurrent calls share the running one. */
  evaluate(now = Date.now()): Promise<void> {
    this.evaluating ??= this.runEvaluation(now).finally(() => {
      this.evaluating = undefined;
      this.lastEvaluationAt = Date.now();
    });
    return this.evaluating;
  }

  /** Waits for notifications still being sent (shutdown, tests). */
  async drainNotifications(): Promise<void> {
    await Promise.all([...this.inFlightNotifications]);
  }

  private async runEvaluation(now: number): Promise<void> {
    const rules = this.store.listRules();
    const ruleIds = new Set(rules.filter((r) => r.enabled).map((r) => r.id));
    const active = this.store.activeAlerts();
    const silences = this.store.listSilences(new Date(now).toISOString());
    const notifications = new Map<string, { rule: Rule; notification: AlertNotification }>();
    const iso = new Date(now).toISOString();

    const notify = (rule: Rule, alert: Alert, status: "firing" | "resolved"): void => {
      if (alert.silencedBy !== undefined) return;
      const groupKey = [rule.id, status, ...rule.groupBy.map((k) => `${k}=${alert.labels[k] ?? ""}`)].join("|");
      const entry = notifications.get(groupKey) ?? {
        rule,
        notification: {
          status,
          groupKey,
          rule: { id: rule.id, name: rule.name, severity: rule.severity, description: rule.description },
          alerts: [],
          ...(this.options.consoleUrl !== undefined ? { consoleUrl: this.options.consoleUrl } : {}),
        },
      };
      entry.notification.alerts.push(alert);
      notifications.set(groupKey, entry);
    };

    const close = (alert: Alert, rule: Rule | undefined, reason: string): void => {
      const wasFiring = alert.state === "firing";
      const closed: Alert = { ...alert, state: "resolved", resolvedAt: iso, lastEvaluatedAt: iso };
      this.store.saveAlert(closed);
      this.store.record(
        wasFiring ? "resolved" : "cleared",
        { reason, value: alert.value },
        alert.id,
        alert.ruleId,
        iso,
      );
      if (wasFiring && rule && rule.notify.webhooks.length + rule.notify.emails.length > 0)
        notify(rule, closed, "resolved");
    };

    // Alerts of deleted or disabled rules end now.
    for (const alert of active) if (!ruleIds.has(alert.ruleId)) close(alert, undefined, "rule deleted or disabled");

    for (const rule of rules) {
      if (!rule.enabled) continue;
      let judgements: Judgement[];
      try {
        judgements = await evaluateRule(rule, { sink: this.sink, now, carryMs: this.options.carryMs });
      } catch (error) {
        const last = this.lastRuleError.get(rule.id) ?? 0;
        if (now - last > 300_000) {
          this.lastRuleError.set(rule.id, now);
          this.store.record("rule_error", { error: String(error) }, null, rule.id, iso);
          this.options.logger.warn(`alert rule '${rule.id}' could not be evaluated: ${String(error)}`);
        }
        continue;
      }
      const mine = new Map(active.filter((a) => a.ruleId === rule.id).map((a) => [a.key, a]));
      const seen = new Set<string>();
      for (const j of judgements) {
        seen.add(j.key);
        const existing = mine.get(j.key);
        const labels = { alertname: rule.name, rule: rule.id, severity: rule.severity, ...rule.labels, ...j.tags };
        if (!j.breached) {
          if (existing) close({ ...existing, value: j.value }, rule, "condition cleared");
          continue;
        }
        const silence = silences.find((s) => silenceMatches(s, { ruleId: rule.id, labels }, now));
        let alert: Alert;
        if (existing) {
          const { silencedBy: _silencedBy, ...rest } = existing;
          alert = {
            ...rest,
            ruleName: rule.name,
            severity: rule.severity,
            labels,
            value: j.value,
            lastEvaluatedAt: iso,
          };
        } else {
          alert = {
            id: randomUUID(),
            ruleId: rule.id,
            ruleName: rule.name,
            key: j.key,
            labels,
            severity: rule.severity,
            state: "pending",
            value: j.value,
            startedAt: iso,
            lastEvaluatedAt: iso,
          };
          this.store.record("pending", { value: j.value, labels }, alert.id, rule.id, iso);
        }
        if (silence) alert.silencedBy = silence.id;
        if (silence && existing?.silencedBy !== silence.id)
          this.store.record("silenced", { silenceId: silence.id }, alert.id, rule.id, iso);
        if (alert.state === "pending" && now - Date.parse(alert.startedAt) >= rule.forMs) {
          alert.state = "firing";
          alert.firingAt = iso;
          this.store.record("firing", { value: j.value, labels }, alert.id, rule.id, iso);
          notify(rule, alert, "firing");
        }
        this.store.saveAlert(alert);
      }
      // A series that stopped reporting: its alert ends (absence rules watch for silence).
      for (const [key, alert] of mine) {
        if (!seen.has(key)) close(alert, rule, "no data");
      }
    }

    for (const { rule, notification } of notifications.values()) this.dispatch(rule, notification);
    this.store.prune();
  }

  private dispatch(rule: Rule, notification: AlertNotification): void {
    if (rule.notify.webhooks.length + rule.notify.emails.length === 0) return;
    const sending = this.notifier
      .send(rule, notification)
      .then((results) => {
        for (const r of results) {
          this.store.record(
            r.ok ? "notified" : "notify_failed",
            {
              channel: r.channel,
              target: r.target,
              status: notification.status,
              alerts: notification.alerts.length,
              ...(r.detail ? { detail: r.detail } : {}),
            },
            null,
            rule.id,
          );
        }
      })
      .catch((error: unknown) => this.options.logger.warn(`alert notification failed: ${String(error)}`));
    this.inFlightNotifications.add(sending);
    void sending.finally(() => this.inFlightNotifications.delete(sending));
  }
}

function stripMeta(rule: Rule): Omit<Rule, "id" | "createdAt" | "updatedAt"> {
  const { id: _id, createdAt: _c, updatedAt: _u, ...spec } = rule;
  return spec;
}
