import { z } from "zod";
import { definePlugin } from "../../core/plugins/contract";
import { DEFAULT_BOT_PATTERN, webEnricher, type GeoLookup } from "./enrich";

const config = z
  .object({
    /** Look up country/region/city from the GeoIP database shipped in `geoip-lite`. */
    geo: z.boolean().default(true),
    userAgent: z.boolean().default(true),
    /** Anonymise IPs of every tenant (tenants can also opt in with `settings.anonymizeIp`). */
    anonymizeIp: z.boolean().default(false),
    /** Replaces the built-in bot pattern (a case-insensitive regular expression on the user agent). */
    botPattern: z.string().min(1).max(2000).optional(),
  })
  .strict();

/** Enriches web activities at intake, before they are stored and queued. */
export const webEnrichmentPlugin = definePlugin({
  manifest: {
    id: "web-enrichment",
    kind: "ingestion",
    version: "1.0.0",
    description: "User agent, GeoIP, page URL, UTM, referrer and bot flag on web activities; optional IP anonymisation",
    config,
    roles: ["ingestion"],
  },
  services: ({ config: options, hub }) => {
    const botPattern = options.botPattern !== undefined ? new RegExp(options.botPattern, "i") : DEFAULT_BOT_PATTERN;
    // One cached enricher per anonymisation setting; rebuilt once the geo database has loaded.
    const enrichers = (geo: GeoLookup | undefined) => {
      const base = { geo, parseUserAgent: options.userAgent, botPattern };
      return {
        plain: webEnricher({ ...base, anonymizeIp: options.anonymizeIp }),
        anonymizing: webEnricher({ ...base, anonymizeIp: true }),
      };
    };
    let current = enrichers(undefined);
    hub.extensions.enrichers.push((activity, principal) =>
      (principal.settings.anonymizeIp === true ? current.anonymizing : current.plain)(activity),
    );
    return [
      {
        name: "webEnrichment",
        async started() {
          // The database (~150 MB in memory) loads only on nodes that enrich.
          if (options.geo) {
            const geoip = await import("geoip-lite");
            const lookup = (geoip.default ?? geoip).lookup;
            current = enrichers((ip) => lookup(ip));
          }
        },
      },
    ];
  },
});
