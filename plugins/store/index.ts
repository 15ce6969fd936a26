import { option, Registry } from "../../core/registry";
import type { ActivityStore } from "./contract";
import { EmbeddedStore } from "./embedded";
import { HBaseStore, hbaseStoreOptions } from "./hbase";

export type { ActivityStore, ActivityQuery, ActivityPage, ClientIdClaim } from "./contract";

export interface StoreContext {
  dataDir: string;
}

/** The store registry: `embedded` here; other plugins register theirs (e.g. `hbase`). */
export const stores = new Registry<ActivityStore, StoreContext>("store").register(
  "embedded",
  (options, context) =>
    new EmbeddedStore({
      dataDir: option(options, "dataDir", "string") ?? context.dataDir,
      maxMemstoreActivities: option(options, "maxMemstoreActivities", "number"),
      backpressureTimeoutMs: option(options, "backpressureTimeoutMs", "number"),
      indexLingerMs: option(options, "indexLingerMs", "number"),
    }),
);

/** HBase through its REST gateway (stack and production profiles); see hbase.ts and README.md. */
stores.register("hbase", (options) => new HBaseStore(hbaseStoreOptions(options)));
