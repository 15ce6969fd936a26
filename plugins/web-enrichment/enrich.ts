import { isIP } from "node:net";
import { UAParser } from "ua-parser-js";
import type { Activity, JsonValue } from "../../core/activity/model";
import { deepFreeze } from "../../core/deep-freeze";
import { RecentCache } from "../../core/recent-cache";

/** What the enricher adds, under `activity.attributes.enrichment`. Absent parts had no input. */
export interface WebEnrichment {
  [key: string]: JsonValue | undefined;
  userAgent?: {
    browser: string | null;
    browserVersion: string | null;
    os: string | null;
    osVersion: string | null;
    deviceType: string;
    deviceVendor: string | null;
    deviceModel: string | null;
  };
  geo?: { country: string; region: string | null; city: string | null; timezone: string | null };
  page?: { host: string; path: string; query: { [name: string]: string } };
  utm?: { source?: string; medium?: string; campaign?: string; term?: string; content?: string };
  referrer?: { host: string; medium: ReferrerMedium; source: string | null; searchTerm: string | null };
  bot: boolean;
  ipAnonymized: boolean;
}

export type ReferrerMedium = "search" | "social" | "email" | "internal" | "external";

/** Looks an IP up; `undefined` when unknown or private. */
export type GeoLookup = (
  ip: string,
) => { country: string; region: string; city: string; timezone: string } | null | undefined;

export interface EnrichOptions {
  geo?: GeoLookup;
  parseUserAgent: boolean;
  anonymizeIp: boolean;
  botPattern: RegExp;
}

export const DEFAULT_BOT_PATTERN =
  /bot\b|bot\/|crawl|spider|slurp|bingpreview|facebookexternalhit|headless|phantomjs|lighthouse|pingdom|uptime|^curl\/|^wget\/|python-requests|go-http-client|^java\/|okhttp|axios\/|node-fetch|scrapy|httpclient|preview/i;

const SEARCH = /(^|\.)(google|bing|duckduckgo|yahoo|baidu|yandex|ecosia|qwant|startpage|search\.brave)\./;
const SOCIAL =
  /(^|\.)(facebook\.com|fb\.me|t\.co|twitter\.com|x\.com|linkedin\.com|lnkd\.in|instagram\.com|reddit\.com|pinterest\.com|youtube\.com|tiktok\.com|xing\.com)$/;
const WEBMAIL = /^(mail\.google\.com|outlook\.live\.com|outlook\.office\.com|mail\.yahoo\.com|webmail\.)/;
const SEARCH_PARAMS = ["q", "query", "p", "text", "wd"];
const UTM_KEYS = ["source", "medium", "campaign", "term", "content"] as const;
const MAX_QUERY_PARAMS = 50;

/** Entries per look-up cache (user agents, IPs, page URLs, referrers) of one enricher. */
const CACHE_SIZE = 10_000;

function parseUserAgent(ua: string): NonNullable<WebEnrichment["userAgent"]> {
  const r = new UAParser(ua).getResult();
  return {
    browser: r.browser.name ?? null,
    browserVersion: r.browser.version ?? null,
    os: r.os.name ?? null,
    osVersion: r.os.version ?? null,
    // ua-parser leaves desktop browsers without a device type.
    deviceType: r.device.type ?? (r.os.name !== undefined ? "desktop" : "unknown"),
    deviceVendor: r.device.vendor ?? null,
    deviceModel: r.device.model ?? null,
  };
}

function parseUrl(value: JsonValue | undefined): URL | undefined {
  if (typeof value !== "string" || value.length > 8192) return undefined;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url : undefined;
  } catch {
    return undefined;
  }
}

const bareHost = (host: string): string => host.toLowerCase().replace(/^www\./, "");

/** `pageHost`: the bare host of the page the referrer led to, when known. */
function referrerOf(ref: URL, pageHost: string | undefined): NonNullable<WebEnrichment["referrer"]> {
  const host = bareHost(ref.hostname);
  let medium: ReferrerMedium = "external";
  if (pageHost === host) medium = "internal";
  else if (WEBMAIL.test(host)) medium = "email";
  else if (SEARCH.test(host)) medium = "search";
  else if (SOCIAL.test(host)) medium = "social";
  let searchTerm: string | null = null;
  if (medium === "search") {
    for (const name of SEARCH_PARAMS) {
      const term = ref.searchParams.get(name);
      if (term) {
        searchTerm = term.slice(0, 256);
        break;
      }
    }
  }
  const source = medium === "search" || medium === "social" ? (host.split(".").at(-2) ?? host) : null;
  return { host, medium, source, searchTerm };
}

/** Zeroes the last octet of an IPv4 address or the last 80 bits of an IPv6 address. */
export function anonymizeIp(ip: string): string | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const v4 = mapped ? mapped[1]! : ip;
  if (isIP(v4) === 4) return v4.replace(/\.\d+$/, ".0");
  if (isIP(ip) !== 6) return undefined;
  const [head = "", tail] = ip.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return `${groups
    .slice(0, 3)
    .map((g) => g.toLowerCase())
    .join(":")}::`;
}

/** The page part of the enrichment: host, path, query, UTM. */
function pageOf(page: URL): Pick<WebEnrichment, "page" | "utm"> {
  const query: { [name: string]: string } = {};
  let n = 0;
  for (const [name, value] of page.searchParams) {
    if (++n > MAX_QUERY_PARAMS) break;
    query[name] = value.slice(0, 1024);
  }
  const out: Pick<WebEnrichment, "page" | "utm"> = {
    page: { host: page.hostname.toLowerCase(), path: page.pathname, query },
  };
  const utm: NonNullable<WebEnrichment["utm"]> = {};
  for (const key of UTM_KEYS) {
    const value = page.searchParams.get(`utm_${key}`);
    if (value) utm[key] = value.slice(0, 256);
  }
  if (Object.keys(utm).length > 0) out.utm = utm;
  return out;
}

/**
 * An enricher for web activities: user agent, geo, page URL, UTM, referrer, bot flag, and IP
 * anonymisation when asked. Geo is looked up on the full address before it is anonymised, and
 * only the anonymised address is kept.
 *
 * Every look-up is cached per input string (user agent, IP, URL, referrer), least recently used
 * out: web traffic repeats the same few of each, and parsing them is most of the cost. The parts
 * of `attributes.enrichment` are shared between activities and frozen.
 */
export function webEnricher(options: EnrichOptions): (activity: Activity) => void {
  type Agent = { userAgent?: WebEnrichment["userAgent"]; bot: boolean };
  type Address = { geo: WebEnrichment["geo"] | null; masked: string | null };
  const agents = new RecentCache<string, Agent>(CACHE_SIZE);
  const addresses = new RecentCache<string, Address>(CACHE_SIZE);
  const pages = new RecentCache<string, { host: string; part: Pick<WebEnrichment, "page" | "utm"> } | null>(CACHE_SIZE);
  const referrers = new RecentCache<string, WebEnrichment["referrer"] | null>(CACHE_SIZE);

  const agentOf = (ua: string): Agent =>
    deepFreeze({
      ...(options.parseUserAgent ? { userAgent: parseUserAgent(ua) } : {}),
      bot: options.botPattern.test(ua),
    });
  const addressOf = (ip: string): Address => {
    const geo = options.geo?.(ip);
    return deepFreeze({
      geo: geo
        ? { country: geo.country, region: geo.region || null, city: geo.city || null, timezone: geo.timezone || null }
        : null,
      masked: anonymizeIp(ip) ?? null,
    });
  };
  const pageEntryOf = (value: string) => {
    const url = parseUrl(value);
    return url ? deepFreeze({ host: bareHost(url.hostname), part: pageOf(url) }) : null;
  };

  return (activity) => {
    const attrs = activity.attributes;
    const ua = typeof attrs.userAgent === "string" ? attrs.userAgent : undefined;
    const ip = typeof attrs.ip === "string" ? attrs.ip.trim() : undefined;
    const pageUrl = attrs.url ?? attrs.pageUrl;
    const page = typeof pageUrl === "string" ? pages.getOrCompute(pageUrl, pageEntryOf) : null;
    const refUrl = typeof attrs.referrer === "string" ? attrs.referrer : undefined;
    if (ua === undefined && ip === undefined && page === null && refUrl === undefined) return;
    const referrer =
      refUrl === undefined
        ? null
        : referrers.getOrCompute(`${page?.host ?? ""}\u0000${refUrl}`, () => {
            const ref = parseUrl(refUrl);
            return ref ? deepFreeze(referrerOf(ref, page?.host)) : null;
          });
    if (ua === undefined && ip === undefined && page === null && referrer === null) return;

    const agent = ua === undefined ? undefined : agents.getOrCompute(ua, agentOf);
    const enrichment: WebEnrichment = { bot: agent?.bot ?? false, ipAnonymized: false };
    if (agent?.userAgent) enrichment.userAgent = agent.userAgent;
    const address = ip === undefined ? undefined : addresses.getOrCompute(ip, addressOf);
    if (address?.geo) enrichment.geo = address.geo;
    if (page) {
      enrichment.page = page.part.page;
      if (page.part.utm) enrichment.utm = page.part.utm;
    }
    if (referrer) enrichment.referrer = referrer;
    if (address && options.anonymizeIp) {
      if (address.masked !== null) attrs.ip = address.masked;
      else delete attrs.ip;
      enrichment.ipAnonymized = true;
    }
    attrs.enrichment = enrichment as JsonValue;
  };
}

/** Enriches one activity in place, without caches (see `webEnricher` for the cached form). */
export function enrichWebActivity(activity: Activity, options: EnrichOptions): void {
  webEnricher(options)(activity);
}
