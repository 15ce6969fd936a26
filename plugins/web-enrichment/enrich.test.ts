import assert from "node:assert/strict";
import geoip from "geoip-lite";
import { describe, it } from "node:test";
import type { Activity } from "../../core/activity/model";
import { startTestHub } from "../../test/support/hub";
import { restIngestionPlugin } from "../ingestion/plugin";
import { anonymizeIp, DEFAULT_BOT_PATTERN, enrichWebActivity, webEnricher, type WebEnrichment } from "./enrich";
import { webEnrichmentPlugin } from "./plugin";

const CHROME =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const IPHONE =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";

function visit(attributes: Activity["attributes"]): Activity {
  return {
    id: "01",
    tenantId: "t",
    leadId: "l",
    type: "visit_web_page",
    source: "web",
    occurredAt: "",
    receivedAt: "",
    attributes,
    schemaVersion: 1,
  };
}

const options = {
  geo: (ip: string) => geoip.lookup(ip),
  parseUserAgent: true,
  anonymizeIp: false,
  botPattern: DEFAULT_BOT_PATTERN,
};

describe("web enrichment", () => {
  it("parses user agent, geo (offline database), page, UTM and a search referrer", () => {
    const a = visit({
      url: "https://www.example.com/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=spring&plan=pro",
      referrer: "https://www.google.com/search?q=activity+hub",
      userAgent: CHROME,
      ip: "81.2.69.160",
    });
    enrichWebActivity(a, options);
    const e = a.attributes.enrichment as WebEnrichment;
    assert.equal(e.userAgent?.browser, "Chrome");
    assert.equal(e.userAgent?.os, "Windows");
    assert.equal(e.userAgent?.deviceType, "desktop");
    assert.equal(e.geo?.country, "GB");
    assert.deepEqual(e.page, {
      host: "www.example.com",
      path: "/pricing",
      query: { utm_source: "newsletter", utm_medium: "email", utm_campaign: "spring", plan: "pro" },
    });
    assert.deepEqual(e.utm, { source: "newsletter", medium: "email", campaign: "spring" });
    assert.deepEqual(e.referrer, {
      host: "google.com",
      medium: "search",
      source: "google",
      searchTerm: "activity hub",
    });
    assert.equal(e.bot, false);
    assert.equal(a.attributes.ip, "81.2.69.160");
  });

  it("flags bots, detects mobile devices, internal and social referrers", () => {
    const bot = visit({
      url: "https://example.com/",
      userAgent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    });
    enrichWebActivity(bot, options);
    assert.equal((bot.attributes.enrichment as WebEnrichment).bot, true);
    const phone = visit({ url: "https://example.com/a", referrer: "https://example.com/b", userAgent: IPHONE });
    enrichWebActivity(phone, options);
    const e = phone.attributes.enrichment as WebEnrichment;
    assert.equal(e.userAgent?.deviceType, "mobile");
    assert.equal(e.referrer?.medium, "internal");
    const social = visit({ url: "https://example.com/", referrer: "https://t.co/abc" });
    enrichWebActivity(social, options);
    assert.equal((social.attributes.enrichment as WebEnrichment).referrer?.medium, "social");
  });

  it("anonymises IPv4 and IPv6 after the geo look-up", () => {
    assert.equal(anonymizeIp("81.2.69.160"), "81.2.69.0");
    assert.equal(anonymizeIp("::ffff:10.1.2.3"), "10.1.2.0");
    assert.equal(anonymizeIp("2001:db8:85a3::8a2e:370:7334"), "2001:db8:85a3::");
    assert.equal(anonymizeIp("not an ip"), undefined);
    const a = visit({ url: "https://example.com/", ip: "81.2.69.160" });
    enrichWebActivity(a, { ...options, anonymizeIp: true });
    assert.equal(a.attributes.ip, "81.2.69.0");
    assert.equal((a.attributes.enrichment as WebEnrichment).geo?.country, "GB");
    assert.equal((a.attributes.enrichment as WebEnrichment).ipAnonymized, true);
  });

  it("leaves activities without web context alone and survives garbage", () => {
    const a = visit({ formId: "f1" });
    enrichWebActivity(a, options);
    assert.equal(a.attributes.enrichment, undefined);
    const b = visit({ url: "javascript:alert(1)", userAgent: "", ip: "999.1.1.1", referrer: "::::" });
    enrichWebActivity(b, options);
    assert.equal((b.attributes.enrichment as WebEnrichment).geo, undefined);
  });

  it("caches look-ups per input and shares frozen parts, without mixing up referrers of different pages", () => {
    const enrich = webEnricher(options);
    const a = visit({
      url: "https://shop.example.com/x?utm_source=ads",
      referrer: "https://shop.example.com/",
      userAgent: CHROME,
      ip: "81.2.69.160",
    });
    const b = visit({
      url: "https://shop.example.com/x?utm_source=ads",
      referrer: "https://shop.example.com/",
      userAgent: CHROME,
      ip: "81.2.69.160",
    });
    const c = visit({ url: "https://other.example.org/", referrer: "https://shop.example.com/" });
    enrich(a);
    enrich(b);
    enrich(c);
    const ea = a.attributes.enrichment as WebEnrichment;
    const eb = b.attributes.enrichment as WebEnrichment;
    assert.equal(ea.page, eb.page, "the page part is computed once");
    assert.equal(ea.userAgent, eb.userAgent);
    assert.ok(Object.isFrozen(ea.page) && Object.isFrozen(ea.page!.query) && Object.isFrozen(ea.geo));
    assert.throws(() => {
      (ea.page!.query as Record<string, string>).utm_source = "changed";
    }, TypeError);
    assert.equal(ea.referrer?.medium, "internal");
    assert.equal((c.attributes.enrichment as WebEnrichment).referrer?.medium, "external");
    assert.deepEqual(
      ea,
      (() => {
        const fresh = visit({
          url: "https://shop.example.com/x?utm_source=ads",
          referrer: "https://shop.example.com/",
          userAgent: CHROME,
          ip: "81.2.69.160",
        });
        enrichWebActivity(fresh, options);
        return fresh.attributes.enrichment;
      })(),
      "cached and uncached enrichment are equal",
    );
  });

  it("enriches at intake: the stored activity carries the enrichment", async () => {
    const t = await startTestHub({ plugins: [restIngestionPlugin, webEnrichmentPlugin] });
    try {
      const { apiKey } = await t.createTenant();
      const posted = await t.request("POST", "/api/v1/activities", apiKey, {
        type: "visit_web_page",
        leadId: "lead-7",
        attributes: { url: "https://example.com/pricing?utm_source=ads", userAgent: CHROME, ip: "81.2.69.160" },
      });
      assert.equal(posted.status, 202, JSON.stringify(posted.body));
      const got = await t.request("GET", `/api/v1/activities/${posted.body.id}`, apiKey);
      assert.equal(got.body.attributes.enrichment.geo.country, "GB");
      assert.equal(got.body.attributes.enrichment.utm.source, "ads");
    } finally {
      await t.stop();
    }
  });
});
