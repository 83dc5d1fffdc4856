/**
 * The builder: turns a validated config and the files it names into a running graph of
 * sources, a fan-out and one branch per sink, and runs its lifecycle: start, reload, drain.
 * The modules of sources, sinks and disk buffers are imported when a config first uses them
 * (see `source_modules.ts`, `sinks.ts`), so start-up loads only what runs.
 *
 * @module
 */
import { createSink, sinkEventSize } from "./sinks.ts";
import { Branch, type BranchSpec, loadDiskLanes, loadedDiskLanes } from "./branch.ts";
import { type Clock, systemClock } from "./core/clock.ts";
import type { LoadedConfig } from "./config/load.ts";
import type { ResolvedSink, ResolvedSource, Resources } from "./config/files.ts";
import type { SourceConfig } from "./config/schema.ts";
import type { Logger } from "./core/log.ts";
import { PipelineStats, type SinkStats } from "./core/stats.ts";
import { componentAt, configAt, type StartError, startError } from "./start_error.ts";
import { FanOut } from "./stages/fanout.ts";
import { annotateStage } from "./stages/annotate.ts";
import type { DescribedSource, Source } from "./ingest/source.ts";
import { type ChunkStream, describedSource, streamSource } from "./ingest/source.ts";
import { describeSink, describeSource } from "./describe.ts";
import { loadSourceModules, sourceModule } from "./source_modules.ts";
import type { Chunk } from "./core/envelope.ts";
import { parseListen } from "./core/listen.ts";

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
  readonly cfg: SourceConfig;
  /** Where it is configured (`pipeline.yaml:4:13 sources[0].listen`), for errors. */
  readonly at: string;
  /** Builds it again from the same config: a reload brings it back when its successor fails. */
  readonly rebuild: () => DescribedSource;
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
    buffer: cfg.buffer,
    annotations: cfg.annotations,
    policy: resolved.policy?.compiled ?? null,
    maxInFlight: cfg.type === "webhook" ? cfg.maxInFlight : 1,
    size: sinkEventSize(cfg),
    compact: cfg.type === "webhook" ||
      ((cfg.type === "log" || cfg.type === "stdout") && cfg.format === "json"),
    labels: { policy: resolved.policy?.from, sink: describeSink(resolved) },
  };
}

/** A source a reload could not start with its new config, and what runs instead. */
export interface ReloadFailure {
  readonly source: string;
  readonly at: string;
  readonly error: string;
  /** `previous`: it runs with its previous config; `none`: nothing listens for it. */
  readonly running: "previous" | "none";
}

/** What a reload changed. */
export interface ReloadSummary {
  readonly sources: {
    kept: string[];
    started: string[];
    stopped: string[];
    /** Sources that could not start after their predecessor stopped: the reload is partial. */
    failed: ReloadFailure[];
  };
  readonly sinks: { kept: string[]; replaced: string[]; added: string[]; removed: string[] };
}

/**
 * A reload that began while the pipeline was stopping, or was overtaken by a stop: what it
 * had not done yet is left undone.
 *
 * @example
 * ```ts
 * try { await pipeline.reload(next, resources); } catch (e) {
 *   if (e instanceof PipelineStoppingError) log.info("reload abandoned: stopping");
 * }
 * ```
 */
export class PipelineStoppingError extends Error {
  override name = "PipelineStoppingError";
  constructor() {
    super("pipeline is stopping");
  }
}

/**
 * How long before the shutdown deadline sinks are told to give up (their retries, their
 * requests): long enough for them to fail what they hold and count it themselves, so the
 * daemon still exits by the deadline.
 */
const ABORT_LEAD_MS = 250;

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
  /** Aborted shortly before the shutdown deadline: sinks stop retrying and fail what they hold. */
  readonly #abort = new AbortController();
  #stopping: Promise<void> | null = null;
  /** Set as soon as a stop is asked for, so a reload under way leaves the rest undone. */
  #stopAsked = false;
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
    for (const [i, sink] of resources.sinks.entries()) {
      try {
        const branch = await p.#buildBranch(sink);
        branches.push(branch);
        p.#branches.set(sink.config.name!, { branch, fingerprint: sink.fingerprint });
      } catch (err) {
        await Promise.allSettled(branches.map((b) => b.writer.close()));
        throw startError("sink", sink.config.name!, sink.at ?? componentAt(loaded, "sink", i), err);
      }
      try {
        // A buffer folder another daemon (or sink) holds fails the start; the backlog's scan
        // goes on after it.
        await branches.at(-1)!.disk?.locked();
      } catch (err) {
        await Promise.allSettled(branches.map((b) => b.writer.close()));
        const at = configAt(loaded, ["sinks", i, "buffer", "path"]);
        throw startError("sink", sink.config.name!, at, err);
      }
    }
    p.#fanout = new FanOut(branches, deps.log);
    await loadSourceModules(resources.sources.map((s) => s.config.type));
    p.#sources = resources.sources.map((src, i) => p.#prepare(src, i, loaded));
    return p;
  }

  /** A source built from `resolved` (the `i`th of `loaded`), not started. */
  #prepare(resolved: ResolvedSource, i: number, loaded: LoadedConfig): RunningSource {
    const rebuild = () => this.#buildSource(resolved);
    return {
      source: rebuild(),
      fingerprint: resolved.fingerprint,
      cfg: resolved.config,
      at: componentAt(loaded, "source", i),
      rebuild,
      ended: false,
    };
  }

  async #buildBranch(resolved: ResolvedSink, after?: Promise<unknown>): Promise<Branch> {
    const cfg = resolved.config;
    const name = cfg.name!;
    const log = this.#log.with({ sink: name });
    const stats = this.stats.sink(name);
    const clock = this.#clock;
    // Branch builds its disk lane at once, so the disk buffer's modules come first.
    if (cfg.buffer.type === "disk") await loadDiskLanes();
    const sink = await createSink(
      cfg,
      { name, log, clock, stats, signal: this.#abort.signal },
      resolved.target,
      resolved.nats,
      resolved.signingKey,
    );
    return new Branch(branchSpec(resolved), sink, {
      stats,
      levels: this.stats.levels,
      log,
      clock,
      after,
      signal: this.#abort.signal,
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
      case "webhook": {
        const { webhookSource } = sourceModule("webhook");
        return webhookSource(cfg, { name, log, stats, token: resolved.token, tls: resolved.tls });
      }
      case "tail": {
        const { tailSource } = sourceModule("tail");
        return streamSource(
          name,
          (signal) => annotate(tailSource(cfg, { name, log, stats, clock, signal })),
        );
      }
      case "stdin": {
        const { stdinSource } = sourceModule("stdin");
        return streamSource(
          name,
          (signal) => annotate(stdinSource(cfg, { name, log, stats, signal }, this.#deps.stdin)),
        );
      }
      case "nats": {
        const { natsSource } = sourceModule("nats");
        const security = resolved.nats;
        return streamSource(
          name,
          (signal) => annotate(natsSource(cfg, { name, log, stats, signal, security })),
        );
      }
    }
  }

  readonly #dispatch = (chunk: Chunk) => this.#fanout.dispatch(chunk);

  /**
   * Starts `rs`; resolves once it accepts input (a webhook source has bound its socket), or
   * rejects with a {@linkcode StartError} when it could not start: the caller reports that
   * (startup exits, a reload keeps what ran). A failure after that stops the pipeline.
   */
  #start(rs: RunningSource): Promise<void> {
    let started = false;
    let running: Promise<void>;
    try {
      running = rs.source.run(this.#dispatch);
    } catch (err) {
      // Deno.serve throws at once for a port in use or out of range.
      running = Promise.reject(err);
    }
    running.catch((err) => {
      if (!started) return;
      this.failed = true;
      this.#log.error("source failed; stopping", {
        source: rs.source.name,
        at: rs.at,
        error: err,
      });
      this.stop();
    }).finally(() => {
      rs.ended = true;
      // Sources a reload stopped are no longer listed and do not end the pipeline.
      if (this.#sources.includes(rs) && this.#sources.every((s) => s.ended)) this.#allEnded();
    });
    return Promise.race([rs.source.listening ?? Promise.resolve(), running]).then(
      () => {
        started = true;
      },
      (err) => {
        throw startError("source", rs.source.name, rs.at, err);
      },
    );
  }

  /**
   * Starts every source; resolves when the pipeline has stopped: every source ended by itself
   * (stdin at EOF) or {@linkcode Pipeline.stop} was called, and the sinks drained. A source
   * that cannot start (its port in use) is logged once, with where it is configured, and
   * stops the pipeline with {@linkcode Pipeline.failed} set.
   */
  async run(): Promise<void> {
    this.#running = true;
    for (const rs of this.#sources) {
      this.#start(rs).catch((err: StartError) => {
        this.failed = true;
        this.#log.error("cannot start source", err.fields);
        this.stop();
      });
    }
    if (this.#sources.length === 0) this.#allEnded();
    await Promise.race([this.#ended, this.#stopRequested]);
    await this.stop();
  }

  #requestStop!: () => void;
  readonly #stopRequested = new Promise<void>((r) => this.#requestStop = r);

  /**
   * Stops intake and drains every branch through its sink (still throttled). One deadline,
   * `shutdownTimeout` from this call, bounds all of it: a reload under way, sources waiting
   * for their requests' acks, sinks retrying or blocked in a write. Shortly before it the
   * sinks are aborted (retries end); at it, what is still held is counted as dropped for
   * `shutdown` and logged, and this resolves.
   */
  stop(): Promise<void> {
    this.#requestStop();
    this.#stopAsked = true;
    return this.#stopping ??= this.#drain();
  }

  async #drain(): Promise<void> {
    const started = performance.now();
    const timeout = this.#shutdownTimeout;
    const shutdownDropsAtAbort = new Map<SinkStats, number>();
    const abortTimer = setTimeout(() => {
      for (const s of this.stats.sinks.values()) shutdownDropsAtAbort.set(s, s.dropped.shutdown);
      this.#abort.abort(new Error("shutdown timeout"));
    }, Math.max(0, timeout - Math.min(ABORT_LEAD_MS, timeout / 10)));
    let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<"timeout">((r) =>
      deadlineTimer = setTimeout(() => r("timeout"), timeout)
    );
    const drained = (async () => {
      const stopSources = () => Promise.allSettled(this.#sources.map((s) => s.source.stop()));
      // Intake stops now, also while a reload runs; the reload sees the stop, leaves the rest
      // undone, and sources it started meanwhile are stopped after it.
      const first = stopSources();
      await this.#reloading;
      await first;
      await stopSources();
      await Promise.all([this.#fanout.close(), ...this.#retiring]);
    })().catch((err) => this.#log.error("draining failed", { error: err }));
    const outcome = await Promise.race([drained.then(() => "drained" as const), deadline]);
    clearTimeout(deadlineTimer);
    clearTimeout(abortTimer);
    const aborted = this.#abort.signal.aborted;
    if (outcome === "timeout" && !aborted) this.#abort.abort(new Error("shutdown timeout"));
    if (outcome === "timeout" || aborted) {
      for (const s of this.stats.sinks.values()) {
        // The branch is abandoned: what it still holds will not be written, except what
        // waits in its disk buffer, which the next start delivers.
        const disk = loadedDiskLanes()?.diskBufferStatsOf(s);
        const left = s.ledger.clear() - (disk?.events ?? 0);
        if (left > 0) s.drop("shutdown", left);
        const lost = s.dropped.shutdown -
          (shutdownDropsAtAbort.get(s) ?? s.dropped.shutdown - left);
        if (lost > 0) {
          this.#log.error("shutdown timeout; events not delivered", { sink: s.name, count: lost });
        }
      }
    }
    this.#log.info("pipeline stopped", {
      outcome: outcome === "timeout" || aborted ? "timeout" : "drained",
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
   *
   * A changed webhook source on another port starts before its predecessor stops; one that
   * cannot start (its new port in use) or a sink that cannot open rejects the reload with a
   * {@linkcode StartError} and nothing changed. A source that must wait for its predecessor
   * (same port, same file) and then cannot start is run again with its previous config and
   * listed in `sources.failed`. Rejects with {@linkcode PipelineStoppingError} when a stop
   * came first.
   */
  reload(loaded: LoadedConfig, resources: Resources): Promise<ReloadSummary> {
    const next = this.#reloading.then(() => this.#reload(loaded, resources));
    this.#reloading = next.catch(() => {});
    return next;
  }

  async #reload(loaded: LoadedConfig, resources: Resources): Promise<ReloadSummary> {
    if (this.#stopAsked) throw new PipelineStoppingError();
    const { config } = loaded;
    await loadSourceModules(resources.sources.map((s) => s.config.type));
    const summary: ReloadSummary = {
      sources: { kept: [], started: [], stopped: [], failed: [] },
      sinks: { kept: [], replaced: [], added: [], removed: [] },
    };

    // New branches first: a sink that cannot be opened aborts the reload with nothing changed.
    const next = new Map<string, { branch: Branch; fingerprint: string }>();
    const created: Branch[] = [];
    // A replacing branch's sink closes only once the branch it replaces has (see `after`).
    const discard = () =>
      Promise.allSettled(created.map((b) => {
        b.done.catch((err) => this.#log.warn("closing an unused sink failed", { error: err }));
        return b.writer.close();
      }));
    for (const [i, sink] of resources.sinks.entries()) {
      const name = sink.config.name!;
      const fingerprint = sink.fingerprint;
      const old = this.#branches.get(name);
      if (old && old.fingerprint === fingerprint) {
        next.set(name, old);
        summary.sinks.kept.push(name);
        continue;
      }
      let branch: Branch;
      try {
        branch = await this.#buildBranch(sink, old?.branch.done);
      } catch (err) {
        await discard();
        throw startError("sink", name, sink.at ?? componentAt(loaded, "sink", i), err);
      }
      created.push(branch);
      next.set(name, { branch, fingerprint });
      (old ? summary.sinks.replaced : summary.sinks.added).push(name);
    }
    if (this.#stopAsked) {
      await discard();
      throw new PipelineStoppingError();
    }
    for (const name of this.#branches.keys()) {
      if (!next.has(name)) summary.sinks.removed.push(name);
    }

    // Sources: keep the unchanged, stop the removed or changed, start the new.
    const keptSources: RunningSource[] = [];
    const stopping: RunningSource[] = [];
    for (const rs of this.#sources) {
      const w = resources.sources.find((w) => w.config.name === rs.source.name);
      if (w && w.fingerprint === rs.fingerprint && !rs.ended) {
        keptSources.push(rs);
        summary.sources.kept.push(rs.source.name);
      } else stopping.push(rs);
    }
    const fresh = resources.sources.flatMap((src, i) =>
      keptSources.some((rs) => rs.source.name === src.config.name)
        ? []
        : [this.#prepare(src, i, loaded)]
    );
    // A webhook source on a port no stopping source holds starts first, so a port in use
    // refuses the reload while the old listener still serves. The rest (same port, same
    // file, stdin) must wait for their predecessor to let go.
    const holdsPort = (port: number) =>
      stopping.some((o) => o.cfg.type === "webhook" && parseListen(o.cfg.listen).port === port);
    const early = fresh.filter((rs) =>
      rs.cfg.type === "webhook" &&
      (parseListen(rs.cfg.listen).port === 0 || !holdsPort(parseListen(rs.cfg.listen).port))
    );
    const late = fresh.filter((rs) => !early.includes(rs));
    if (this.#running) {
      const results = await Promise.allSettled(early.map((rs) => this.#start(rs)));
      const failure = results.find((r) => r.status === "rejected");
      if (failure || this.#stopAsked) {
        await Promise.allSettled(early.map((rs) => rs.source.stop()));
        await discard();
        throw failure ? (failure as PromiseRejectedResult).reason : new PipelineStoppingError();
      }
    }

    const oldFanout = this.#fanout;
    const kept = new Set([...next.values()].map((v) => v.branch));
    this.#fanout = new FanOut([...kept], this.#log);
    this.#branches = next;
    this.#shutdownTimeout = config.shutdownTimeout;
    const retiring = oldFanout.close(kept);
    this.#retiring.add(retiring);
    retiring.finally(() => this.#retiring.delete(retiring));

    this.#sources = [...keptSources, ...early];
    summary.sources.started.push(...early.map((rs) => rs.source.name));
    summary.sources.stopped.push(...stopping.map((rs) => rs.source.name));
    await Promise.allSettled(stopping.map((rs) => rs.source.stop()));
    // The predecessor's stop marked the shared stats not ready; its successor listens.
    for (const rs of early) {
      if (!rs.ended) this.stats.source(rs.source.name).ready = true;
    }
    if (!this.#running) {
      this.#sources.push(...late);
      summary.sources.started.push(...late.map((rs) => rs.source.name));
      return summary;
    }
    if (this.#stopAsked) throw new PipelineStoppingError();
    for (const rs of late) {
      try {
        await this.#start(rs);
        this.#sources.push(rs);
        summary.sources.started.push(rs.source.name);
        continue;
      } catch (err) {
        const failed = err as StartError;
        const prev = stopping.find((o) => o.source.name === rs.source.name);
        let running: ReloadFailure["running"] = "none";
        if (prev && !this.#stopAsked) {
          const back: RunningSource = { ...prev, source: prev.rebuild(), ended: false };
          try {
            await this.#start(back);
            this.#sources.push(back);
            running = "previous";
          } catch { /* reported below: nothing runs for it */ }
        }
        summary.sources.failed.push({
          source: rs.source.name,
          at: failed.at,
          error: failed.reason,
          running,
        });
      }
    }
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

  /** Reopens the files of every sink that has any (SIGHUP, before the reload). */
  async reopen(): Promise<void> {
    await Promise.all([...this.#branches.values()].map((b) => b.branch.sink.reopen?.()));
  }
}
