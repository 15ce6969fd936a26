/**
 * Activity Hub local stack: real Kafka, HBase (+ REST), Solr and OpenTSDB servers, fetched from
 * Maven Central with Maven (see stack/pom.xml) and run as background `java -cp` processes on
 * 127.0.0.1. Generated files (classpaths, configs, data, logs, pids) live under STACK_DIR
 * (`.stack/` at the repository root, or $HUB_STACK_DIR).
 *
 * Node built-ins only, so the tool works before `npm install` has anything but tsx.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

// ---------------------------------------------------------------------------------------------
// Configuration (environment overridable)
// ---------------------------------------------------------------------------------------------

function envInt(name: string, def: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}

function envStr(name: string, def: string): string {
  const raw = process.env[name];
  return raw === undefined || raw.trim() === "" ? def : raw.trim();
}

/** Every server binds to this address only. */
export const STACK_HOST = "127.0.0.1";

export const STACK_SRC_DIR = __dirname;
export const REPO_ROOT = path.resolve(__dirname, "..");
/** Where generated files go: $HUB_STACK_DIR or <repo>/.stack */
export const STACK_DIR = path.resolve(envStr("HUB_STACK_DIR", path.join(REPO_ROOT, ".stack")));

export const STACK_PORTS = {
  kafka: envInt("HUB_KAFKA_PORT", 9092),
  kafkaController: envInt("HUB_KAFKA_CONTROLLER_PORT", 9093),
  zookeeper: envInt("HUB_ZOOKEEPER_PORT", 2181),
  hbaseMaster: envInt("HUB_HBASE_MASTER_PORT", 16000),
  hbaseMasterInfo: envInt("HUB_HBASE_MASTER_INFO_PORT", 16010),
  hbaseRegionServer: envInt("HUB_HBASE_REGIONSERVER_PORT", 16020),
  hbaseRest: envInt("HUB_HBASE_REST_PORT", 8080),
  solr: envInt("HUB_SOLR_PORT", 8983),
  opentsdb: envInt("HUB_OPENTSDB_PORT", 4242),
} as const;

/** Kafka bootstrap servers (kafkajs `brokers`). */
export const KAFKA_BROKERS: readonly string[] = [`${STACK_HOST}:${STACK_PORTS.kafka}`];
export const KAFKA_BOOTSTRAP_SERVERS = KAFKA_BROKERS.join(",");
/** ZooKeeper run inside the HBase master process. */
export const ZOOKEEPER_QUORUM = `${STACK_HOST}:${STACK_PORTS.zookeeper}`;
export const HBASE_REST_URL = `http://${STACK_HOST}:${STACK_PORTS.hbaseRest}`;
export const HBASE_MASTER_INFO_URL = `http://${STACK_HOST}:${STACK_PORTS.hbaseMasterInfo}`;
export const SOLR_URL = `http://${STACK_HOST}:${STACK_PORTS.solr}/solr`;
export const SOLR_CORES: readonly string[] = ["activities", "leads"];
export const OPENTSDB_URL = `http://${STACK_HOST}:${STACK_PORTS.opentsdb}`;

/** OpenTSDB's tables and column families (as in OpenTSDB's create_table.sh). */
export const OPENTSDB_TABLES: Readonly<Record<string, readonly string[]>> = {
  tsdb: ["t"],
  "tsdb-uid": ["id", "name"],
  "tsdb-tree": ["t"],
  "tsdb-meta": ["name"],
};

export const STACK_ENDPOINTS = {
  kafka: { brokers: KAFKA_BROKERS, bootstrapServers: KAFKA_BOOTSTRAP_SERVERS },
  hbase: { restUrl: HBASE_REST_URL, zookeeperQuorum: ZOOKEEPER_QUORUM, masterInfoUrl: HBASE_MASTER_INFO_URL },
  solr: { url: SOLR_URL, cores: SOLR_CORES },
  opentsdb: { url: OPENTSDB_URL },
} as const;

const START_TIMEOUT_MS = envInt("HUB_STACK_START_TIMEOUT_S", 180) * 1000;
const STOP_TIMEOUT_MS = envInt("HUB_STACK_STOP_TIMEOUT_S", 30) * 1000;
const MAVEN_TIMEOUT_MS = envInt("HUB_STACK_MAVEN_TIMEOUT_S", 1200) * 1000;
const JAVA = envStr("HUB_STACK_JAVA", process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, "bin", "java") : "java");
const JAVAC = envStr(
  "HUB_STACK_JAVAC",
  process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, "bin", "javac") : "javac",
);
const MVN = envStr("HUB_STACK_MVN", "mvn");

const HEAPS: Record<ServerName, string> = {
  kafka: envStr("HUB_KAFKA_HEAP", "512m"),
  hbase: envStr("HUB_HBASE_HEAP", "1g"),
  "hbase-rest": envStr("HUB_HBASE_REST_HEAP", "256m"),
  solr: envStr("HUB_SOLR_HEAP", "512m"),
  opentsdb: envStr("HUB_OPENTSDB_HEAP", "384m"),
};

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

export type ServerName = "kafka" | "hbase" | "hbase-rest" | "solr" | "opentsdb";
/** All processes, in start order. */
export const SERVER_NAMES: readonly ServerName[] = ["kafka", "hbase", "hbase-rest", "solr", "opentsdb"];
/** Names accepted by up/down: a server, or `hbase` for HBase and its REST gateway. */
export const STACK_GROUPS: Readonly<Record<string, readonly ServerName[]>> = {
  kafka: ["kafka"],
  hbase: ["hbase", "hbase-rest"],
  "hbase-rest": ["hbase-rest"],
  solr: ["solr"],
  opentsdb: ["opentsdb"],
};

const dirs = {
  cp: path.join(STACK_DIR, "cp"),
  classes: path.join(STACK_DIR, "classes"),
  conf: path.join(STACK_DIR, "conf"),
  data: path.join(STACK_DIR, "data"),
  logs: path.join(STACK_DIR, "logs"),
  run: path.join(STACK_DIR, "run"),
  tmp: path.join(STACK_DIR, "tmp"),
  opentsdb: path.join(STACK_DIR, "opentsdb"),
};

export function logFile(name: ServerName): string {
  return path.join(dirs.logs, `${name}.log`);
}
function pidFile(name: ServerName): string {
  return path.join(dirs.run, `${name}.pid`);
}
/** The classpath file written by Maven for a profile. */
export function classpathFile(profile: string): string {
  return path.join(dirs.cp, `${profile}.txt`);
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

export class StackError extends Error {}

/** Runs at most `n` of the given tasks at once. */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return <T>(task: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      const go = () => {
        active++;
        task()
          .then(resolve, reject)
          .finally(() => {
            active--;
            queue.shift()?.();
          });
      };
      if (active < n) go();
      else queue.push(go);
    });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function mkdirs(...ps: string[]): void {
  for (const p of ps) fs.mkdirSync(p, { recursive: true });
}

/** Write a file only if its content changed (keeps mtimes stable). */
function writeIfChanged(file: string, content: string | Buffer): void {
  try {
    const old = fs.readFileSync(file);
    if (Buffer.compare(old, Buffer.from(content)) === 0) return;
  } catch {
    /* new file */
  }
  mkdirs(path.dirname(file));
  fs.writeFileSync(file, content);
}

function tail(file: string, lines = 60): string {
  try {
    const fd = fs.openSync(file, "r");
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      return buf.toString("utf8").split("\n").slice(-lines).join("\n");
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return "(no log)";
  }
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function hadoopSite(props: Record<string, string | number | boolean>): string {
  const body = Object.entries(props)
    .map(([k, v]) => `  <property><name>${xmlEscape(k)}</name><value>${xmlEscape(String(v))}</value></property>`)
    .join("\n");
  return `<?xml version="1.0"?>\n<!-- generated by stack/index.ts; edits are overwritten at 'up' -->\n<configuration>\n${body}\n</configuration>\n`;
}

function propertiesFile(props: Record<string, string | number | boolean>): string {
  return (
    "# generated by stack/index.ts; edits are overwritten at 'up'\n" +
    Object.entries(props)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join("\n") +
    "\n"
  );
}

/** Runs a command to completion, output appended to a log file; bounded in time. */
function run(cmd: string, args: string[], opts: { log: string; timeoutMs: number; cwd?: string }): Promise<number> {
  mkdirs(path.dirname(opts.log));
  const fd = fs.openSync(opts.log, "a");
  fs.writeSync(fd, `\n$ ${cmd} ${args.join(" ")}\n`);
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { cwd: opts.cwd ?? REPO_ROOT, stdio: ["ignore", fd, fd] });
    } catch (e) {
      fs.closeSync(fd);
      reject(e);
      return;
    }
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      fs.closeSync(fd);
      reject(new StackError(`cannot run ${cmd}: ${e.message}`));
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      fs.closeSync(fd);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

/** True when something accepts TCP connections on host:port. */
export function tcpOpen(port: number, host = STACK_HOST, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

async function httpGet(
  url: string,
  timeoutMs = 3000,
  accept = "application/json",
): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { headers: { Accept: accept }, signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

// ---------------------------------------------------------------------------------------------
// Kafka protocol probe (Metadata v1 over plain TCP, no client library)
// ---------------------------------------------------------------------------------------------

export interface KafkaMetadata {
  brokers: { nodeId: number; host: string; port: number }[];
  controllerId: number;
  topics: string[];
}

/** Sends a Kafka Metadata (v1, all topics) request and parses brokers, controller and topic names. */
export function kafkaMetadata(port = STACK_PORTS.kafka, host = STACK_HOST, timeoutMs = 3000): Promise<KafkaMetadata> {
  const clientId = Buffer.from("hub-stack-probe");
  const header = Buffer.alloc(2 + 2 + 4 + 2);
  header.writeInt16BE(3, 0); // api key: Metadata
  header.writeInt16BE(1, 2); // api version 1
  header.writeInt32BE(0x5741, 4); // correlation id
  header.writeInt16BE(clientId.length, 8);
  const body = Buffer.alloc(4);
  body.writeInt32BE(-1, 0); // null topic array: all topics
  const payload = Buffer.concat([header, clientId, body]);
  const size = Buffer.alloc(4);
  size.writeInt32BE(payload.length, 0);

  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    const fail = (e: Error) => {
      sock.destroy();
      reject(e);
    };
    sock.setTimeout(timeoutMs, () => fail(new Error("kafka metadata: timeout")));
    sock.once("error", fail);
    sock.once("connect", () => sock.write(Buffer.concat([size, payload])));
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 4) return;
      const len = buf.readInt32BE(0);
      if (buf.length < 4 + len) return;
      sock.destroy();
      try {
        let o = 4;
        const corr = buf.readInt32BE(o);
        o += 4;
        if (corr !== 0x5741) throw new Error("kafka metadata: bad correlation id");
        const str = (): string | null => {
          const l = buf.readInt16BE(o);
          o += 2;
          if (l < 0) return null;
          const s = buf.toString("utf8", o, o + l);
          o += l;
          return s;
        };
        const brokers: KafkaMetadata["brokers"] = [];
        const nb = buf.readInt32BE(o);
        o += 4;
        for (let i = 0; i < nb; i++) {
          const nodeId = buf.readInt32BE(o);
          o += 4;
          const bhost = str() ?? "";
          const bport = buf.readInt32BE(o);
          o += 4;
          str(); // rack
          brokers.push({ nodeId, host: bhost, port: bport });
        }
        const controllerId = buf.readInt32BE(o);
        o += 4;
        const topics: string[] = [];
        const nt = buf.readInt32BE(o);
        o += 4;
        for (let i = 0; i < nt; i++) {
          o += 2; // error code
          const name = str() ?? "";
          o += 1; // is_internal
          const np = buf.readInt32BE(o);
          o += 4;
          for (let p = 0; p < np; p++) {
            o += 2 + 4 + 4; // error, partition, leader
            const nr = buf.readInt32BE(o);
            o += 4 + nr * 4;
            const ni = buf.readInt32BE(o);
            o += 4 + ni * 4;
          }
          topics.push(name);
        }
        resolve({ brokers, controllerId, topics });
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Server definitions
// ---------------------------------------------------------------------------------------------

interface ServerDef {
  name: ServerName;
  /** Maven profile of stack/pom.xml holding its classpath */
  profile: string;
  deps: ServerName[];
  ports(): Record<string, number>;
  url(): string;
  /** Writes configuration, formats storage, creates tables ... (idempotent) */
  prepare(): Promise<void>;
  /** JVM options and main class + arguments (classpath is added by the runner) */
  jvm(): { opts: string[]; main: string; args: string[]; extraClasspath?: string[] };
  /** undefined when ready, else why not */
  check(): Promise<string | undefined>;
  /** Optional graceful stop run before SIGTERM */
  gracefulStop?(): Promise<void>;
}

/** HBase's module flags for JDK 11+/17 (as its bin/hbase and build use). */
const HBASE_JDK17_FLAGS = [
  "-Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true",
  "--add-modules=jdk.unsupported",
  "--add-opens=java.base/java.io=ALL-UNNAMED",
  "--add-opens=java.base/java.nio=ALL-UNNAMED",
  "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
  "--add-opens=java.base/java.lang=ALL-UNNAMED",
  "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
  "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
  "--add-opens=java.base/java.util=ALL-UNNAMED",
  "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
  "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
  "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
  "--add-exports=java.base/sun.net.dns=ALL-UNNAMED",
  "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
];

function log4j2Console(name: string, levels: Record<string, string>): string {
  const lines = [
    "# generated by stack/index.ts",
    "status = warn",
    `name = hub-stack-${name}`,
    "appender.console.type = Console",
    "appender.console.name = console",
    "appender.console.target = SYSTEM_OUT",
    "appender.console.layout.type = PatternLayout",
    "appender.console.layout.pattern = %d{ISO8601} %-5p [%t] %c{2}: %.1000m%n",
    "rootLogger = INFO, console",
  ];
  Object.entries(levels).forEach(([logger, level], i) => {
    lines.push(`logger.l${i}.name = ${logger}`, `logger.l${i}.level = ${level}`);
  });
  return lines.join("\n") + "\n";
}

const kafkaDef: ServerDef = {
  name: "kafka",
  profile: "kafka",
  deps: [],
  ports: () => ({ broker: STACK_PORTS.kafka, controller: STACK_PORTS.kafkaController }),
  url: () => KAFKA_BOOTSTRAP_SERVERS,
  async prepare() {
    const conf = path.join(dirs.conf, "kafka");
    const logDir = path.join(dirs.data, "kafka");
    mkdirs(conf, logDir);
    const props = path.join(conf, "server.properties");
    writeIfChanged(
      props,
      propertiesFile({
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.voters": `1@${STACK_HOST}:${STACK_PORTS.kafkaController}`,
        listeners: `PLAINTEXT://${STACK_HOST}:${STACK_PORTS.kafka},CONTROLLER://${STACK_HOST}:${STACK_PORTS.kafkaController}`,
        "advertised.listeners": `PLAINTEXT://${STACK_HOST}:${STACK_PORTS.kafka}`,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": logDir,
        "num.partitions": 12,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 12,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "transaction.state.log.num.partitions": 12,
        "auto.create.topics.enable": true,
        "delete.topic.enable": true,
        "group.initial.rebalance.delay.ms": 0,
        "num.network.threads": 3,
        "num.io.threads": 4,
        "log.retention.hours": 168,
        "log.segment.bytes": 268435456,
      }),
    );
    writeIfChanged(
      path.join(conf, "log4j.properties"),
      [
        "# generated by stack/index.ts",
        "log4j.rootLogger=INFO, stdout",
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
        "log4j.logger.kafka.request.logger=WARN",
        "log4j.logger.state.change.logger=WARN",
        "log4j.logger.kafka.controller=INFO",
        "log4j.logger.org.apache.kafka.controller=INFO",
        "",
      ].join("\n"),
    );
    // quiet logging for Kafka's command-line tools (console consumer, perf tools): warnings to stderr
    writeIfChanged(
      path.join(conf, "tools-log4j.properties"),
      [
        "# generated by stack/index.ts",
        "log4j.rootLogger=WARN, stderr",
        "log4j.appender.stderr=org.apache.log4j.ConsoleAppender",
        "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout",
        "log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n",
        "log4j.appender.stderr.Target=System.err",
        "",
      ].join("\n"),
    );
    if (!fs.existsSync(path.join(logDir, "meta.properties"))) {
      // random cluster id, the same form as `kafka-storage.sh random-uuid` (base64url of 16 bytes)
      let clusterId = "";
      do clusterId = randomBytes(16).toString("base64url");
      while (clusterId.startsWith("-"));
      const code = await run(
        JAVA,
        [
          ...jvmBase("kafka-storage", "256m"),
          `-Dlog4j.configuration=file:${path.join(conf, "log4j.properties")}`,
          "-cp",
          readClasspath("kafka"),
          "kafka.tools.StorageTool",
          "format",
          "-t",
          clusterId,
          "-c",
          props,
          "--ignore-formatted",
        ],
        { log: path.join(dirs.logs, "kafka-format.log"), timeoutMs: 120_000 },
      );
      if (code !== 0) {
        throw new StackError(
          `kafka storage format failed (exit ${code})\n${tail(path.join(dirs.logs, "kafka-format.log"))}`,
        );
      }
    }
  },
  jvm: () => ({
    opts: [
      "-XX:+UseG1GC",
      "-XX:MaxGCPauseMillis=20",
      "-XX:InitiatingHeapOccupancyPercent=35",
      `-Dlog4j.configuration=file:${path.join(dirs.conf, "kafka", "log4j.properties")}`,
      `-Dkafka.logs.dir=${path.join(dirs.logs, "kafka")}`,
    ],
    main: "kafka.Kafka",
    args: [path.join(dirs.conf, "kafka", "server.properties")],
  }),
  async check() {
    const md = await kafkaMetadata(STACK_PORTS.kafka, STACK_HOST, 3000);
    if (md.brokers.length < 1) return "no broker in metadata";
    if (md.controllerId < 0) return "no active controller";
    return undefined;
  },
};

function hbaseConfDir(): string {
  return path.join(dirs.conf, "hbase");
}

function writeHbaseConf(): void {
  const conf = hbaseConfDir();
  mkdirs(conf, path.join(dirs.data, "hbase"), path.join(dirs.data, "zookeeper"), path.join(dirs.tmp, "hbase"));
  writeIfChanged(
    path.join(conf, "hbase-site.xml"),
    hadoopSite({
      "hbase.cluster.distributed": false,
      "hbase.rootdir": `file://${path.join(dirs.data, "hbase")}`,
      "hbase.tmp.dir": path.join(dirs.tmp, "hbase"),
      "hbase.unsafe.stream.capability.enforce": false,
      "hbase.zookeeper.quorum": STACK_HOST,
      "hbase.zookeeper.property.clientPort": STACK_PORTS.zookeeper,
      "hbase.zookeeper.property.dataDir": path.join(dirs.data, "zookeeper"),
      "hbase.master.hostname": STACK_HOST,
      "hbase.unsafe.regionserver.hostname": STACK_HOST,
      "hbase.master.ipc.address": STACK_HOST,
      "hbase.regionserver.ipc.address": STACK_HOST,
      "hbase.master.port": STACK_PORTS.hbaseMaster,
      "hbase.regionserver.port": STACK_PORTS.hbaseRegionServer,
      "hbase.master.info.bindAddress": STACK_HOST,
      "hbase.master.info.port": STACK_PORTS.hbaseMasterInfo,
      "hbase.regionserver.info.bindAddress": STACK_HOST,
      "hbase.regionserver.info.port": -1,
      "hbase.regionserver.handler.count": 16,
      "hbase.master.wait.on.regionservers.mintostart": 1,
      "hbase.rest.host": STACK_HOST,
      "hbase.rest.port": STACK_PORTS.hbaseRest,
      "hbase.rest.info.port": -1,
      "hbase.rest.readonly": false,
      "hbase.rest.threads.max": 50,
    }),
  );
  // The Maven jars carry no hbase-webapps (the tarball does); an empty web app directory on the
  // classpath is enough for the master's info server, which serves /jmx used by the readiness check.
  for (const app of ["master", "static"]) mkdirs(path.join(conf, "hbase-webapps", app));
  writeIfChanged(
    path.join(conf, "log4j2.properties"),
    log4j2Console("hbase", {
      "org.apache.zookeeper": "WARN",
      "org.apache.hadoop": "WARN",
      "org.apache.hadoop.hbase": "INFO",
      "org.apache.hadoop.hbase.zookeeper": "WARN",
      "org.apache.hbase.thirdparty": "WARN",
      "org.apache.hadoop.metrics2": "ERROR",
    }),
  );
}

function hbaseJvmOpts(): string[] {
  return [
    ...HBASE_JDK17_FLAGS,
    "-XX:+UseG1GC",
    `-Dlog4j2.configurationFile=file:${path.join(hbaseConfDir(), "log4j2.properties")}`,
    `-Dhbase.log.dir=${dirs.logs}`,
    `-Dhbase.home.dir=${path.join(dirs.tmp, "hbase")}`,
    "-Dhbase.root.logger=INFO,console",
  ];
}

const hbaseDef: ServerDef = {
  name: "hbase",
  profile: "hbase",
  deps: [],
  ports: () => ({
    zookeeper: STACK_PORTS.zookeeper,
    master: STACK_PORTS.hbaseMaster,
    regionserver: STACK_PORTS.hbaseRegionServer,
    masterInfo: STACK_PORTS.hbaseMasterInfo,
  }),
  url: () => HBASE_MASTER_INFO_URL,
  async prepare() {
    writeHbaseConf();
  },
  jvm: () => ({
    opts: hbaseJvmOpts(),
    main: "org.apache.hadoop.hbase.master.HMaster",
    args: ["start"],
    extraClasspath: [hbaseConfDir()],
  }),
  async check() {
    for (const [what, port] of [
      ["zookeeper", STACK_PORTS.zookeeper],
      ["master", STACK_PORTS.hbaseMaster],
      ["regionserver", STACK_PORTS.hbaseRegionServer],
    ] as const) {
      if (!(await tcpOpen(port))) return `${what} port ${port} closed`;
    }
    if (STACK_PORTS.hbaseMasterInfo > 0) {
      const r = await httpGet(`${HBASE_MASTER_INFO_URL}/jmx?qry=Hadoop:service=HBase,name=Master,sub=Server`);
      if (r.status !== 200) return `master jmx: HTTP ${r.status}`;
      const bean = (JSON.parse(r.body) as { beans?: Record<string, unknown>[] }).beans?.[0];
      if (!bean) return "master jmx: no bean yet";
      if (String(bean["tag.isActiveMaster"]) !== "true") return "master not active yet";
      if (Number(bean["numRegionServers"] ?? 0) < 1) return "no region server yet";
      if (!(Number(bean["masterFinishedInitializationTime"] ?? 0) > 0)) return "master still initializing";
    }
    return undefined;
  },
  // `HMaster stop --shutDownCluster` asks the master to flush and close regions and stop the region
  // server and ZooKeeper in order (~15 s); a bare SIGTERM works too but takes longer.
  async gracefulStop() {
    await run(
      JAVA,
      [
        ...jvmBase("hbase-stop", "256m"),
        ...hbaseJvmOpts(),
        "-cp",
        [hbaseConfDir(), readClasspath("hbase")].join(path.delimiter),
        "org.apache.hadoop.hbase.master.HMaster",
        "stop",
        "--shutDownCluster",
      ],
      { log: path.join(dirs.logs, "hbase-stop.log"), timeoutMs: 60_000 },
    );
  },
};

const hbaseRestDef: ServerDef = {
  name: "hbase-rest",
  profile: "hbase-rest",
  deps: ["hbase"],
  ports: () => ({ rest: STACK_PORTS.hbaseRest }),
  url: () => HBASE_REST_URL,
  async prepare() {
    writeHbaseConf();
  },
  jvm: () => ({
    opts: hbaseJvmOpts(),
    main: "org.apache.hadoop.hbase.rest.RESTServer",
    args: ["start"],
    extraClasspath: [hbaseConfDir()],
  }),
  async check() {
    const v = await httpGet(`${HBASE_REST_URL}/version/cluster`);
    if (v.status !== 200) return `GET /version/cluster: HTTP ${v.status}`;
    // listing tables goes through the master: fails while it is still initializing
    const t = await httpGet(`${HBASE_REST_URL}/`);
    if (t.status !== 200 && t.status !== 204) return `GET / (tables): HTTP ${t.status}`;
    return undefined;
  },
};

const solrDef: ServerDef = {
  name: "solr",
  profile: "solr",
  deps: [],
  ports: () => ({ http: STACK_PORTS.solr }),
  url: () => SOLR_URL,
  async prepare() {
    // The live solr home is a copy of stack/solr under .stack (index data stays there too);
    // config files are refreshed from the repository at every start.
    const home = path.join(dirs.data, "solr");
    copyTree(path.join(STACK_SRC_DIR, "solr"), home);
    const conf = path.join(dirs.conf, "solr");
    writeIfChanged(
      path.join(conf, "log4j2.properties"),
      log4j2Console("solr", {
        "org.apache.solr.update.processor.LogUpdateProcessorFactory": "WARN",
        "org.apache.solr.core.SolrCore.Request": "WARN",
        "org.apache.solr.core.SolrCore": "WARN",
        "org.apache.solr.update": "WARN",
        "org.apache.solr.search.SolrIndexSearcher": "WARN",
        "org.apache.solr.servlet.HttpSolrCall": "WARN",
        "org.apache.zookeeper": "WARN",
        "org.eclipse.jetty": "WARN",
      }),
    );
    await compileLaunchers();
  },
  jvm: () => ({
    opts: [
      "-XX:+UseG1GC",
      `-Dlog4j2.configurationFile=file:${path.join(dirs.conf, "solr", "log4j2.properties")}`,
      `-Dsolr.log.dir=${path.join(dirs.logs, "solr")}`,
      `-Dsolr.install.dir=${path.join(dirs.data, "solr")}`,
      "-Dsolr.disableConfigSetsCreateAuthChecks=true",
      "-Djetty.testMode=false",
    ],
    main: "SolrLauncher",
    args: [path.join(dirs.data, "solr"), String(STACK_PORTS.solr)],
    extraClasspath: [dirs.classes],
  }),
  async check() {
    for (const core of SOLR_CORES) {
      const r = await httpGet(`${SOLR_URL}/${core}/admin/ping?wt=json`);
      if (r.status !== 200) return `${core} ping: HTTP ${r.status}`;
      if ((JSON.parse(r.body) as { status?: string }).status !== "OK") return `${core} ping: not OK`;
    }
    return undefined;
  },
};

const opentsdbDef: ServerDef = {
  name: "opentsdb",
  profile: "opentsdb",
  deps: ["hbase", "hbase-rest"],
  ports: () => ({ http: STACK_PORTS.opentsdb }),
  url: () => OPENTSDB_URL,
  async prepare() {
    const conf = path.join(dirs.conf, "opentsdb");
    mkdirs(conf, path.join(dirs.opentsdb, "static"), path.join(dirs.opentsdb, "cache"));
    writeIfChanged(
      path.join(conf, "opentsdb.conf"),
      propertiesFile({
        "tsd.network.port": STACK_PORTS.opentsdb,
        "tsd.network.bind": STACK_HOST,
        "tsd.http.staticroot": path.join(dirs.opentsdb, "static"),
        "tsd.http.cachedir": path.join(dirs.opentsdb, "cache"),
        "tsd.core.auto_create_metrics": true,
        "tsd.http.request.enable_chunked": true,
        "tsd.http.request.max_chunk": 1048576,
        "tsd.http.request.cors_domains": "*",
        "tsd.http.query.allow_delete": true,
        "tsd.storage.fix_duplicates": true,
        "tsd.storage.hbase.zk_quorum": ZOOKEEPER_QUORUM,
        "tsd.storage.hbase.zk_basedir": "/hbase",
        "tsd.storage.hbase.data_table": "tsdb",
        "tsd.storage.hbase.uid_table": "tsdb-uid",
        "tsd.storage.hbase.tree_table": "tsdb-tree",
        "tsd.storage.hbase.meta_table": "tsdb-meta",
        "tsd.storage.flush_interval": 1000,
      }),
    );
    writeIfChanged(
      path.join(conf, "logback.xml"),
      [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- generated by stack/index.ts -->",
        "<configuration>",
        '  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">',
        "    <encoder><pattern>%d{ISO8601} %-5level [%thread] %logger{0}: %msg%n</pattern></encoder>",
        "  </appender>",
        '  <logger name="org.apache.zookeeper" level="WARN"/>',
        '  <logger name="org.hbase.async" level="WARN"/>',
        '  <logger name="net.opentsdb.tsd.HttpQuery" level="WARN"/>',
        '  <logger name="net.opentsdb.tsd.ConnectionManager" level="WARN"/>',
        '  <root level="INFO"><appender-ref ref="STDOUT"/></root>',
        "</configuration>",
        "",
      ].join("\n"),
    );
    await ensureOpentsdbTables();
  },
  jvm: () => ({
    opts: [
      "-XX:+UseG1GC",
      `-Dlogback.configurationFile=${path.join(dirs.conf, "opentsdb", "logback.xml")}`,
      "--add-opens=java.base/java.lang=ALL-UNNAMED",
      "--add-opens=java.base/java.nio=ALL-UNNAMED",
      "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    ],
    main: "net.opentsdb.tools.TSDMain",
    args: [
      `--config=${path.join(dirs.conf, "opentsdb", "opentsdb.conf")}`,
      `--port=${STACK_PORTS.opentsdb}`,
      `--bind=${STACK_HOST}`,
      `--staticroot=${path.join(dirs.opentsdb, "static")}`,
      `--cachedir=${path.join(dirs.opentsdb, "cache")}`,
      `--zkquorum=${ZOOKEEPER_QUORUM}`,
      "--auto-metric",
    ],
  }),
  async check() {
    const r = await httpGet(`${OPENTSDB_URL}/api/version`);
    if (r.status !== 200) return `GET /api/version: HTTP ${r.status}`;
    if (!(JSON.parse(r.body) as { version?: string }).version) return "no version in /api/version";
    return undefined;
  },
};

const DEFS: Record<ServerName, ServerDef> = {
  kafka: kafkaDef,
  hbase: hbaseDef,
  "hbase-rest": hbaseRestDef,
  solr: solrDef,
  opentsdb: opentsdbDef,
};

/** Creates OpenTSDB's four tables through the HBase REST API when they do not exist yet. */
export async function ensureOpentsdbTables(restUrl = HBASE_REST_URL, timeoutMs = 120_000): Promise<string[]> {
  const created: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (const [table, families] of Object.entries(OPENTSDB_TABLES)) {
    let lastError = "";
    for (;;) {
      if (Date.now() > deadline) throw new StackError(`cannot create OpenTSDB table ${table}: ${lastError}`);
      try {
        const got = await httpGet(`${restUrl}/${encodeURIComponent(table)}/schema`, 10_000);
        if (got.status === 200) break;
        const schema = {
          name: table,
          ColumnSchema: families.map((name) => ({
            name,
            VERSIONS: "1",
            COMPRESSION: "NONE",
            BLOOMFILTER: "ROW",
            DATA_BLOCK_ENCODING: "DIFF",
          })),
        };
        const res = await fetch(`${restUrl}/${encodeURIComponent(table)}/schema`, {
          method: "PUT",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(schema),
          signal: AbortSignal.timeout(60_000),
        });
        const text = await res.text();
        if (res.status === 200 || res.status === 201) {
          created.push(table);
          break;
        }
        lastError = `PUT /${table}/schema: HTTP ${res.status} ${text.slice(0, 300)}`;
      } catch (e) {
        lastError = e instanceof Error ? e.message : String(e);
      }
      await sleep(1000);
    }
  }
  return created;
}

// ---------------------------------------------------------------------------------------------
// Classpaths (Maven), launchers (javac), solr home copy
// ---------------------------------------------------------------------------------------------

function readClasspath(profile: string): string {
  return fs.readFileSync(classpathFile(profile), "utf8").trim();
}

function classpathUsable(profile: string): boolean {
  const file = classpathFile(profile);
  try {
    const st = fs.statSync(file);
    if (st.mtimeMs < fs.statSync(path.join(STACK_SRC_DIR, "pom.xml")).mtimeMs) return false;
    const cp = readClasspath(profile);
    return cp.length > 0 && cp.split(path.delimiter).every((jar) => fs.existsSync(jar));
  } catch {
    return false;
  }
}

/**
 * Resolves a profile's runtime classpath into .stack/cp/<profile>.txt: nothing to do when the
 * file is newer than pom.xml and every jar is in the local repository; otherwise Maven offline
 * first, then online (downloads once from Maven Central into ~/.m2).
 */
export async function resolveClasspath(profile: string, log: (s: string) => void = () => {}): Promise<string> {
  if (classpathUsable(profile)) return readClasspath(profile);
  mkdirs(dirs.cp, dirs.logs);
  const mvnLog = path.join(dirs.logs, `maven-${profile}.log`);
  const out = classpathFile(profile);
  const args = [
    "-B",
    "-q",
    "-f",
    path.join(STACK_SRC_DIR, "pom.xml"),
    "-P",
    profile,
    "dependency:build-classpath",
    `-Dmdep.outputFile=${out}`,
  ];
  const started = Date.now();
  let code = await run(MVN, ["-o", ...args], { log: mvnLog, timeoutMs: MAVEN_TIMEOUT_MS });
  if (code !== 0) {
    log(`resolving ${profile} classpath with Maven (downloads from Maven Central on first use)...`);
    code = await run(MVN, args, { log: mvnLog, timeoutMs: MAVEN_TIMEOUT_MS });
  }
  if (code !== 0 || !fs.existsSync(out)) {
    throw new StackError(
      `maven could not resolve profile ${profile} (exit ${code}); see ${mvnLog}\n${tail(mvnLog, 30)}`,
    );
  }
  // touch so that it is newer than pom.xml even if Maven kept an old mtime
  const now = new Date();
  fs.utimesSync(out, now, now);
  log(`classpath ${profile}: ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return readClasspath(profile);
}

async function compileLaunchers(): Promise<void> {
  const srcDir = path.join(STACK_SRC_DIR, "java");
  const sources = fs.readdirSync(srcDir).filter((f) => f.endsWith(".java"));
  const stale = sources.some((f) => {
    const cls = path.join(dirs.classes, f.replace(/\.java$/, ".class"));
    try {
      return fs.statSync(cls).mtimeMs < fs.statSync(path.join(srcDir, f)).mtimeMs;
    } catch {
      return true;
    }
  });
  if (!stale) return;
  mkdirs(dirs.classes);
  const log = path.join(dirs.logs, "javac.log");
  const code = await run(
    JAVAC,
    ["-d", dirs.classes, "-cp", readClasspath("solr"), ...sources.map((f) => path.join(srcDir, f))],
    { log, timeoutMs: 120_000 },
  );
  if (code !== 0) throw new StackError(`javac failed (exit ${code})\n${tail(log, 30)}`);
}

function copyTree(from: string, to: string): void {
  mkdirs(to);
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) copyTree(src, dst);
    else if (entry.isFile()) writeIfChanged(dst, fs.readFileSync(src));
  }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

function jvmBase(marker: string, heap: string): string[] {
  const tmp = path.join(dirs.tmp, marker);
  mkdirs(tmp);
  return [
    `-Dhub.stack.server=${marker}`,
    `-Dhub.stack.dir=${STACK_DIR}`,
    `-Xms${heap.endsWith("g") ? "256m" : heap}`,
    `-Xmx${heap}`,
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.net.preferIPv4Stack=true",
    "-Djava.awt.headless=true",
    `-Djava.io.tmpdir=${tmp}`,
    "-Dfile.encoding=UTF-8",
  ];
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The pid of our running process for a server (checked against its command line), else undefined. */
function ourPid(name: ServerName): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile(name), "utf8").trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    if (!cmdline.includes(`-Dhub.stack.server=${name}`) || !cmdline.includes(`-Dhub.stack.dir=${STACK_DIR}`)) {
      return undefined;
    }
  } catch {
    // no /proc (not Linux): trust the pid file
  }
  return pid;
}

function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

function startProcess(def: ServerDef): number {
  const { opts, main, args, extraClasspath } = def.jvm();
  const cp = [...(extraClasspath ?? []), readClasspath(def.profile)].join(path.delimiter);
  // the long classpath goes into a java @argfile so that `ps` stays readable
  const argFile = path.join(dirs.run, `${def.name}.args`);
  writeIfChanged(argFile, `-cp "${cp.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"\n`);
  const log = logFile(def.name);
  mkdirs(dirs.logs);
  if (fs.existsSync(log)) fs.renameSync(log, `${log}.1`);
  const fd = fs.openSync(log, "a");
  const argv = [...jvmBase(def.name, HEAPS[def.name]), ...opts, `@${argFile}`, main, ...args];
  fs.writeSync(fd, `# ${new Date().toISOString()} ${JAVA} ${argv.join(" ")}\n`);
  const env = { ...process.env };
  delete env.JAVA_TOOL_OPTIONS;
  delete env.CLASSPATH;
  const child = spawn(JAVA, argv, { cwd: STACK_DIR, detached: true, stdio: ["ignore", fd, fd], env });
  fs.closeSync(fd);
  if (!child.pid) throw new StackError(`could not start ${def.name}: ${JAVA} did not start`);
  child.unref();
  fs.writeFileSync(pidFile(def.name), `${child.pid}\n`);
  return child.pid;
}

async function waitReady(def: ServerDef, pid: number | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let why = "not checked yet";
  while (Date.now() < deadline) {
    if (pid !== undefined && !isAlive(pid)) {
      throw new StackError(
        `${def.name} exited during start-up (${why}); log ${logFile(def.name)}:\n${tail(logFile(def.name))}`,
      );
    }
    try {
      why = (await def.check()) ?? "";
      if (why === "") return;
    } catch (e) {
      why =
        e instanceof Error ? (e.cause instanceof Error ? `${e.message}: ${e.cause.message}` : e.message) : String(e);
    }
    await sleep(500);
  }
  throw new StackError(
    `${def.name} did not become ready within ${Math.round(timeoutMs / 1000)}s (${why}); log ${logFile(def.name)}:\n${tail(logFile(def.name))}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Lock (one up/down at a time per STACK_DIR)
// ---------------------------------------------------------------------------------------------

async function withLock<T>(fn: () => Promise<T>, timeoutMs = MAVEN_TIMEOUT_MS + START_TIMEOUT_MS * 3): Promise<T> {
  mkdirs(dirs.run);
  const lock = path.join(dirs.run, "stack.lock");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
      break;
    } catch {
      const holder = Number(fs.readFileSync(lock, "utf8").trim() || "0");
      if (!holder || holder === process.pid || !isAlive(holder)) {
        fs.rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new StackError(`stack is locked by pid ${holder} (${lock})`);
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export type ServerState = "running" | "starting" | "stopped" | "external";

export interface ServerStatus {
  name: ServerName;
  state: ServerState;
  pid: number | null;
  ports: Record<string, number>;
  url: string;
  rssMb: number | null;
  startedAt: string | null;
  log: string;
}

export interface StackOptions {
  /** progress messages (default: none) */
  log?: (line: string) => void;
  /** per-server readiness timeout (default $HUB_STACK_START_TIMEOUT_S or 180 s) */
  timeoutMs?: number;
}

/** Expands names (servers or groups; empty = all) to servers, with their dependencies, in start order. */
export function resolveNames(names: readonly string[] = [], withDeps = true): ServerName[] {
  const wanted = new Set<ServerName>();
  const add = (n: ServerName) => {
    if (wanted.has(n)) return;
    if (withDeps) DEFS[n].deps.forEach(add);
    wanted.add(n);
  };
  const list = names.length === 0 || names.includes("all") ? Object.keys(STACK_GROUPS) : names;
  for (const n of list) {
    const group = STACK_GROUPS[n];
    if (!group)
      throw new StackError(`unknown server ${JSON.stringify(n)} (known: ${Object.keys(STACK_GROUPS).join(", ")}, all)`);
    group.forEach(add);
  }
  return SERVER_NAMES.filter((n) => wanted.has(n));
}

/**
 * Starts the named servers (default: all) and their dependencies, reusing the ones already
 * running, and waits until each answers a real request. Throws StackError (with the tail of the
 * server's log) if one does not come up in time.
 */
export async function stackUp(names: readonly string[] = [], options: StackOptions = {}): Promise<ServerStatus[]> {
  const log = options.log ?? (() => {});
  const timeoutMs = options.timeoutMs ?? START_TIMEOUT_MS;
  const targets = resolveNames(names, true);
  return withLock(async () => {
    mkdirs(...Object.values(dirs));
    // Classpaths resolve two at a time (two cores, and Maven downloads in parallel anyway); each
    // server starts as soon as its own classpath and its dependencies are ready.
    const slots = limiter(2);
    const classpaths = new Map<string, Promise<string>>();
    const classpathOf = (profile: string) => {
      let p = classpaths.get(profile);
      if (!p) {
        p = slots(() => resolveClasspath(profile, log));
        classpaths.set(profile, p);
      }
      return p;
    };
    targets.forEach((n) => void classpathOf(DEFS[n].profile).catch(() => {}));

    const started = new Map<ServerName, Promise<void>>();
    const startOne = (name: ServerName): Promise<void> => {
      const existing = started.get(name);
      if (existing) return existing;
      const p = (async () => {
        const def = DEFS[name];
        await classpathOf(def.profile);
        await Promise.all(def.deps.filter((d) => targets.includes(d)).map(startOne));
        const t0 = Date.now();
        const pid = ourPid(name);
        if (pid !== undefined) {
          await waitReady(def, pid, timeoutMs);
          log(`${name}: already running (pid ${pid})`);
          return;
        }
        fs.rmSync(pidFile(name), { force: true });
        const mainPort = Object.values(def.ports())[0];
        if (await tcpOpen(mainPort)) {
          const why = await def.check().catch((e: unknown) => (e instanceof Error ? e.message : String(e)));
          if (why === undefined) {
            log(`${name}: port ${mainPort} already served by a process not started by this tool; reusing it`);
            return;
          }
          throw new StackError(`${name}: port ${mainPort} is in use by another process (${why})`);
        }
        await def.prepare();
        const newPid = startProcess(def);
        log(`${name}: starting (pid ${newPid}, log ${logFile(name)})`);
        await waitReady(def, newPid, timeoutMs);
        log(`${name}: ready in ${((Date.now() - t0) / 1000).toFixed(1)}s at ${def.url()}`);
      })();
      started.set(name, p);
      return p;
    };
    const results = await Promise.allSettled(targets.map(startOne));
    const failures = results
      .map((r, i) =>
        r.status === "rejected"
          ? ((m: string) => (m.startsWith(targets[i]) ? m : `${targets[i]}: ${m}`))(
              r.reason instanceof Error ? r.reason.message : String(r.reason),
            )
          : "",
      )
      .filter(Boolean);
    if (failures.length > 0) throw new StackError(failures.join("\n\n"));
    return stackStatus(targets);
  });
}

async function stopOne(name: ServerName, log: (s: string) => void): Promise<void> {
  const pid = ourPid(name);
  if (pid === undefined) {
    fs.rmSync(pidFile(name), { force: true });
    return;
  }
  log(`${name}: stopping (pid ${pid})`);
  const t0 = Date.now();
  const def = DEFS[name];
  if (def.gracefulStop) {
    try {
      await def.gracefulStop();
      const graceDeadline = Date.now() + STOP_TIMEOUT_MS;
      while (isAlive(pid) && Date.now() < graceDeadline) await sleep(200);
    } catch (e) {
      log(`${name}: graceful stop failed (${e instanceof Error ? e.message : String(e)}), sending SIGTERM`);
    }
  }
  if (isAlive(pid)) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      /* already gone */
    }
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (isAlive(pid) && Date.now() < deadline) await sleep(200);
  if (isAlive(pid)) {
    log(`${name}: did not stop within ${STOP_TIMEOUT_MS / 1000}s, killing`);
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
    const killDeadline = Date.now() + 10_000;
    while (isAlive(pid) && Date.now() < killDeadline) await sleep(100);
  }
  fs.rmSync(pidFile(name), { force: true });
  log(`${name}: stopped in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
}

/** Stops the named servers (default: all): SIGTERM, then SIGKILL after $HUB_STACK_STOP_TIMEOUT_S (30 s). */
export async function stackDown(names: readonly string[] = [], options: StackOptions = {}): Promise<void> {
  const log = options.log ?? (() => {});
  const targets = new Set(resolveNames(names, false));
  const stop = async (n: ServerName) => {
    if (targets.has(n)) await stopOne(n, log);
  };
  await withLock(
    async () => {
      // OpenTSDB flushes into HBase, and the REST gateway talks to it: stop them before HBase
      await Promise.all([
        (async () => {
          await stop("opentsdb");
          await stop("hbase-rest");
          await stop("hbase");
        })(),
        stop("solr"),
        stop("kafka"),
      ]);
    },
    STOP_TIMEOUT_MS * 6 + 120_000,
  );
}

/** What is running: state, pid, ports, URL, resident memory. */
export async function stackStatus(names: readonly string[] = []): Promise<ServerStatus[]> {
  const targets = names.length === 0 ? [...SERVER_NAMES] : resolveNames(names, false);
  return Promise.all(
    targets.map(async (name): Promise<ServerStatus> => {
      const def = DEFS[name];
      const pid = ourPid(name);
      const ports = def.ports();
      const open = await tcpOpen(Object.values(ports)[0], STACK_HOST, 500);
      let state: ServerState;
      if (pid !== undefined) state = open ? "running" : "starting";
      else state = open ? "external" : "stopped";
      let startedAt: string | null = null;
      if (pid !== undefined) {
        try {
          startedAt = fs.statSync(pidFile(name)).mtime.toISOString();
        } catch {
          /* none */
        }
      }
      return {
        name,
        state,
        pid: pid ?? null,
        ports,
        url: def.url(),
        rssMb: pid !== undefined ? (rssMb(pid) ?? null) : null,
        startedAt,
        log: logFile(name),
      };
    }),
  );
}

/** The resolved Java classpath of a server (resolving it with Maven if needed), e.g. to run Kafka's tools. */
export async function stackClasspath(name: string): Promise<string> {
  const server = resolveNames([name], false)[0];
  return resolveClasspath(DEFS[server].profile);
}
