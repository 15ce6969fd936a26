import nodemailer from "nodemailer";
import type { Alert } from "./store";
import type { Rule } from "./rules";

/** One notification: the alerts of one group that changed state in one evaluation. */
export interface AlertNotification {
  status: "firing" | "resolved";
  groupKey: string;
  rule: { id: string; name: string; severity: string; description: string };
  alerts: Alert[];
  /** Link to the console's alert board. */
  consoleUrl?: string;
}

export interface SmtpOptions {
  host: string;
  port: number;
  secure: boolean;
  from: string;
  user?: string;
  password?: string;
}

export interface Notifier {
  send(
    rule: Rule,
    notification: AlertNotification,
  ): Promise<Array<{ channel: string; target: string; ok: boolean; detail?: string }>>;
}

const WEBHOOK_ATTEMPTS = 3;

/** Webhooks (JSON POST, retried with backoff) and email through nodemailer (SMTP). */
export function createNotifier(smtp: SmtpOptions | undefined): Notifier {
  const transport = smtp
    ? nodemailer.createTransport({
        host: smtp.host,
        port: smtp.port,
        secure: smtp.secure,
        ...(smtp.user !== undefined ? { auth: { user: smtp.user, pass: smtp.password ?? "" } } : {}),
        tls: { rejectUnauthorized: smtp.secure },
        connectionTimeout: 5000,
        greetingTimeout: 5000,
        socketTimeout: 10_000,
      })
    : undefined;

  async function webhook(url: string, body: AlertNotification): Promise<{ ok: boolean; detail?: string }> {
    let detail = "";
    for (let attempt = 1; attempt <= WEBHOOK_ATTEMPTS; attempt++) {
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", "user-agent": "activity-hub-alerts" },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(5000),
        });
        await response.arrayBuffer();
        if (response.ok) return { ok: true };
        detail = `HTTP ${response.status}`;
        if (response.status < 500 && response.status !== 429) break;
      } catch (error) {
        detail = String(error);
      }
      if (attempt < WEBHOOK_ATTEMPTS) await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
    return { ok: false, detail };
  }

  return {
    async send(rule, notification) {
      const results: Array<{ channel: string; target: string; ok: boolean; detail?: string }> = [];
      await Promise.all(
        rule.notify.webhooks.map(async (url) => {
          const r = await webhook(url, notification);
          results.push({ channel: "webhook", target: url, ...r });
        }),
      );
      if (rule.notify.emails.length > 0) {
        const target = rule.notify.emails.join(",");
        if (!transport || !smtp)
          results.push({
            channel: "email",
            target,
            ok: false,
            detail: "no SMTP server configured (plugins.monitoring.smtp)",
          });
        else {
          try {
            await transport.sendMail({
              from: smtp.from,
              to: rule.notify.emails,
              subject: subjectOf(notification),
              text: textOf(notification),
            });
            results.push({ channel: "email", target, ok: true });
          } catch (error) {
            results.push({ channel: "email", target, ok: false, detail: String(error) });
          }
        }
      }
      return results;
    },
  };
}

function subjectOf(n: AlertNotification): string {
  return `[${n.status.toUpperCase()}:${n.alerts.length}] ${n.rule.severity} ${n.rule.name}`;
}

function textOf(n: AlertNotification): string {
  const lines = [`${n.rule.name} (${n.rule.severity}) is ${n.status}.`, n.rule.description, ""];
  for (const a of n.alerts) {
    lines.push(
      `- ${Object.entries(a.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")} value=${a.value ?? "no data"} since ${a.firingAt ?? a.startedAt}`,
    );
  }
  if (n.consoleUrl) lines.push("", `Console: ${n.consoleUrl}`);
  return lines.join("\n");
}
