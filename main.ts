/**
 * auditpipe: moves Kubernetes audit events from kube-apiserver to where they are kept,
 * through an audit Policy, truncation and batching, as one YAML file declares.
 *
 * ```sh
 * env --block-signal=USR1 deno run -A main.ts --config pipeline.yaml
 * deno run -A main.ts --config pipeline.yaml --check
 * deno run -A main.ts policy eval --policy policy.yaml audit.log
 * deno run -A main.ts rbac --serviceaccount ns1:sa1 -f audit.log > sa1-rbac.yaml
 * ```
 *
 * @module
 */
import { VERSION } from "./cli/version.ts";
import type { LogLevel } from "./pipeline/core/log.ts";

const HELP = `auditpipe ${VERSION}: a Kubernetes audit event pipeline

Usage:
  auditpipe --config PATH [--log-level LEVEL]   run the daemon
  auditpipe --config PATH --check               validate the config and every file it names
  auditpipe policy eval|report|apply ...        audit Policy tools (auditpipe policy --help)
  auditpipe rbac --user NAME [-f FILE]...       least-privilege RBAC from audit logs, as
                                                audit2rbac (auditpipe rbac --help)
  auditpipe permissions --config PATH           the least Deno permission flags the config needs
  auditpipe buffer inspect PATH [--dump]        a sink's disk buffer: segments, cursor, damage
  auditpipe keygen --out DIR                    an Ed25519 key pair for a log sink's integrity
  auditpipe verify --public-key FILE LOG...     check signed log files (auditpipe verify --help)
  auditpipe top [--url URL] [--once]            a running daemon live from its /metrics
  auditpipe --version | --help

Options:
  -c, --config PATH      pipeline config (YAML)
      --check            validate and exit: 0 when valid, 2 listing every problem
      --log-level LEVEL  debug, info, warn or error (overrides the config's logLevel)
      --watch-config     reload when the config or a policy or kubeconfig it names changes
      --pid-file PATH    write the daemon's process id to PATH (removed on exit)
  -v, --version          print the version
  -h, --help             print this help

Examples:
  auditpipe --config config.example.yaml
  auditpipe --config /etc/auditpipe/pipeline.yaml --check
  auditpipe --config batch.yaml < /var/log/kubernetes/audit/audit.log
  auditpipe policy eval --policy policy.yaml audit.log

Signals: SIGTERM/SIGINT drain every sink and exit 0 (another one, 0.5 s or more later, exits at once);
SIGHUP reopens log files (after logrotate) and reloads the config (one that is invalid or cannot
start is logged, and what ran is kept). Never send SIGUSR1: Deno opens a V8 debugger on it unless it is
blocked, so start the daemon through 'env --block-signal=USR1 deno run ...'.
`;

const LEVELS = ["debug", "info", "warn", "error"];

type Subcommand = (args: string[]) => Promise<number>;

/** Loaded only when run, so the daemon does not load (or need permissions for) the tools. */
const SUBCOMMANDS: ReadonlyMap<string, () => Promise<Subcommand>> = new Map([
  ["policy", async () => (await import("./cli/policy/main.ts")).policyCommand],
  ["rbac", async () => (await import("./cli/rbac/main.ts")).rbacCommand],
  ["permissions", async () => (await import("./cli/permissions.ts")).permissionsCommand],
  ["buffer", async () => (await import("./cli/buffer.ts")).bufferCommand],
  ["keygen", async () => (await import("./cli/keygen.ts")).keygenCommand],
  ["verify", async () => (await import("./cli/verify/main.ts")).verifyCommand],
  ["top", async () => (await import("./cli/top/main.ts")).topCommand],
]);

/**
 * Parses the command line and runs the chosen command; returns the exit code.
 *
 * @example
 * ```ts
 * Deno.exit(await main(["--config", "pipeline.yaml"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const load = SUBCOMMANDS.get(args[0]);
  if (load !== undefined) return await (await load())(args.slice(1));
  // Answered before the option parser is loaded (node:util is most of what --version took).
  if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
    console.log(`auditpipe ${VERSION}`);
    return 0;
  }
  if (args.length === 1 && (args[0] === "--help" || args[0] === "-h")) {
    console.log(HELP);
    return 0;
  }
  const { parseCommandLine, usageError } = await import("./cli/args.ts");
  const values = parseCommandLine("auditpipe", HELP, args, {
    config: { type: "string", short: "c" },
    check: { type: "boolean", default: false },
    "watch-config": { type: "boolean", default: false },
    "log-level": { type: "string" },
    "pid-file": { type: "string" },
    version: { type: "boolean", short: "v", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (typeof values === "number") return values;
  if (values.version) {
    console.log(`auditpipe ${VERSION}`);
    return 0;
  }
  if (!values.config) return usageError("auditpipe", "--config is required", HELP);
  const level = values["log-level"];
  if (level !== undefined && !LEVELS.includes(level)) {
    console.error(`auditpipe: --log-level must be one of ${LEVELS.join(", ")}, got "${level}"`);
    return 2;
  }
  const pidFile = values["pid-file"];
  let removePidFile = async () => {};
  if (pidFile !== undefined && !values.check) {
    try {
      removePidFile = await (await import("./cli/pid_file.ts")).writePidFile(pidFile);
    } catch (err) {
      console.error(`auditpipe: --pid-file ${pidFile}: ${(err as Error).message}`);
      return 2;
    }
  }
  try {
    // Loaded here, so `--version`, `--help` and the tools never load the daemon's modules.
    const { runDaemon } = await import("./cli/run.ts");
    return await runDaemon({
      config: values.config,
      check: values.check,
      watchConfig: values["watch-config"],
      logLevel: level as LogLevel | undefined,
    });
  } finally {
    await removePidFile();
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
