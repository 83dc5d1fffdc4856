/**
 * The builder: turns a validated config and the files it names into a running graph of
 * sources, a fan-out and one branch per sink, and runs its lifecycle (start, drain, stop).
 *
 * @module
 */
import { createSink, sinkEventSize } from "../backends/mod.ts";
import { Branch } from "./branch.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { LoadedConfig } from "./config/load.ts";
import type { Resources } from "./config/files.ts";
import type { Logger } from "./log.ts";
import { PipelineStats } from "./stats.ts";
import { FanOut } from "./stages/fanout.ts";
import { annotateStage } from "./stages/annotate.ts";
import type { Source } from "./ingest/source.ts";
import { streamSource } from "./ingest/source.ts";
import { webhookSource } from "./ingest/webhook.ts";
import { tailSource } from "./ingest/tail.ts";
import { stdinSource } from "./ingest/stdin.ts";
import type { Chunk } from "./envelope.ts";

/** What a pipeline needs from its host process. */
export interface PipelineDeps {
  readonly log: Logger;
  readonly clock?: Clock;
  readonly stats?: PipelineStats;
  /** Standard input, for stdin sources. */
  readonly stdin?: ReadableStream<Uint8Array>;
}

/**
 * A running pipeline.
 *
 * @example
 * ```ts
 * const pipeline = await Pipeline.create(loaded, resources, { log });
 * const ended = pipeline.run();       // resolves when every source ended and all drained
 * Deno.addSignalListener("SIGTERM", () => pipeline.stop());
 * await ended;
 * ```
 */
export class Pipeline {
  readonly stats: PipelineStats;
  readonly #sources: Source[];
  readonly #fanout: FanOut;
  readonly #branches: Branch[];
  readonly #log: Logger;
  readonly #shutdownTimeout: number;
  readonly #abort = new AbortController();
  #stopping: Promise<void> | null = null;
  /** Set when a source failed (a port in use, a permission missing): the daemon exits 1. */
  failed = false;

  private constructor(
    sources: Source[],
    branches: Branch[],
    stats: PipelineStats,
    log: Logger,
    shutdownTimeout: number,
  ) {
    this.#sources = sources;
    this.#branches = branches;
    this.#fanout = new FanOut(branches, log);
    this.stats = stats;
    this.#log = log;
    this.#shutdownTimeout = shutdownTimeout;
  }

  /** Builds the graph: opens every sink and prepares every source (not started yet). */
  static async create(
    loaded: LoadedConfig,
    resources: Resources,
    deps: PipelineDeps,
  ): Promise<Pipeline> {
    const { config } = loaded;
    const log = deps.log;
    const clock = deps.clock ?? systemClock;
    const stats = deps.stats ?? new PipelineStats();
    const abort = new AbortController();

    const branches: Branch[] = [];
    try {
      for (const [i, cfg] of config.sinks.entries()) {
        const name = cfg.name!;
        const sinkLog = log.with({ sink: name });
        const sinkStats = stats.sink(name);
        const sink = await createSink(
          cfg,
          { name, log: sinkLog, clock, stats: sinkStats, signal: abort.signal },
          resources.webhookTargets[i],
        );
        branches.push(
          new Branch(
            {
              name,
              mode: cfg.mode,
              batch: cfg.batch,
              truncate: cfg.truncate,
              annotations: cfg.annotations,
              policy: resources.sinkPolicies[i],
              maxInFlight: cfg.type === "webhook" ? cfg.maxInFlight : 1,
              size: sinkEventSize(cfg),
            },
            sink,
            { stats: sinkStats, levels: stats.levels, log: sinkLog, clock },
          ),
        );
      }
    } catch (err) {
      await Promise.allSettled(branches.map((b) => b.writer.close()));
      throw err;
    }

    const sources: Source[] = config.sources.map((cfg, i) => {
      const name = cfg.name!;
      const srcLog = log.with({ source: name });
      const srcStats = stats.source(name);
      const annotate = (s: ReadableStream<Chunk>) =>
        cfg.annotations ? s.pipeThrough(annotateStage(cfg.annotations)) : s;
      switch (cfg.type) {
        case "webhook":
          return webhookSource(cfg, {
            name,
            log: srcLog,
            stats: srcStats,
            token: resources.tokens[i],
            tls: resources.tls[i],
          });
        case "tail":
          return streamSource(
            name,
            (signal) =>
              annotate(tailSource(cfg, { name, log: srcLog, stats: srcStats, clock, signal })),
          );
        case "stdin":
          return streamSource(
            name,
            (signal) =>
              annotate(
                stdinSource(cfg, { name, log: srcLog, stats: srcStats, signal }, deps.stdin),
              ),
          );
        case "nats":
          throw new Error(`source ${name}: the nats source is not available yet`);
      }
    });
    const p = new Pipeline(sources, branches, stats, log, config.shutdownTimeout);
    p.#abort.signal.addEventListener("abort", () => abort.abort(p.#abort.signal.reason));
    return p;
  }

  /** Starts every source; resolves when all sources ended and the sinks drained. */
  async run(): Promise<void> {
    const dispatch = (chunk: Chunk) => this.#fanout.dispatch(chunk);
    const ended = this.#sources.map((s) =>
      s.run(dispatch).catch((err) => {
        this.failed = true;
        this.#log.error("source failed; stopping", { source: s.name, error: err });
        this.stop();
      })
    );
    await Promise.all(ended);
    await this.stop();
  }

  /**
   * Stops intake and drains every branch through its sink (still throttled) within the
   * shutdown timeout; what is left then is counted as dropped for `shutdown` and logged.
   */
  stop(): Promise<void> {
    return this.#stopping ??= this.#drain();
  }

  async #drain(): Promise<void> {
    const started = performance.now();
    await Promise.allSettled(this.#sources.map((s) => s.stop()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((r) =>
      timer = setTimeout(() => r("timeout"), this.#shutdownTimeout)
    );
    const outcome = await Promise.race([
      this.#fanout.close().then(() => "drained" as const),
      timedOut,
    ]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      this.#abort.abort(new Error("shutdown timeout"));
      for (const b of this.#branches) {
        const left = b.deps.stats.buffered;
        if (left > 0) {
          b.deps.stats.drop("shutdown", left);
          this.#log.error("shutdown timeout; events not delivered", {
            sink: b.spec.name,
            count: left,
          });
        }
      }
    }
    this.#log.info("pipeline stopped", {
      outcome,
      seconds: Math.round(performance.now() - started) / 1000,
    });
  }

  /** Reopens the files of every sink that has any (SIGUSR1). */
  async reopen(): Promise<void> {
    await Promise.all(this.#branches.map((b) => b.sink.reopen?.()));
  }
}
