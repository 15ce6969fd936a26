import { tempDir } from "../../test/support/tmp";
import { queueContractSuite } from "./contract-suite";
import { queues } from "./index";

const tmp = tempDir("hub-queue-");
queueContractSuite(
  "embedded",
  async () => {
    const queue = queues.resolve({ type: "embedded", options: { partitions: 4 } }, { dataDir: tmp.dir });
    await queue.start();
    return queue;
  },
  async () => tmp.cleanup(),
);
