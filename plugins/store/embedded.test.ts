import { tempDir } from "../../test/support/tmp";
import { storeContractSuite } from "./contract-suite";
import { stores } from "./index";

const tmp = tempDir("hub-store-");
storeContractSuite(
  "embedded",
  async () => {
    const store = stores.resolve("embedded", { dataDir: tmp.dir });
    await store.start();
    return store;
  },
  async () => tmp.cleanup(),
);
