import { defineHub } from "./core/runtime";
import { restIngestionPlugin } from "./plugins/ingestion/plugin";
import { leadProfilesPlugin } from "./plugins/lead-profiles/plugin";
import { monitoringPlugin } from "./monitoring/plugin";
import { webEnrichmentPlugin } from "./plugins/web-enrichment/plugin";
import { campaignsPlugin } from "./plugins/campaigns/plugin";
import { crmConnectorsPlugin } from "./plugins/crm-connectors/plugin";

/**
 * The hub's assembly: which plugins this installation loads, and configuration overrides on top
 * of the profile defaults (`HUB_PROFILE`, then `HUB_*` variables, override these in turn).
 */
export default defineHub({
  plugins: [
    restIngestionPlugin,
    leadProfilesPlugin,
    webEnrichmentPlugin,
    campaignsPlugin,
    crmConnectorsPlugin,
    monitoringPlugin,
  ],
  config: {},
});
