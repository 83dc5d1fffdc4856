/**
 * The daemon command: load and check the config, build the pipeline, serve operations
 * endpoints, and handle signals (SIGINT/SIGTERM drain and exit, a second one exits at
 * once; SIGHUP reopens log files and reloads the config). SIGUSR1 is deliberately not used:
 * Deno opens a debugger on it, so launchers block it (see cli/debugger_signal.ts).
 *
 * The ops server (hono, prom-client) and `--check`'s preflight are imported only when used,
 * as are the sources' and sinks' modules (see pipeline/build.ts): start-up loads what runs.
 *
 * @module
 */
import { loadConfigFile } from "../pipeline/config/load.ts";
import { loadResources } from "../pipeline/config/files.ts";
import { ConfigError, formatProblem } from "../pipeline/config/errors.ts";
import { createLogger, type LogLevel } from "../pipeline/core/log.ts";
import { branchSpec, Pipeline, PipelineStoppingError } from "../pipeline/build.ts";
import { describeBranch } from "../pipeline/branch.ts";
import { describeSource } from "../pipeline/describe.ts";
import { ReloadStats } from "../pipeline/reloads.ts";
import { configAt, StartError, startError } from "../pipeline/start_error.ts";
import { VERSION } from "./version.ts";
import { watchFiles } from "./watch.ts";
import { BLOCK_SIGUSR1, debuggerSignalState } from "./debugger_signal.ts";
import type { LoadedConfig } from "../pipeline/config/load.ts";
import { dynamicDir, loadDynamicFolder } from "../pipeline/dynamic/folder.ts";
import { leavingOutFailed } from "../pipeline/dynamic/apply.ts";
import { AuditSinkFolder, reportSkipped } from "../pipeline/dynamic/controller.ts";

/** The files a config reads, for `--watch-config`. */
function namedFiles(loaded: LoadedConfig): string[] {
  const { config } = loaded;
  const files = [loaded.file];
  if (typeof config.policy === "string") files.push(config.policy);
  for (const s of config.sinks) {
    if (typeof s.policy === "string") files.push(s.policy);
    if (s.type === "webhook") files.push(s.kubeconfig);
  }
  return files;
}

/** Signals this close after the first are the same stop delivered twice, not a second one. */
const DUPLICATE_SIGNAL_MS = 500;

/** How long the ops server may take to answer its last scrapes once the pipeline stopped. */
const OPS_SHUTDOWN_MS = 500;

/** Options of the daemon command. */
export interface RunOptions {
  readonly config: string;
  readonly check: boolean;
  /** Overrides the config's `logLevel`. */
  readonly logLevel?: LogLevel;
  /** Reload when the config or a file it names changes. */
  readonly watchConfig?: boolean;
}

/**
 * Runs the daemon (or `--check`) and returns the process exit code.
 *
 * @example
 * ```ts
 * Deno.exit(await runDaemon({ config: "pipeline.yaml", check: false }));
 * ```
 */
export async function runDaemon(opts: RunOptions): Promise<number> {
  const bootLog = createLogger(opts.logLevel ?? "info");
  let loaded;
  try {
    loaded = await loadConfigFile(opts.config);
  } catch (err) {
    return reportConfigError(err, opts.check, bootLog);
  }
  const { resources, problems: found } = await loadResources(loaded);
  const dynamic = await loadDynamicFolder(loaded);
  // The daemon runs the valid AuditSinks and reports the others; --check fails on any.
  const problems = opts.check
    ? [
      ...found,
      ...dynamic.problems,
      ...await (await import("../pipeline/config/preflight.ts")).preflight(loaded),
    ]
    : dynamic.folder
    ? [...found, dynamic.folder]
    : found;
  if (problems.length) return reportConfigError(new ConfigError(problems), opts.check, bootLog);
  const log = createLogger(opts.logLevel ?? loaded.config.logLevel);
  for (const w of resources.warnings) log.warn("policy warning", { warning: w });
  if (opts.check) {
    const dir = dynamicDir(loaded);
    const n = dynamic.sinks.length;
    console.log(
      `${opts.config}: OK (${loaded.config.sources.length} sources, ${loaded.config.sinks.length} sinks` +
        (dir === undefined ? ")" : `, ${n} AuditSink${n === 1 ? "" : "s"} in ${dir})`),
    );
    for (const s of resources.sources) console.log(`  source ${describeSource(s)}`);
    for (const s of [...resources.sinks, ...dynamic.sinks]) {
      console.log(`  sink ${describeBranch(branchSpec(s))}`);
    }
    return 0;
  }
  reportSkipped(log, dynamic.problems);

  log.info("auditpipe starting", { version: VERSION, config: opts.config, pid: Deno.pid });
  const usr1 = debuggerSignalState();
  if (usr1 === "deliverable") {
    log.warn(
      "SIGUSR1 is not blocked: a SIGUSR1 from anyone allowed to signal this process opens an " +
        "unauthenticated V8 debugger on 127.0.0.1:9229; start auditpipe through " +
        `'${BLOCK_SIGUSR1} deno run ...' (deno task start and the units in deploy/ do)`,
      { signal: "SIGUSR1" },
    );
  } else log.debug("SIGUSR1 debugger guard", { signal: "SIGUSR1", state: usr1 });
  const reloads = new ReloadStats();
  let pipeline: Pipeline;
  try {
    pipeline = await leavingOutFailed(
      resources,
      dynamic,
      (r) => Pipeline.create(loaded, r, { log }),
      (err) => log.error("cannot start AuditSink; skipped", err.fields),
    );
  } catch (err) {
    if (err instanceof StartError) log.error(`cannot start ${err.component}`, err.fields);
    else log.error("cannot start pipeline", { error: err });
    return 1;
  }
  const folder = new AuditSinkFolder(pipeline, log, { loaded, resources }, dynamic.problems);
  const built = pipeline.describe();
  for (const [source, describe] of built.sources) {
    log.info("source configured", { source, describe });
  }
  for (const [sink, describe] of built.sinks) log.info("sink configured", { sink, describe });
  let ops: Deno.HttpServer | null = null;
  const { listen: opsListen, unhealthyAfter } = loaded.config.server;
  if (opsListen) {
    try {
      const { serveOps } = await import("../pipeline/server.ts");
      ops = serveOps(opsListen, pipeline.stats, {
        unhealthyAfterMs: unhealthyAfter,
        log,
        reloads,
        auditSinks: folder.stats,
      });
    } catch (err) {
      const e = startError("server", "", configAt(loaded, ["server", "listen"]), err);
      log.error("cannot start ops server", { ...e.fields, address: opsListen });
      await pipeline.stop();
      return 1;
    }
  }

  let unwatch = () => {};
  // One reload at a time, of the config or of the AuditSink folder, so each applies what it read.
  const reload = (why: string) => folder.serially(() => reloadConfig(why));
  const reloadConfig = async (why: string) => {
    let next;
    try {
      next = await loadConfigFile(opts.config);
      const { resources, problems } = await loadResources(next);
      const dyn = await loadDynamicFolder(next);
      if (dyn.folder) problems.push(dyn.folder);
      if (problems.length) throw new ConfigError(problems);
      reportSkipped(log, dyn.problems);
      const loadedNext = next;
      const summary = await leavingOutFailed(
        resources,
        dyn,
        (all) => pipeline.reload(loadedNext, all),
        folder.skipped,
      );
      folder.configured({ loaded: next, resources }, dyn.problems);
      for (const w of resources.warnings) log.warn("policy warning", { warning: w });
      if (summary.sources.failed.length) {
        reloads.failed();
        log.error("reload applied in part: sources failed to start with their new config", {
          trigger: why,
          ...summary,
        });
      } else {
        reloads.succeeded();
        // What was started, replaced or added, as it now runs.
        const now = pipeline.describe();
        const changed = [
          ...summary.sources.started.map((n) => `source ${now.sources.get(n)}`),
          ...[...summary.sinks.replaced, ...summary.sinks.added].map((n) =>
            `sink ${now.sinks.get(n)}`
          ),
        ];
        log.info("config reloaded", { trigger: why, ...summary, changed });
      }
    } catch (err) {
      if (err instanceof PipelineStoppingError) {
        log.info("reload abandoned: the pipeline is stopping", { trigger: why });
        return;
      }
      reloads.failed();
      const fields = err instanceof ConfigError
        ? { problems: err.problems.map(formatProblem) }
        : err instanceof StartError
        ? err.fields
        : { error: err };
      log.error("reload refused; the running pipeline is kept", { trigger: why, ...fields });
      return;
    }
    if (opts.watchConfig) {
      unwatch();
      unwatch = watchFiles(namedFiles(next), () => reload("watch"));
    }
  };
  if (opts.watchConfig) unwatch = watchFiles(namedFiles(loaded), () => reload("watch"));
  folder.watch(loaded);

  let firstSignalAt: number | null = null;
  const onStop = (sig: Deno.Signal) => () => {
    const now = performance.now();
    if (firstSignalAt !== null) {
      // Ctrl-C, `deno task` and `timeout` deliver one stop to the whole process group, so
      // the same signal can arrive twice at once; only a later one means "stop now".
      if (now - firstSignalAt < DUPLICATE_SIGNAL_MS) return;
      log.error("second signal; exiting now without draining", { signal: sig });
      Deno.exit(1);
    }
    firstSignalAt = now;
    log.info("stopping: draining every sink", { signal: sig });
    pipeline.stop();
  };
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", onStop("SIGINT")],
    ["SIGTERM", onStop("SIGTERM")],
    // One signal for logrotate's postrotate and for a config change: reopening first means
    // a refused reload still leaves the sinks writing to fresh files.
    ["SIGHUP", () => {
      log.info("reopening log files and reloading config", { signal: "SIGHUP" });
      pipeline.reopen()
        .then(() => log.info("log files reopened", { signal: "SIGHUP" }))
        .catch((err) => log.error("reopen failed", { error: err }))
        .then(() => reload("SIGHUP"));
    }],
  ];
  for (const [sig, h] of handlers) Deno.addSignalListener(sig, h);

  await pipeline.run();
  unwatch();
  folder.stop();
  for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
  if (ops) {
    // A scrape under way may finish; a client that holds its connection does not hold the exit.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      ops.shutdown(),
      new Promise((r) => timer = setTimeout(r, OPS_SHUTDOWN_MS)),
    ]);
    clearTimeout(timer);
  }
  log.info("auditpipe stopped", { failed: pipeline.failed });
  return pipeline.failed ? 1 : 0;
}

function reportConfigError(
  err: unknown,
  check: boolean,
  log: ReturnType<typeof createLogger>,
): number {
  if (!(err instanceof ConfigError)) throw err;
  if (check) {
    for (const p of err.problems) console.error(formatProblem(p));
    console.error(`${err.problems.length} problem${err.problems.length === 1 ? "" : "s"} found`);
  } else {
    log.error("invalid config", { problems: err.problems.map(formatProblem) });
  }
  return 2;
}
