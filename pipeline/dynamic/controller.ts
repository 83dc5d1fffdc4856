/**
 * The running side of `dynamic.dir`: watches the folder and, on each change, reloads the
 * pipeline with the sinks the config declares plus the folder's AuditSinks as they are now,
 * so only AuditSink branches whose object changed are started, replaced or stopped. Config
 * reloads (SIGHUP, `--watch-config`) go through the same queue, so each reload applies what
 * it read, and tell the controller what the config now declares.
 *
 * @module
 */
import type { LoadedConfig } from "../config/load.ts";
import type { Resources } from "../config/files.ts";
import type { Logger } from "../core/log.ts";
import { formatProblem, type Problem } from "../core/problem.ts";
import { type Pipeline, PipelineStoppingError } from "../build.ts";
import { StartError } from "../start_error.ts";
import { dynamicDir, loadDynamicFolder } from "./folder.ts";
import { leavingOutFailed } from "./apply.ts";
import { watchFolder } from "./watch.ts";
import { AUDIT_SINK_PREFIX } from "./names.ts";
import { AuditSinkStats } from "./stats.ts";

/** What the config declares, AuditSinks apart. */
interface Declared {
  readonly loaded: LoadedConfig;
  readonly resources: Resources;
}

/**
 * Keeps a pipeline's AuditSinks in step with their folder.
 *
 * @example
 * ```ts
 * const folder = new AuditSinkFolder(pipeline, log, { loaded, resources }, dynamic.problems);
 * folder.watch(loaded);
 * const reload = (why: string) => folder.serially(() => reloadConfig(why));
 * // ... after the pipeline stopped:
 * folder.stop();
 * ```
 */
export class AuditSinkFolder {
  /** For `/metrics`. */
  readonly stats = new AuditSinkStats();
  #declared: Declared;
  #queue: Promise<void> = Promise.resolve();
  #unwatch = () => {};
  #watched: string | undefined;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly log: Logger,
    declared: Declared,
    /** What the first read of the folder left out, logged by the caller or now. */
    problems: readonly Problem[],
  ) {
    this.#declared = declared;
    this.#count(problems.length);
  }

  /** Runs `fn` once every reload queued before it has finished. */
  serially(fn: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(fn);
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Logs a sink that could not be opened and was left out. */
  readonly skipped = (err: StartError): void => {
    this.log.error("cannot start AuditSink; skipped", err.fields);
  };

  /**
   * A config reload applied `declared` with a read of the folder that found `problems`;
   * the folder `declared` names is watched afresh (it may have been removed and made again).
   */
  configured(declared: Declared, problems: readonly Problem[]): void {
    this.#declared = declared;
    this.#count(problems.length);
    this.#stopWatching();
    this.watch(declared.loaded);
  }

  /** Watches the folder `loaded` names, unless it is the one watched already. */
  watch(loaded: LoadedConfig): void {
    const dir = dynamicDir(loaded);
    if (dir === this.#watched) return;
    this.#stopWatching();
    this.#watched = dir;
    if (dir === undefined) return;
    try {
      this.#unwatch = watchFolder(dir, () => this.reload());
    } catch (err) {
      this.log.error("cannot watch the AuditSink folder; changes apply on SIGHUP", {
        dir,
        error: err,
      });
    }
    // Changes made between reading the folder and watching it.
    this.reload();
  }

  /** Stops watching. */
  stop(): void {
    this.#stopWatching();
  }

  #stopWatching(): void {
    this.#unwatch();
    this.#unwatch = () => {};
    this.#watched = undefined;
  }

  /** How many AuditSinks run now, and the problems of the last read. */
  #count(problems: number): void {
    const names = [...this.pipeline.describe().sinks.keys()];
    this.stats.read(names.filter((n) => n.startsWith(AUDIT_SINK_PREFIX)).length, problems);
  }

  /** Reads the folder again and applies what changed, after any reload under way. */
  reload(): Promise<void> {
    return this.serially(() => this.#reload());
  }

  async #reload(): Promise<void> {
    const { loaded, resources } = this.#declared;
    const dyn = await loadDynamicFolder(loaded);
    if (dyn.folder) {
      this.stats.reloaded(false);
      this.log.error("AuditSink folder unreadable; the running AuditSinks are kept", {
        trigger: "folder",
        problem: formatProblem(dyn.folder),
      });
      return;
    }
    reportSkipped(this.log, dyn.problems);
    try {
      const summary = await leavingOutFailed(
        resources,
        dyn,
        (all) => this.pipeline.reload(loaded, all),
        this.skipped,
      );
      this.stats.reloaded(true);
      this.#count(dyn.problems.length);
      const { added, replaced, removed } = summary.sinks;
      if (added.length + replaced.length + removed.length === 0) {
        this.log.debug("AuditSink folder changed; no AuditSink changed", { trigger: "folder" });
        return;
      }
      const now = this.pipeline.describe();
      this.log.info("AuditSinks reloaded", {
        trigger: "folder",
        added,
        replaced,
        removed,
        changed: [...replaced, ...added].map((n) => `sink ${now.sinks.get(n)}`),
      });
    } catch (err) {
      if (err instanceof PipelineStoppingError) return;
      this.stats.reloaded(false);
      const fields = err instanceof StartError ? err.fields : { error: err };
      this.log.error("AuditSink change refused; the running sinks are kept", {
        trigger: "folder",
        ...fields,
      });
    }
  }
}

/**
 * Logs each AuditSink left out, with where it is and why.
 *
 * @example
 * ```ts
 * reportSkipped(log, (await loadDynamicFolder(loaded)).problems);
 * ```
 */
export function reportSkipped(log: Logger, problems: readonly Problem[]): void {
  for (const p of problems) log.error("invalid AuditSink; skipped", { problem: formatProblem(p) });
}
