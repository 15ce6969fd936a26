import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { startTestHub, TEST_ADMIN_TOKEN, type TestHub } from "../../test/support/hub";
import { eventually } from "../../test/support/tmp";
import { restIngestionPlugin } from "../../plugins/ingestion/plugin";
import { leadProfilesPlugin } from "../../plugins/lead-profiles/plugin";
import { monitoringPlugin } from "../plugin";

const ARTIFACTS = resolve(__dirname, "../../test-artifacts/console");
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

describe("monitoring console in headless Chromium", () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;

  before(async () => {
    execFileSync("bash", [resolve(__dirname, "../../scripts/ensure-chromium.sh")], { stdio: "inherit" });
    mkdirSync(ARTIFACTS, { recursive: true });
    hub = await startTestHub({
      plugins: [restIngestionPlugin, leadProfilesPlugin, monitoringPlugin],
      config: { plugins: { monitoring: { publishIntervalMs: 1000, evaluationIntervalMs: 1000 } } },
    });
    const tenant = await hub.createTenant("console-tenant");
    for (let i = 0; i < 5; i++) {
      const activities = Array.from({ length: 20 }, (_, j) => ({
        type: "visit_web_page",
        leadId: `lead-${j}`,
        source: "web",
        attributes: { url: `https://example.com/${i}/${j}` },
      }));
      assert.equal((await hub.request("POST", "/api/v1/activities", tenant.apiKey, { activities })).status, 202);
      await new Promise((r) => setTimeout(r, 300));
    }
    // A rule that always fires, so the board has something to act on.
    const created = await hub.request("POST", "/api/v1/monitoring/rules", TEST_ADMIN_TOKEN, {
      id: "always-firing",
      kind: "threshold",
      name: "Metrics store answering (drill)",
      query: { metric: "hub.engine.up", tags: { engine: "metrics" }, aggregator: "min", windowMs: 10_000 },
      op: ">=",
      value: 1,
      severity: "critical",
      labels: { drill: "yes" },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await eventually(
      async () => {
        const board = await hub.request("GET", "/api/v1/monitoring/alerts", TEST_ADMIN_TOKEN);
        return board.body.alerts.some(
          (a: { ruleId: string; state: string }) => a.ruleId === "always-firing" && a.state === "firing",
        )
          ? true
          : undefined;
      },
      20_000,
      "the drill alert to fire",
    );
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS, headless: true });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const loaded = async (name: string) => {
    await page.waitForSelector(`#page[data-page="${name}"][data-loaded]`, { timeout: 10_000 });
  };

  it("refuses a wrong token and signs in with the admin token", async () => {
    await page.goto(`${hub.url}/console/`);
    await page.fill("#token", "not-the-token-000000000000000");
    await page.click("#login-form button[type=submit]");
    await page.waitForFunction("(document.querySelector('#login-error')?.textContent ?? '') !== ''");
    assert.match((await page.textContent("#login-error")) ?? "", /not the platform admin token/);
    await shot("01-login");
    await page.fill("#token", TEST_ADMIN_TOKEN);
    await page.click("#login-form button[type=submit]");
    await loaded("alerts");
  });

  it("shows the alert board sorted by severity and acknowledges an alert with a comment", async () => {
    await page.waitForSelector('[data-testid="alert-row"][data-rule="always-firing"]');
    const severities = await page.$$eval('[data-testid="alert-row"]', (rows) =>
      rows.map((r) => r.getAttribute("data-severity")),
    );
    const rank = (s: string | null) => ["critical", "warning", "info"].indexOf(s ?? "");
    assert.deepEqual(
      severities,
      [...severities].sort((a, b) => rank(a) - rank(b)),
    );
    await shot("02-alert-board");
    const row = page.locator('[data-testid="alert-row"][data-rule="always-firing"]');
    await row.locator('[data-testid="ack-button"]').click();
    await row.locator('[data-testid="ack-comment"]').fill("Drill: looking into it");
    await row.locator('[data-testid="ack-submit"]').click();
    await page.waitForSelector('[data-testid="alert-row"][data-rule="always-firing"] [data-testid="ack-info"]');
    assert.match(
      (await page.textContent('[data-testid="alert-row"][data-rule="always-firing"] [data-testid="ack-info"]')) ?? "",
      /Drill: looking into it/,
    );
    const board = await hub.request("GET", "/api/v1/monitoring/alerts", TEST_ADMIN_TOKEN);
    const alert = board.body.alerts.find((a: { ruleId: string }) => a.ruleId === "always-firing");
    assert.equal(alert.ack.comment, "Drill: looking into it");
    await shot("03-alert-acknowledged");
  });

  it("silences a rule for an hour and edits a threshold in the rule editor", async () => {
    await page.click('nav a[data-page="rules"]');
    await loaded("rules");
    await page.click('[data-testid="silence-consumer-lag"]');
    await eventually(
      async () => {
        const s = await hub.request("GET", "/api/v1/monitoring/silences", TEST_ADMIN_TOKEN);
        return s.body.silences.find((x: { ruleId?: string }) => x.ruleId === "consumer-lag");
      },
      20_000,
      "the silence",
    );
    const silences = (await hub.request("GET", "/api/v1/monitoring/silences", TEST_ADMIN_TOKEN)).body
      .silences as Array<{ ruleId?: string; startsAt: string; endsAt: string }>;
    const silence = silences.find((x) => x.ruleId === "consumer-lag")!;
    assert.ok(Math.abs(Date.parse(silence.endsAt) - Date.parse(silence.startsAt) - 3_600_000) < 1000);

    await page.fill('[data-testid="threshold-consumer-lag"]', "25");
    await page.click('[data-testid="save-consumer-lag"]');
    const rule = await eventually(
      async () => {
        const r = await hub.request("GET", "/api/v1/monitoring/rules/consumer-lag", TEST_ADMIN_TOKEN);
        return r.body.value === 25 ? r.body : undefined;
      },
      20_000,
      "the edited threshold",
    );
    assert.equal(rule.value, 25);
    await loaded("rules");
    await shot("04-rules");
  });

  it("loads the SLA dashboard with charts per tenant", async () => {
    await page.click('nav a[data-page="sla"]');
    await loaded("sla");
    await page.waitForSelector('[data-testid="chart-intake-store"] svg path', { state: "attached" });
    const tenants = await page.$$eval('[data-testid="tenant-select"] option', (o) => o.map((x) => x.textContent));
    assert.ok(tenants.length >= 2, `tenants: ${tenants.join(",")}`);
    await page.selectOption('[data-testid="tenant-select"]', { index: 1 });
    await page.waitForFunction("location.hash.includes('tenant=')");
    await loaded("sla");
    await page.waitForSelector('[data-testid="chart-intake-store"] svg');
    await shot("05-sla");
  });

  it("loads the capacity page with forecasts", async () => {
    await page.click('nav a[data-page="capacity"]');
    await loaded("capacity");
    await page.waitForSelector('[data-testid="capacity-disk"] svg');
    assert.ok((await page.$$('[data-testid^="capacity-"]')).length >= 4);
    await shot("06-capacity");
  });

  it("shows the history with the acknowledgement and the rule edit", async () => {
    await page.click('nav a[data-page="history"]');
    await loaded("history");
    const events = await page.$$eval('[data-testid="events"] tbody tr td:nth-child(2)', (tds) =>
      tds.map((t) => t.textContent),
    );
    for (const event of ["acknowledged", "rule_updated", "silence_created", "firing"])
      assert.ok(events.includes(event), `missing ${event} in ${events.join(",")}`);
    await shot("07-history");
  });
});
