/**
 * Activity Hub local stack CLI.
 *
 *   npx tsx stack/cli.ts up     [kafka|hbase|hbase-rest|solr|opentsdb ...]   start (idempotent), wait until ready
 *   npx tsx stack/cli.ts down   [names ...]                                  stop (SIGTERM, then SIGKILL)
 *   npx tsx stack/cli.ts status [names ...] [--json]                         what runs, ports, pid, memory
 *   npx tsx stack/cli.ts classpath <name>                                    the server's Java classpath
 *   npx tsx stack/cli.ts logs <name> [lines]                                 tail of the server's log
 *
 * No names means all. See stack/README.md.
 */
import * as fs from "node:fs";
import {
  STACK_DIR,
  StackError,
  logFile,
  resolveNames,
  stackClasspath,
  stackDown,
  stackStatus,
  stackUp,
  type ServerStatus,
} from "./index";

const USAGE = `usage: tsx stack/cli.ts <up|down|status|classpath|logs> [kafka|hbase|hbase-rest|solr|opentsdb|all ...] [--json]`;

function table(rows: ServerStatus[]): string {
  const head = ["SERVER", "STATE", "PID", "RSS", "PORTS", "URL"];
  const lines = rows.map((r) => [
    r.name,
    r.state,
    r.pid === null ? "-" : String(r.pid),
    r.rssMb === null ? "-" : `${r.rssMb}M`,
    Object.entries(r.ports)
      .map(([k, v]) => `${k}=${v}`)
      .join(" "),
    r.url,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  return [head, ...lines]
    .map((l) =>
      l
        .map((c, i) => c.padEnd(widths[i]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes("--json");
  const [command, ...names] = argv.filter((a) => !a.startsWith("--"));
  const log = (line: string) => console.error(`[stack] ${line}`);
  switch (command) {
    case "up": {
      const t0 = Date.now();
      const status = await stackUp(names, { log });
      log(`up in ${((Date.now() - t0) / 1000).toFixed(1)}s (stack dir ${STACK_DIR})`);
      console.log(json ? JSON.stringify(status, null, 2) : table(status));
      return 0;
    }
    case "down":
      await stackDown(names, { log });
      if (json) console.log(JSON.stringify(await stackStatus(names), null, 2));
      return 0;
    case "status": {
      const status = await stackStatus(names);
      console.log(json ? JSON.stringify(status, null, 2) : table(status));
      return 0;
    }
    case "classpath": {
      if (names.length !== 1) throw new StackError("classpath takes one server name");
      console.log(await stackClasspath(names[0]));
      return 0;
    }
    case "logs": {
      const [name, n] = names;
      const server = resolveNames([name ?? ""], false)[0];
      if (!fs.existsSync(logFile(server))) throw new StackError(`no log yet: ${logFile(server)}`);
      const lines = fs.readFileSync(logFile(server), "utf8").split("\n");
      console.log(lines.slice(-(Number(n) || 100)).join("\n"));
      return 0;
    }
    default:
      console.error(USAGE);
      return command === undefined || command === "help" ? 0 : 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof StackError ? `[stack] ${e.message}` : e);
    process.exit(1);
  },
);
