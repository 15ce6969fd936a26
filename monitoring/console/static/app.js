// Activity Hub monitoring console: a small vanilla JS app over /api/v1/monitoring (no build step).
"use strict";
(function () {
  const API = "/api/v1/monitoring";
  const TOKEN_KEY = "hub-admin-token";
  const SEVERITIES = ["critical", "warning", "info"];
  const state = { refreshTimer: null, busy: false };

  // ---------- DOM helpers (text only: nothing from the API is parsed as HTML) ----------
  const SVG_NS = "http://www.w3.org/2000/svg";
  function h(tag, attrs, ...children) {
    const el = tag.startsWith("svg:") ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "value" && "value" in el) el.value = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }
  const $ = (sel) => document.querySelector(sel);
  function toast(text) {
    const el = h("div", { class: "toast", role: "status" }, text);
    document.body.append(el);
    setTimeout(() => el.remove(), 2500);
  }
  function ago(iso) {
    if (!iso) return "";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return (s / 3600).toFixed(1) + " h ago";
    return (s / 86400).toFixed(1) + " d ago";
  }
  function fmt(v, unit) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    const a = Math.abs(v);
    let text;
    if (unit === "bytes") {
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      let x = v;
      while (Math.abs(x) >= 1024 && i < units.length - 1) {
        x /= 1024;
        i++;
      }
      return x.toFixed(1) + " " + units[i];
    }
    if (a >= 1e6) text = (v / 1e6).toFixed(1) + "M";
    else if (a >= 1e3) text = (v / 1e3).toFixed(1) + "k";
    else if (a >= 10 || v === Math.round(v)) text = String(Math.round(v * 10) / 10);
    else text = v.toFixed(2);
    return unit ? text + " " + unit : text;
  }

  // ---------- API ----------
  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }
  async function api(method, path, body) {
    const res = await fetch(API + path, {
      method,
      headers: Object.assign(
        { authorization: "Bearer " + token() },
        body !== undefined ? { "content-type": "application/json" } : {},
      ),
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    if (res.status === 401) {
      signOut("Your session is not valid: sign in again.");
      throw new Error("unauthenticated");
    }
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) {
      const err = data && data.error ? data.error : { message: "HTTP " + res.status };
      const details = (err.details || []).map((d) => d.field + ": " + d.message).join("; ");
      throw new Error(err.message + (details ? " (" + details + ")" : ""));
    }
    return data;
  }

  // ---------- charts: inline SVG ----------
  function chart(seriesList, opts) {
    opts = opts || {};
    const W = 600,
      H = 180,
      L = 66,
      R = 10,
      T = 8,
      B = 20;
    const all = [];
    for (const s of seriesList) for (const p of s.points) all.push(p);
    for (const extra of opts.extraLines || []) for (const p of extra.points) all.push(p);
    const svg = h("svg:svg", {
      class: "chart",
      viewBox: "0 0 " + W + " " + H,
      role: "img",
      "aria-label": opts.title || "chart",
    });
    if (all.length === 0) {
      svg.append(h("svg:text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no data yet"));
      return svg;
    }
    let x0 = Math.min(...all.map((p) => p[0])),
      x1 = Math.max(...all.map((p) => p[0]));
    let y0 = Math.min(0, ...all.map((p) => p[1])),
      y1 = Math.max(...all.map((p) => p[1]));
    if (opts.limit !== undefined && opts.limit !== null) y1 = Math.max(y1, opts.limit);
    if (x1 === x0) {
      x0 -= 60000;
      x1 += 60000;
    }
    if (y1 === y0) y1 = y0 + 1;
    y1 *= 1.08;
    const X = (t) => L + ((t - x0) / (x1 - x0)) * (W - L - R);
    const Y = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
    svg.append(
      h("svg:line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
      h("svg:line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
    );
    for (const v of [y0, (y0 + y1) / 2, y1 / 1.08])
      svg.append(
        h("svg:text", { x: L - 4, y: Y(v) + 3, "text-anchor": "end" }, fmt(v, opts.unit === "bytes" ? "bytes" : "")),
      );
    for (const t of [x0, (x0 + x1) / 2, x1])
      svg.append(
        h(
          "svg:text",
          { x: X(t), y: H - 6, "text-anchor": "middle" },
          new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
        ),
      );
    seriesList.forEach((s, i) => {
      if (s.points.length === 0) return;
      const d = s.points.map((p, j) => (j ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1)).join(" ");
      svg.append(h("svg:path", { class: "line c" + (i % 6), d }));
      if (s.points.length === 1)
        svg.append(h("svg:circle", { class: "line c" + (i % 6), cx: X(s.points[0][0]), cy: Y(s.points[0][1]), r: 2 }));
    });
    for (const extra of opts.extraLines || []) {
      const d = extra.points
        .map((p, j) => (j ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(Math.max(y0, Math.min(y1, p[1]))).toFixed(1))
        .join(" ");
      svg.append(h("svg:path", { class: extra.className, d }));
    }
    if (opts.limit !== undefined && opts.limit !== null)
      svg.append(h("svg:line", { class: "limit", x1: L, x2: W - R, y1: Y(opts.limit), y2: Y(opts.limit) }));
    return svg;
  }
  function legend(seriesList) {
    return h(
      "div",
      { class: "legend" },
      seriesList.map((s, i) =>
        h(
          "span",
          {},
          h("i", { class: "c" + (i % 6) }),
          Object.entries(s.tags)
            .map(([k, v]) => k + "=" + v)
            .join(" ") || "all",
        ),
      ),
    );
  }
  function chartCard(title, seriesList, unit, testid) {
    return h(
      "div",
      { class: "card", "data-testid": testid },
      h("h2", {}, title),
      chart(seriesList, { unit, title }),
      legend(seriesList),
    );
  }

  // ---------- pages ----------
  const pages = {
    async alerts(root) {
      const [{ alerts, evaluatedAt }, { silences }] = await Promise.all([
        api("GET", "/alerts"),
        api("GET", "/silences"),
      ]);
      const counts = { critical: 0, warning: 0, info: 0 };
      for (const a of alerts) if (a.state === "firing") counts[a.severity]++;
      root.replaceChildren(
        h(
          "div",
          { class: "row" },
          h("h1", {}, "Alert board"),
          h("span", { class: "muted" }, "evaluated " + ago(evaluatedAt)),
        ),
        h(
          "div",
          { class: "summary" },
          SEVERITIES.map((s) =>
            h(
              "div",
              { class: "card" },
              h("div", { class: "num", "data-testid": "count-" + s }, counts[s]),
              h("span", { class: "badge sev-" + s }, s),
              " firing",
            ),
          ),
        ),
        h(
          "div",
          { class: "card" },
          alerts.length === 0
            ? h("p", { class: "ok", "data-testid": "no-alerts" }, "No active alerts.")
            : h(
                "table",
                { "data-testid": "alert-board" },
                h(
                  "thead",
                  {},
                  h(
                    "tr",
                    {},
                    ["Severity", "State", "Alert", "Labels", "Value", "Since", "Acknowledgement", ""].map((c) =>
                      h("th", {}, c),
                    ),
                  ),
                ),
                h("tbody", {}, alerts.map(alertRow)),
              ),
        ),
        h("h2", {}, "Active silences"),
        h(
          "div",
          { class: "card" },
          silences.length === 0
            ? h("p", { class: "muted" }, "None.")
            : h(
                "table",
                { "data-testid": "silences" },
                h(
                  "thead",
                  {},
                  h(
                    "tr",
                    {},
                    ["Rule", "Matchers", "Until", "Comment", "By", ""].map((c) => h("th", {}, c)),
                  ),
                ),
                h(
                  "tbody",
                  {},
                  silences.map((s) =>
                    h(
                      "tr",
                      {},
                      h("td", {}, s.ruleId || "any"),
                      h(
                        "td",
                        { class: "labels" },
                        Object.entries(s.matchers).map(([k, v]) => h("code", {}, k + "=" + v)),
                      ),
                      h("td", {}, new Date(s.endsAt).toLocaleString()),
                      h("td", {}, s.comment),
                      h("td", {}, s.createdBy),
                      h(
                        "td",
                        {},
                        h(
                          "button",
                          {
                            class: "secondary",
                            type: "button",
                            onclick: async () => {
                              await api("DELETE", "/silences/" + s.id);
                              toast("Silence expired");
                              route();
                            },
                          },
                          "Expire",
                        ),
                      ),
                    ),
                  ),
                ),
              ),
        ),
      );
    },
    async sla(root) {
      const params = new URLSearchParams(location.hash.split("?")[1] || "");
      const tenant = params.get("tenant") || "";
      const range = params.get("rangeMs") || "3600000";
      const data = await api("GET", "/sla?rangeMs=" + range + (tenant ? "&tenant=" + encodeURIComponent(tenant) : ""));
      const go = (t, r) => {
        location.hash =
          "#/sla?" + new URLSearchParams(Object.assign({ rangeMs: r }, t ? { tenant: t } : {})).toString();
      };
      const c = data.charts;
      root.replaceChildren(
        h(
          "div",
          { class: "row" },
          h("h1", {}, "Business SLAs"),
          h(
            "label",
            {},
            "Tenant ",
            h(
              "select",
              { "data-testid": "tenant-select", onchange: (e) => go(e.target.value, range) },
              h("option", { value: "" }, "all tenants"),
              data.tenants.map((t) => {
                const o = h("option", { value: t }, t);
                if (t === tenant) o.selected = true;
                return o;
              }),
            ),
          ),
          h(
            "label",
            {},
            "Range ",
            h(
              "select",
              { onchange: (e) => go(tenant, e.target.value) },
              [
                ["900000", "15 min"],
                ["3600000", "1 h"],
                ["21600000", "6 h"],
                ["86400000", "24 h"],
                ["604800000", "7 d"],
              ].map(([v, l]) => {
                const o = h("option", { value: v }, l);
                if (v === range) o.selected = true;
                return o;
              }),
            ),
          ),
        ),
        h(
          "div",
          { class: "grid", "data-testid": "sla-charts" },
          chartCard("Intake → store latency p99 (ms)", c.intakeToStore, "ms", "chart-intake-store"),
          chartCard("Intake → trigger latency p99 (ms)", c.intakeToTrigger, "ms", "chart-intake-trigger"),
          chartCard("Freshness (s)", c.freshness, "s", "chart-freshness"),
          chartCard("Consumer lag per group (s)", c.lag, "s", "chart-lag"),
          chartCard("Accepted activities / s", c.accepted, "", "chart-accepted"),
          chartCard("Rejected / s", c.rejected, "", "chart-rejected"),
          chartCard("Throttled / s", c.throttled, "", "chart-throttled"),
        ),
      );
    },
    async capacity(root) {
      const { items } = await api("GET", "/capacity");
      root.replaceChildren(
        h("h1", {}, "Capacity planning"),
        h(
          "p",
          { class: "muted" },
          "Trends fitted by linear regression (amber) and Holt's double exponential smoothing (violet); the red line is the limit.",
        ),
        h(
          "div",
          { class: "grid", "data-testid": "capacity" },
          items.map((item) =>
            h(
              "div",
              { class: "card", "data-testid": "capacity-" + item.id },
              h("h2", {}, item.title),
              h(
                "p",
                {},
                "now ",
                h("strong", {}, fmt(item.current, item.unit)),
                item.limit !== null ? [" of ", fmt(item.limit, item.unit)] : "",
              ),
              chart([{ tags: {}, points: item.history }], {
                unit: item.unit,
                limit: item.limit,
                title: item.title,
                extraLines: item.forecasts.map((f) => ({ className: "proj-" + f.method, points: f.projection })),
              }),
              h(
                "table",
                {},
                h(
                  "tbody",
                  {},
                  item.forecasts.map((f) =>
                    h(
                      "tr",
                      {},
                      h("td", {}, f.method === "holt" ? "Holt" : "linear"),
                      h("td", {}, fmt(f.slopePerDay, item.unit) + " / day"),
                      h(
                        "td",
                        { "data-testid": "eta-" + item.id + "-" + f.method },
                        f.reachesLimitAt
                          ? "limit reached " + new Date(f.reachesLimitAt).toLocaleString()
                          : "limit not reached on this trend",
                      ),
                    ),
                  ),
                ),
              ),
            ),
          ),
        ),
      );
    },
    async rules(root) {
      const { rules } = await api("GET", "/rules");
      const editor = h(
        "textarea",
        { "data-testid": "new-rule", rows: 10 },
        JSON.stringify(
          {
            kind: "threshold",
            name: "My rule",
            query: { metric: "hub.queue.lag.seconds", groupBy: ["group"], aggregator: "max", windowMs: 60000 },
            op: ">",
            value: 30,
            forMs: 30000,
            severity: "warning",
            labels: {},
            notify: { webhooks: [], emails: [] },
          },
          null,
          2,
        ),
      );
      root.replaceChildren(
        h("h1", {}, "Alert rules"),
        h(
          "div",
          { class: "card" },
          h(
            "table",
            { "data-testid": "rules" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Rule", "Kind", "Condition", "Pending", "Severity", "Enabled", ""].map((c) => h("th", {}, c)),
              ),
            ),
            h("tbody", {}, rules.map(ruleRow)),
          ),
        ),
        h("h2", {}, "New rule (JSON)"),
        h(
          "div",
          { class: "card" },
          editor,
          h(
            "p",
            {},
            h(
              "button",
              {
                type: "button",
                onclick: async () => {
                  try {
                    const rule = await api("POST", "/rules", JSON.parse(editor.value));
                    toast("Rule " + rule.id + " created");
                    route();
                  } catch (e) {
                    toast(String(e.message || e));
                  }
                },
              },
              "Create rule",
            ),
          ),
        ),
      );
    },
    async history(root) {
      const params = new URLSearchParams(location.hash.split("?")[1] || "");
      const ruleId = params.get("ruleId") || "";
      const [{ events }, { alerts }] = await Promise.all([
        api("GET", "/history?limit=300" + (ruleId ? "&ruleId=" + encodeURIComponent(ruleId) : "")),
        api("GET", "/alerts/recent?limit=50"),
      ]);
      root.replaceChildren(
        h("h1", {}, "History"),
        h("h2", {}, "Recent alerts"),
        h(
          "div",
          { class: "card" },
          h(
            "table",
            { "data-testid": "recent-alerts" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Severity", "Alert", "State", "Started", "Fired", "Resolved", "Ack"].map((c) => h("th", {}, c)),
              ),
            ),
            h(
              "tbody",
              {},
              alerts.map((a) =>
                h(
                  "tr",
                  {},
                  h("td", {}, h("span", { class: "badge sev-" + a.severity }, a.severity)),
                  h("td", {}, a.ruleName, " ", h("span", { class: "muted" }, a.key)),
                  h("td", { class: "state-" + a.state }, a.state),
                  h("td", {}, new Date(a.startedAt).toLocaleString()),
                  h("td", {}, a.firingAt ? new Date(a.firingAt).toLocaleString() : "–"),
                  h("td", {}, a.resolvedAt ? new Date(a.resolvedAt).toLocaleString() : "–"),
                  h("td", {}, a.ack ? a.ack.by + ": " + a.ack.comment : "–"),
                ),
              ),
            ),
          ),
        ),
        h("h2", {}, "Events" + (ruleId ? " of " + ruleId : "")),
        h(
          "div",
          { class: "card" },
          h(
            "table",
            { "data-testid": "events" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["When", "Event", "Rule", "Detail"].map((c) => h("th", {}, c)),
              ),
            ),
            h(
              "tbody",
              {},
              events.map((e) =>
                h(
                  "tr",
                  {},
                  h("td", {}, new Date(e.at).toLocaleString()),
                  h("td", {}, e.event),
                  h(
                    "td",
                    {},
                    e.ruleId ? h("a", { href: "#/history?ruleId=" + encodeURIComponent(e.ruleId) }, e.ruleId) : "–",
                  ),
                  h("td", { class: "muted" }, JSON.stringify(e.detail).slice(0, 200)),
                ),
              ),
            ),
          ),
        ),
      );
    },
  };

  function alertRow(a) {
    const ackCell = h(
      "td",
      {},
      a.ack
        ? h("span", { "data-testid": "ack-info" }, "✓ " + a.ack.by + ": " + a.ack.comment)
        : h("span", { class: "muted" }, "not acknowledged"),
    );
    const actions = h("td", {});
    if (!a.ack) {
      actions.append(
        h(
          "button",
          {
            type: "button",
            "data-testid": "ack-button",
            onclick: () => {
              if (actions.querySelector("form")) return;
              state.busy = true;
              const comment = h("textarea", {
                name: "comment",
                "data-testid": "ack-comment",
                placeholder: "What are you doing about it?",
                required: true,
              });
              actions.append(
                h(
                  "form",
                  {
                    class: "ackform",
                    onsubmit: async (e) => {
                      e.preventDefault();
                      try {
                        await api("POST", "/alerts/" + a.id + "/ack", { comment: comment.value });
                        toast("Acknowledged");
                      } catch (err) {
                        toast(String(err.message || err));
                      }
                      state.busy = false;
                      route();
                    },
                  },
                  comment,
                  h("button", { type: "submit", "data-testid": "ack-submit" }, "Acknowledge"),
                  " ",
                  h(
                    "button",
                    {
                      type: "button",
                      class: "secondary",
                      onclick: () => {
                        state.busy = false;
                        route();
                      },
                    },
                    "Cancel",
                  ),
                ),
              );
              comment.focus();
            },
          },
          "Acknowledge",
        ),
      );
    }
    actions.append(
      " ",
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          "data-testid": "silence-alert",
          onclick: async () => {
            await api("POST", "/silences", {
              ruleId: a.ruleId,
              matchers: {},
              durationMs: 3600000,
              comment: "silenced from the alert board",
            });
            toast("Rule silenced for 1 h");
            route();
          },
        },
        "Silence rule 1 h",
      ),
    );
    return h(
      "tr",
      { "data-testid": "alert-row", "data-severity": a.severity, "data-rule": a.ruleId },
      h("td", {}, h("span", { class: "badge sev-" + a.severity }, a.severity)),
      h("td", { class: "state-" + a.state }, a.state, a.silencedBy ? h("div", { class: "muted" }, "silenced") : ""),
      h("td", {}, h("strong", {}, a.ruleName)),
      h(
        "td",
        { class: "labels" },
        Object.entries(a.labels)
          .filter(([k]) => !["alertname", "severity"].includes(k))
          .map(([k, v]) => h("code", {}, k + "=" + v)),
      ),
      h("td", {}, fmt(a.value)),
      h("td", { title: a.firingAt || a.startedAt }, ago(a.firingAt || a.startedAt)),
      ackCell,
      actions,
    );
  }

  function ruleRow(rule) {
    const editable = rule.kind === "threshold" || rule.kind === "rate";
    const value = h("input", {
      type: "number",
      step: "any",
      value: editable ? rule.value : "",
      disabled: !editable,
      "data-testid": "threshold-" + rule.id,
      size: 8,
    });
    const forMs = h("input", {
      type: "number",
      min: 0,
      step: 1000,
      value: rule.forMs,
      "data-testid": "for-" + rule.id,
      size: 8,
    });
    const severity = h(
      "select",
      { "data-testid": "severity-" + rule.id },
      SEVERITIES.map((s) => {
        const o = h("option", { value: s }, s);
        if (s === rule.severity) o.selected = true;
        return o;
      }),
    );
    const enabled = h("input", { type: "checkbox", "data-testid": "enabled-" + rule.id });
    enabled.checked = rule.enabled;
    const condition =
      rule.kind === "threshold" || rule.kind === "rate"
        ? h(
            "span",
            {},
            (rule.kind === "rate" ? "rate(" : "") +
              rule.query.aggregator +
              "(" +
              rule.query.metric +
              ")" +
              (rule.kind === "rate" ? ")/s " : " ") +
              rule.op +
              " ",
            value,
          )
        : rule.kind === "absence"
          ? h("span", {}, "no " + rule.query.metric + " for " + rule.absentForMs / 1000 + " s")
          : h("span", {}, "burn rate > " + rule.factor + " of " + (1 - rule.objective).toPrecision(2) + " budget");
    return h(
      "tr",
      { "data-testid": "rule-row", "data-rule": rule.id },
      h("td", {}, h("strong", {}, rule.name), h("div", { class: "muted" }, rule.id)),
      h("td", {}, rule.kind),
      h("td", {}, condition),
      h("td", {}, forMs, " ms"),
      h("td", {}, severity),
      h("td", {}, enabled),
      h(
        "td",
        {},
        h(
          "button",
          {
            type: "button",
            "data-testid": "save-" + rule.id,
            onclick: async () => {
              const { id, createdAt, updatedAt, ...spec } = rule;
              void id;
              void createdAt;
              void updatedAt;
              if (editable) spec.value = Number(value.value);
              spec.forMs = Number(forMs.value);
              spec.severity = severity.value;
              spec.enabled = enabled.checked;
              try {
                await api("PUT", "/rules/" + rule.id, spec);
                toast("Rule " + rule.id + " saved");
                route();
              } catch (e) {
                toast(String(e.message || e));
              }
            },
          },
          "Save",
        ),
        " ",
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            "data-testid": "silence-" + rule.id,
            onclick: async () => {
              await api("POST", "/silences", {
                ruleId: rule.id,
                durationMs: 3600000,
                comment: "silenced from the rule editor",
              });
              toast("Rule " + rule.id + " silenced for 1 h");
            },
          },
          "Silence 1 h",
        ),
        " ",
        h("a", { href: "#/history?ruleId=" + encodeURIComponent(rule.id) }, "history"),
      ),
    );
  }

  // ---------- routing, session ----------
  async function route() {
    clearTimeout(state.refreshTimer);
    if (!token()) return showLogin();
    $("#login").hidden = true;
    $("#nav").hidden = false;
    const name = location.hash.replace(/^#\//, "").split("?")[0] || "alerts";
    const page = pages[name] ? name : "alerts";
    for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
    const root = $("#page");
    root.dataset.page = page;
    try {
      await pages[page](root);
      root.dataset.loaded = String(Date.now());
    } catch (e) {
      if (String(e.message) !== "unauthenticated")
        root.replaceChildren(h("p", { class: "error" }, "Could not load: " + (e.message || e)));
    }
    if (page === "alerts" || page === "sla")
      state.refreshTimer = setTimeout(() => {
        if (!state.busy) route();
        else state.refreshTimer = setTimeout(route, 5000);
      }, 5000);
  }
  function showLogin(message) {
    $("#nav").hidden = true;
    $("#page").replaceChildren();
    $("#login").hidden = false;
    $("#login-error").textContent = message || "";
  }
  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(message);
  }
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = $("#token").value.trim();
    const res = await fetch(API + "/status", { headers: { authorization: "Bearer " + value } });
    if (!res.ok) {
      $("#login-error").textContent =
        res.status === 401 ? "That token is not the platform admin token." : "Sign-in failed: HTTP " + res.status;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    $("#token").value = "";
    route();
  });
  $("#logout").addEventListener("click", () => signOut("Signed out."));
  window.addEventListener("hashchange", route);
  setInterval(() => {
    $("#clock").textContent = new Date().toLocaleTimeString();
  }, 1000);
  route();
})();
