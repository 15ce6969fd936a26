import { resolve } from "node:path";
import hubDefinition from "../../moleculer.config";
import { loadHubConfig } from "../config/load";
import { ConfigError, HubError } from "../errors";
import { TenantDirectory } from "../tenancy/directory";
import { SCOPES, type Scope } from "../tenancy/keys";
import { scaffoldConsumerPlugin } from "../../sdk/scaffold";

const USAGE = `usage: npm run hub -- <command>

  tenant create <name> [--rate N] [--burst N]   create a tenant; prints {tenantId, apiKey, writeKey} once
  tenant list                                    list tenants
  tenant delete <tenantId>                       delete a tenant and revoke its keys
  key create <tenantId> [--name N] [--scopes ingest,read,admin] [--write]
  key list <tenantId>
  key revoke <tenantId> <keyId>
  audit [<tenantId>]                             administrative actions, newest first
  plugin new <name>                              scaffold a consumer plugin in plugins/<name>/ (SDK)

The commands work on the data directory of the configured profile (HUB_DATA_DIR).`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

function positional(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i]!.startsWith("--")) {
      if (args[i] !== "--write") i++;
    } else out.push(args[i]!);
  }
  return out;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function run(argv: string[]): number {
  const [group, command, ...rest] = argv;
  if (!group || group === "help" || group === "--help") {
    process.stdout.write(`${USAGE}\n`);
    return group ? 0 : 64;
  }
  if (group === "plugin" && command === "new") {
    print({ created: scaffoldConsumerPlugin(rest[0] ?? "") });
    return 0;
  }
  const config = loadHubConfig(hubDefinition.config);
  const directory = new TenantDirectory(resolve(config.dataDir), config.quota);
  const args = positional(rest);
  try {
    switch (`${group} ${command ?? ""}`.trim()) {
      case "tenant create": {
        const rate = flag(rest, "rate");
        const burst = flag(rest, "burst");
        const created = directory.createTenant(args[0] ?? "", "cli", {
          ...(rate ? { rate: Number(rate) } : {}),
          ...(burst ? { burst: Number(burst) } : {}),
        });
        print({ tenantId: created.tenant.id, apiKey: created.apiKey, writeKey: created.writeKey });
        return 0;
      }
      case "tenant list":
        print(directory.listTenants());
        return 0;
      case "tenant delete":
        directory.deleteTenant(args[0] ?? "", "cli");
        print({ deleted: args[0] });
        return 0;
      case "key create": {
        const write = rest.includes("--write");
        const scopes = (flag(rest, "scopes")?.split(",") ?? (write ? ["ingest"] : [...SCOPES])) as Scope[];
        const created = directory.createKey(
          args[0] ?? "",
          "cli",
          write ? "write" : "api",
          flag(rest, "name") ?? "cli",
          scopes,
        );
        print({ ...created.info, key: created.key });
        return 0;
      }
      case "key list":
        print(directory.listKeys(args[0] ?? ""));
        return 0;
      case "key revoke":
        directory.revokeKey(args[0] ?? "", args[1] ?? "", "cli");
        print({ revoked: args[1] });
        return 0;
      case "audit":
      case "audit list":
        print(directory.auditLog(args[0]));
        return 0;
      default:
        process.stderr.write(`unknown command '${group} ${command ?? ""}'\n${USAGE}\n`);
        return 64;
    }
  } finally {
    directory.close();
  }
}

try {
  process.exitCode = run(process.argv.slice(2));
} catch (error) {
  if (error instanceof ConfigError) process.stderr.write(`${error.toString()}\n`);
  else if (error instanceof HubError) process.stderr.write(`${JSON.stringify(error.toJSON())}\n`);
  else throw error;
  process.exitCode = 1;
}
