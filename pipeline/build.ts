/**
 * The builder: turns a validated config and the files it names into a running graph of
 * sources, a fan-out and one branch per sink, and runs its lifecycle: start, reload, drain.
 *
 * @module
 */
import { createSink, sinkEventSize } from "./sinks.ts";
import { Branch, type BranchSpec } from "./branch.ts";
import { type Clock, systemClock } from "./core/clock.ts";
import type { LoadedConfig } from "./config/load.ts";
import type { ResolvedSink, ResolvedSource, Resources } from "./config/files.ts";
import type { Logger } from "./core/log.ts";
import { PipelineStats } from "./core/stats.ts";
import { FanOut } from "./stages/fanout.ts";
import { annotateStage } from "./stages/annotate.ts";
import type { DescribedSource, Source } from "./ingest/source.ts";
import { type ChunkStream, describedSource, streamSource } from "./ingest/source.ts";
import { describeSink, describeSource } from "./describe.ts";
import { webhookSource } from "./ingest/webhook.ts";
import { tailSource } from "./ingest/tail/mod.ts";
import { stdinSource } from "./ingest/stdin.ts";
import { natsSource } from "./ingest/nats.ts";
import type { Chunk } from "./core/envelope.ts";

/** What a pipeline needs from its host process. */
export interface PipelineDeps {
  readonly log: Logger;
  readonly clock?: Clock;
  readonly stats?: PipelineStats;
  /** Standard input, for stdin sources. */
  readonly stdin?: ReadableStream<Uint8Array>;
}

/** A source and what it was built from. */
interface RunningSource {
  readonly source: DescribedSource;
  readonly fingerprint: string;
  ended: boolean;
}

/**
 * The branch a resolved sink gets: its stages' settings and what describes it.
 *
 * @example
 * ```ts
 * describeBranch(branchSpec(resources.sinks[0])); // "local: policy(...) → coalesce → log(...)"
 * ```
 */
export function branchSpec(resolved: ResolvedSink): BranchSpec {
  const cfg = resolved.config;
  return {
    name: cfg.name!,
    mode: cfg.mode,
    batch: cfg.batch,
    truncate: cfg.truncate,
    annotations: cfg.annotations,
    policy: resolved.policy?.compiled ?? null,
    maxInFlight: cfg.type === "webhook" ? cfg.maxInFlight : 1,
    size: sinkEventSize(cfg),
    compact: cfg.type === "webhook" ||
      ((cfg.type === "log" || cfg.type === "stdout") && cfg.format === "json"),
    labels: { policy: resolved.policy?.from, sink: describeSink(resolved) },
  };
}

/** What a reload changed. */
export interface ReloadSummary {
  readonly sources: { kept: string[]; started: string[]; stopped: string[] };
  readonly sinks: { kept: string[]; replaced: string[]; added: string[]; removed: string[] };
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
  /** Set when a source failed (a port in use, a permission missing): the daemon exits 1. */
  failed = false;
  #sources: RunningSource[] = [];
  #fanout: FanOut;
  /** Branches by sink name, with the fingerprint each was built from. */
  #branches = new Map<string, { branch: Branch; fingerprint: string }>();
  /** Old fan-outs still draining after a reload. */
  #retiring = new Set<Promise<void>>();
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #deps: PipelineDeps;
  #shutdownTimeout: number;
  readonly #abort = new AbortController();
  #stopping: Promise<void> | null = null;
  #running = false;
  #allEnded!: () => void;
  readonly #ended = new Promise<void>((r) => this.#allEnded = r);
  #reloading: Promise<unknown> = Promise.resolve();

  private constructor(deps: PipelineDeps, shutdownTimeout: number) {
    this.#deps = deps;
    this.#log = deps.log;
    this.#clock = deps.clock ?? systemClock;
    this.stats = deps.stats ?? new PipelineStats();
    this.#shutdownTimeout = shutdownTimeout;
    this.#fanout = new FanOut([], deps.log);
  }

  /** Builds the graph: opens every sink and prepares every source (not started yet). */
  static async create(
    loaded: LoadedConfig,
    resources: Resources,
    deps: PipelineDeps,
  ): Promise<Pipeline> {
    const p = new Pipeline(deps, loaded.config.shutdownTimeout);
    const branches: Branch[] = [];
    try {
      for (const sink of resources.sinks) {
        const branch = await p.#buildBranch(sink);
        branches.push(branch);
        p.#branches.set(sink.config.name!, { branch, fingerprint: sink.fingerprint });
      }
    } catch (err) {
      await Promise.allSettled(branches.map((b) => b.writer.close()));
      throw err;
    }
    p.#fanout = new FanOut(branches, deps.log);
    p.#sources = resources.sources.map((src) => ({
      source: p.#buildSource(src),
      fingerprint: src.fingerprint,
      ended: false,
    }));
    return p;
  }

  async #buildBranch(resolved: ResolvedSink, after?: Promise<unknown>): Promise<Branch> {
    const cfg = resolved.config;
    const name = cfg.name!;
    const log = this.#log.with({ sink: name });
    const stats = this.stats.sink(name);
    const clock = this.#clock;
    const sink = await createSink(
      cfg,
      { name, log, clock, stats, signal: this.#abort.signal },
      resolved.target,
      resolved.nats,
    );
    return new Branch(branchSpec(resolved), sink, {
      stats,
      levels: this.stats.levels,
      log,
      clock,
      after,
    });
  }

  #buildSource(resolved: ResolvedSource): DescribedSource {
    return describedSource(this.#openSource(resolved), describeSource(resolved));
  }

  #openSource(resolved: ResolvedSource): Source {
    const cfg = resolved.config;
    const name = cfg.name!;
    const log = this.#log.with({ source: name });
    const stats = this.stats.source(name);
    const clock = this.#clock;
    // Annotating keeps the stream's `finished`, so stopping still waits for the checkpoint.
    const annotate = (s: ChunkStream): ChunkStream =>
      cfg.annotations
        ? Object.assign(s.pipeThrough(annotateStage(cfg.annotations)), { finished: s.finished })
        : s;
    switch (cfg.type) {
      case "webhook":
        return webhookSource(cfg, {
          name,
          log,
          stats,
          token: resolved.token,
          tls: resolved.tls,
        });
      case "tail":
        return streamSource(
          name,
          (signal) => annotate(tailSource(cfg, { name, log, stats, clock, signal })),
        );
      case "stdin":
        return streamSource(
          name,
          (signal) => annotate(stdinSource(cfg, { name, log, stats, signal }, this.#deps.stdin)),
        );
      case "nats":
        return streamSource(
          name,
          (signal) =>
            annotate(
              natsSource(cfg, { name, log, stats, signal, security: resolved.nats }),
            ),
        );
    }
  }

  readonly #dispatch = (chunk: Chunk) => this.#fanout.dispatch(chunk);

  #start(rs: RunningSource): void {
    rs.source.run(this.#dispatch).catch((err) => {
      this.failed = true;
      this.#log.error("source failed; stopping", { source: rs.source.name, error: err });
      this.stop();
    }).finally(() => {
      rs.ended = true;
      // Sources a reload stopped are no longer listed and do not end the pipeline.
      if (this.#sources.includes(rs) && this.#sources.every((s) => s.ended)) this.#allEnded();
    });
  }

  /**
   * Starts every source; resolves when the pipeline has stopped: every source ended by itself
   * (stdin at EOF) or {@linkcode Pipeline.stop} was called, and the sinks drained.
   */
  async run(): Promise<void> {
    this.#running = true;
    for (const rs of this.#sources) this.#start(rs);
    if (this.#sources.length === 0) this.#allEnded();
    await Promise.race([this.#ended, this.#stopRequested]);
    await this.stop();
  }

  #requestStop!: () => void;
  readonly #stopRequested = new Promise<void>((r) => this.#requestStop = r);

  /**
   * Stops intake and drains every branch through its sink (still throttled) within the
   * shutdown timeout; what is left then is counted as dropped for `shutdown` and logged.
   */
  stop(): Promise<void> {
    this.#requestStop();
    return this.#stopping ??= this.#reloading.then(() => this.#drain());
  }

  async #drain(): Promise<void> {
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((r) =>
      timer = setTimeout(() => r("timeout"), this.#shutdownTimeout)
    );
    // The timeout covers stopping the sources too: a webhook request waits for its ack, and
    // an ack waits for a blocking sink that may be stuck retrying.
    const drained = (async () => {
      await Promise.allSettled(this.#sources.map((s) => s.source.stop()));
      await Promise.all([this.#fanout.close(), ...this.#retiring]);
    })();
    const outcome = await Promise.race([drained.then(() => "drained" as const), timedOut]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      this.#abort.abort(new Error("shutdown timeout"));
      for (const s of this.stats.sinks.values()) {
        // The branch is abandoned: what it holds will not be written.
        const left = s.ledger.clear();
        if (left > 0) {
          s.drop("shutdown", left);
          this.#log.error("shutdown timeout; events not delivered", { sink: s.name, count: left });
        }
      }
    }
    this.#log.info("pipeline stopped", {
      outcome,
      seconds: Math.round(performance.now() - started) / 1000,
      sinks: Object.fromEntries(
        [...this.stats.sinks.values()].map((s) => [s.name, {
          received: s.received,
          written: s.written,
          dropped: Object.fromEntries(Object.entries(s.dropped).filter(([, n]) => n > 0)),
          buffered: s.buffered,
        }]),
      ),
    });
  }

  /**
   * Replaces the running graph with one built from a new config, losing and duplicating
   * nothing: sources whose config did not change keep running (sockets, tail positions);
   * sinks whose branch did not change are kept; a changed sink gets a new branch that
   * writes only after the old one has drained, so its events stay in order.
   */
  reload(loaded: LoadedConfig, resources: Resources): Promise<ReloadSummary> {
    const next = this.#reloading.then(() => this.#reload(loaded, resources));
    this.#reloading = next.catch(() => {});
    return next;
  }

  async #reload(loaded: LoadedConfig, resources: Resources): Promise<ReloadSummary> {
    if (this.#stopping) throw new Error("pipeline is stopping");
    const { config } = loaded;
    const summary: ReloadSummary = {
      sources: { kept: [], started: [], stopped: [] },
      sinks: { kept: [], replaced: [], added: [], removed: [] },
    };

    // New branches first: a sink that cannot be opened aborts the reload with nothing changed.
    const next = new Map<string, { branch: Branch; fingerprint: string }>();
    const created: Branch[] = [];
    try {
      for (const sink of resources.sinks) {
        const name = sink.config.name!;
        const fingerprint = sink.fingerprint;
        const old = this.#branches.get(name);
        if (old && old.fingerprint === fingerprint) {
          next.set(name, old);
          summary.sinks.kept.push(name);
          continue;
        }
        const branch = await this.#buildBranch(sink, old?.branch.done);
        created.push(branch);
        next.set(name, { branch, fingerprint });
        (old ? summary.sinks.replaced : summary.sinks.added).push(name);
      }
    } catch (err) {
      await Promise.allSettled(created.map((b) => b.writer.close()));
      throw err;
    }
    for (const name of this.#branches.keys()) {
      if (!next.has(name)) summary.sinks.removed.push(name);
    }

    const oldFanout = this.#fanout;
    const kept = new Set([...next.values()].map((v) => v.branch));
    this.#fanout = new FanOut([...kept], this.#log);
    this.#branches = next;
    this.#shutdownTimeout = config.shutdownTimeout;
    const retiring = oldFanout.close(kept);
    this.#retiring.add(retiring);
    retiring.finally(() => this.#retiring.delete(retiring));

    // Sources: keep the unchanged, stop the removed or changed, start the new.
    const wanted = resources.sources;
    const keptSources: RunningSource[] = [];
    const stopping: RunningSource[] = [];
    for (const rs of this.#sources) {
      const w = wanted.find((w) => w.config.name === rs.source.name);
      if (w && w.fingerprint === rs.fingerprint && !rs.ended) keptSources.push(rs);
      else stopping.push(rs);
    }
    // A changed source must release its socket or file before its successor takes it.
    this.#sources = keptSources;
    await Promise.allSettled(stopping.map((rs) => rs.source.stop()));
    const started: RunningSource[] = [];
    for (const w of wanted) {
      if (keptSources.some((rs) => rs.source.name === w.config.name)) {
        summary.sources.kept.push(w.config.name!);
        continue;
      }
      started.push({ source: this.#buildSource(w), fingerprint: w.fingerprint, ended: false });
      summary.sources.started.push(w.config.name!);
    }
    summary.sources.stopped.push(...stopping.map((rs) => rs.source.name));
    this.#sources = [...keptSources, ...started];
    if (this.#running) { for (const rs of started) this.#start(rs); }
    return summary;
  }

  /**
   * Every running source and sink branch as one line each, by name (see
   * {@linkcode describeSource} and {@linkcode describeBranch}).
   */
  describe(): { sources: Map<string, string>; sinks: Map<string, string> } {
    return {
      sources: new Map(this.#sources.map((rs) => [rs.source.name, rs.source.describe()])),
      sinks: new Map([...this.#branches].map(([name, b]) => [name, b.branch.describe()])),
    };
  }

  /** Reopens the files of every sink that has any (SIGUSR1). */
  async reopen(): Promise<void> {
    await Promise.all([...this.#branches.values()].map((b) => b.branch.sink.reopen?.()));
  }
}
