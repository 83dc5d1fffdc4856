/**
 * One sink branch: the chain of stages between the fan-out and a sink, built for the
 * sink's mode. Modes differ only in where the branch waits and where it drops:
 *
 * - `blocking` / `blocking-strict`: acks settle when the sink has written. Chunks that
 *   arrive while the sink writes are merged into its next write (group commit); beyond
 *   that the fan-out waits for room, so the sink's pace reaches the sources.
 * - `batch`: the fan-out never waits: what does not fit in `bufferSize` is dropped, counted.
 *   Events pass the policy first, then wait in the buffer (kept as bytes only, when the
 *   sink needs no more), then are batched by size and time and throttled.
 * - a disk buffer (`buffer.type: disk`, any mode): events pass the policy first, then are
 *   appended to the buffer and their acks settle once fsynced; the fan-out waits on the
 *   append as on a blocking branch. Records read back are batched (by the `batch` settings
 *   in `batch` mode), throttled, written, then marked delivered; see `disk_lane.ts`.
 *
 * @module
 */
import type { Sink } from "../backends/sink.ts";
import type { Clock } from "./core/clock.ts";
import type { BatchConfig, BufferConfig, Mode, TruncateConfig } from "./config/schema.ts";
import type { Batch, Chunk, Envelope } from "./core/envelope.ts";
import type { Level } from "./core/event.ts";
import type { Logger } from "./core/log.ts";
import type { SinkStats } from "./core/stats.ts";
import type { CompiledPolicy } from "../policy/mod.ts";
import { policyStage } from "./stages/policy.ts";
import { annotateStage } from "./stages/annotate.ts";
import { truncateEvents } from "./stages/truncate.ts";
import { splitBatches } from "./stages/split.ts";
import { batcher } from "./stages/batcher.ts";
import { throttle } from "./stages/throttle.ts";
import { sinkWriter } from "./stages/sink_writer.ts";
import { compactStage } from "./stages/compact.ts";
import { bufferStage } from "./stages/buffer.ts";
import { coalesceStage } from "./stages/coalesce.ts";
import { annotateStep, formatBytes } from "./describe.ts";
import { formatDuration } from "./core/duration.ts";
import type { DiskLane } from "./disk_lane.ts";
import { NO_LEDGER } from "./core/ledger.ts";

/** Everything that shapes a branch. */
export interface BranchSpec {
  readonly name: string;
  readonly mode: Mode;
  readonly batch: BatchConfig;
  readonly truncate: TruncateConfig;
  /** Where events wait; memory (the default) is `batch.bufferSize` in `batch` mode. */
  readonly buffer?: BufferConfig;
  readonly annotations?: Readonly<Record<string, string>>;
  /** `null` passes every event unchanged. */
  readonly policy: CompiledPolicy | null;
  readonly maxInFlight?: number;
  /** Bytes the sink writes for an event, line end included, for truncation. */
  readonly size?: (env: Envelope) => number;
  /**
   * Whether buffered events may be kept as bytes only: the sink writes JSON and never
   * looks at the parsed event (log and stdout in json format, webhook).
   */
  readonly compact?: boolean;
  /** What {@linkcode describeBranch} names the policy and the sink by. */
  readonly labels?: {
    /** The policy's file, or `inline`. */
    readonly policy?: string;
    /** The sink, e.g. `log(/var/log/kubernetes/audit.log, json, rotate 100MB×10)`. */
    readonly sink: string;
  };
}

/** What a branch needs from the pipeline. */
export interface BranchDeps {
  readonly stats: SinkStats;
  readonly levels: Record<Level, number>;
  readonly log: Logger;
  readonly clock: Clock;
  /** The branch this one replaces on reload: its sink writes only after that one closed. */
  readonly after?: Promise<unknown>;
  /** Aborted at the shutdown deadline (a disk buffer stops delivering; its events stay). */
  readonly signal?: AbortSignal;
  /** First delay before a disk-buffered branch writes a failed batch again, ms. */
  readonly retryDelayMs?: number;
}

/** The disk buffer's module: imported by the first branch that has one. */
type DiskLanes = typeof import("./disk_lane.ts");
let diskLanes: DiskLanes | undefined;

/**
 * Imports the disk buffer's modules, once. A daemon without disk buffers never loads them;
 * the builder calls this before it builds a branch with one, so that branch's lane exists as
 * soon as it is constructed.
 *
 * @example
 * ```ts
 * if (cfg.buffer.type === "disk") await loadDiskLanes();
 * ```
 */
export async function loadDiskLanes(): Promise<DiskLanes> {
  return diskLanes ??= await import("./disk_lane.ts");
}

/**
 * The disk buffer's module if a branch imported it, else undefined (then no sink has one).
 *
 * @example
 * ```ts
 * const onDisk = loadedDiskLanes()?.diskBufferStatsOf(stats)?.events ?? 0;
 * ```
 */
export function loadedDiskLanes(): DiskLanes | undefined {
  return diskLanes;
}

/**
 * How many events a blocking branch merges into one write at most. Large enough that a sink
 * that fsyncs keeps up with many concurrent requests; small enough to be one write.
 */
const COALESCE_EVENTS = 10_000;

/**
 * The stages a branch built from `spec` has, as one line: `name: stage → stage → sink`. The
 * same decisions as the {@linkcode Branch} constructor, without building anything.
 *
 * @example
 * ```ts
 * describeBranch(spec);
 * // "local: policy(/etc/auditpipe/policy.yaml, 20 rules) → truncate(100KiB/10MiB) → coalesce → log(/var/log/kubernetes/audit.log, json, rotate 100MB×10)"
 * ```
 */
export function describeBranch(spec: BranchSpec): string {
  const steps: string[] = [];
  if (spec.policy) {
    const n = spec.policy.rules.length;
    steps.push(`policy(${spec.labels?.policy ?? "inline"}, ${n} rule${n === 1 ? "" : "s"})`);
  }
  steps.push(...annotateStep(spec.annotations));
  const { truncate, batch } = spec;
  if (truncate.enabled) {
    steps.push(
      `truncate(${formatBytes(truncate.maxEventSize)}/${formatBytes(truncate.maxBatchSize)})`,
    );
  }
  const disk = diskBuffer(spec);
  if (disk) {
    steps.push(`disk(${disk.path}, ${formatBytes(disk.maxBytes)}, ${disk.whenFull})`);
    const out = outputBatch(spec);
    steps.push(`batch(${out.maxSize}, ${formatDuration(out.maxWait)})`);
    if (spec.mode === "batch" && batch.throttle.enabled) {
      steps.push(`throttle(${batch.throttle.qps}/s, burst ${batch.throttle.burst})`);
    }
  } else if (spec.mode !== "batch") {
    steps.push(spec.mode === "blocking-strict" ? "coalesce(strict)" : "coalesce");
  } else {
    steps.push(
      `buffer(${batch.bufferSize})`,
      `batch(${batch.maxSize}, ${formatDuration(batch.maxWait)})`,
    );
    if (batch.throttle.enabled) {
      steps.push(`throttle(${batch.throttle.qps}/s, burst ${batch.throttle.burst})`);
    }
  }
  steps.push(spec.labels?.sink ?? "sink");
  return `${spec.name}: ${steps.join(" → ")}`;
}

/** The disk buffer settings of `spec`, or undefined when its events wait in memory. */
function diskBuffer(
  spec: BranchSpec,
): (BufferConfig & { type: "disk"; path: string }) | undefined {
  const b = spec.buffer;
  return b?.type === "disk" && b.path !== undefined
    ? { ...b, type: "disk", path: b.path }
    : undefined;
}

/**
 * How records read back from a disk buffer are batched: by the `batch` settings in `batch`
 * mode; otherwise as many as are there, at once (as a blocking branch coalesces).
 */
function outputBatch(spec: BranchSpec): { maxSize: number; maxWait: number } {
  if (spec.mode === "batch") return spec.batch;
  return { maxSize: Math.max(spec.batch.maxSize, 1000), maxWait: 0 };
}

/**
 * A running sink branch. Write chunks with {@linkcode Branch.writer}; close the writer to
 * drain; {@linkcode Branch.done} settles when the sink has been closed.
 *
 * @example
 * ```ts
 * const branch = new Branch(spec, sink, deps);
 * await branch.writer.ready;
 * branch.writer.write(chunk);
 * await branch.writer.close();
 * await branch.done;
 * ```
 */
export class Branch {
  readonly writer: WritableStreamDefaultWriter<Chunk>;
  /** Whether sources wait for this branch (`blocking`, `blocking-strict`). */
  readonly blocking: boolean;
  readonly done: Promise<void>;

  #disk: DiskLane | undefined;

  /**
   * The branch's disk buffer, when it has one (built with the branch once
   * {@linkcode loadDiskLanes} has run, else as soon as it has).
   */
  get disk(): DiskLane | undefined {
    return this.#disk;
  }

  constructor(readonly spec: BranchSpec, readonly sink: Sink, readonly deps: BranchDeps) {
    const disk = diskBuffer(spec);
    // Exported as capacities so a fill ratio needs no copy of the config (top, dashboards).
    deps.stats.bufferCapacity = spec.mode === "batch" && !disk ? spec.batch.bufferSize : null;
    deps.stats.diskMaxBytes = disk ? disk.maxBytes : null;
    // A disk branch is waited on as a blocking one: its acks settle when the events are on disk.
    this.blocking = spec.mode !== "batch" || disk !== undefined;
    // One chunk at the entry: in blocking mode the fan-out waits for room there. In batch
    // mode the fan-out never waits; it bounds the branch by counting (see `room`).
    const entry = new TransformStream<Chunk, Chunk>(undefined, { highWaterMark: 1 });
    this.writer = entry.writable.getWriter();
    let chunks: ReadableStream<Chunk> = entry.readable;
    if (spec.policy) {
      chunks = chunks.pipeThrough(policyStage(spec.policy, deps));
    }
    if (spec.annotations && Object.keys(spec.annotations).length) {
      chunks = chunks.pipeThrough(annotateStage(spec.annotations, deps.stats.ledger));
    }
    if (spec.truncate.enabled) {
      chunks = chunks.pipeThrough(
        truncateEvents(spec.truncate, { stats: deps.stats, log: deps.log, size: spec.size }),
      );
    }
    if (disk) {
      const lanes = diskLanes;
      this.done = lanes
        ? this.#diskLane(lanes, disk, chunks)
        : loadDiskLanes().then((m) => this.#diskLane(m, disk, chunks));
      return;
    }
    let batches: ReadableStream<Batch>;
    if (this.blocking) {
      batches = chunks.pipeThrough(coalesceStage(COALESCE_EVENTS, deps.stats.ledger));
    } else {
      if (spec.compact) chunks = chunks.pipeThrough(compactStage(deps.stats.ledger));
      batches = chunks.pipeThrough(bufferStage(spec.batch.bufferSize))
        .pipeThrough(batcher(spec.batch, { clock: deps.clock, ledger: deps.stats.ledger }));
      if (spec.batch.throttle.enabled) {
        batches = batches.pipeThrough(
          throttle(spec.batch.throttle, { clock: deps.clock, stats: deps.stats }),
        );
      }
    }
    if (spec.truncate.enabled) {
      batches = batches.pipeThrough(
        splitBatches(spec.truncate, { size: spec.size, ledger: deps.stats.ledger }),
      );
    }
    this.done = batches.pipeTo(
      sinkWriter(sink, {
        mode: spec.mode,
        maxInFlight: spec.maxInFlight,
        stats: deps.stats,
        log: deps.log,
        clock: deps.clock,
        after: deps.after,
      }),
    );
  }

  /** Builds the stages around the disk buffer; resolves when the branch has drained. */
  #diskLane(
    lanes: DiskLanes,
    disk: BufferConfig & { type: "disk"; path: string },
    chunks: ReadableStream<Chunk>,
  ): Promise<void> {
    const { spec, sink, deps } = this;
    const lane = this.#disk = new lanes.DiskLane({
      path: disk.path,
      maxBytes: disk.maxBytes,
      whenFull: disk.whenFull,
      fsync: disk.fsync === "always",
    }, deps);
    const appended = chunks.pipeTo(lane.appender()).then(() => lane.drain());
    // Records on disk are held by the lane's probe: the stages after it keep no ledger.
    let out = lane.records().pipeThrough(
      batcher(outputBatch(spec), { clock: deps.clock, ledger: NO_LEDGER }),
    );
    if (spec.mode === "batch" && spec.batch.throttle.enabled) {
      out = out.pipeThrough(
        throttle(spec.batch.throttle, { clock: deps.clock, stats: deps.stats }),
      );
    }
    if (spec.truncate.enabled) {
      out = out.pipeThrough(splitBatches(spec.truncate, { size: spec.size, ledger: NO_LEDGER }));
    }
    const delivered = out.pipeTo(lane.deliverer(sink));
    return Promise.all([appended, delivered]).then(() => {});
  }

  /** The branch as one line; see {@linkcode describeBranch}. */
  describe(): string {
    return describeBranch(this.spec);
  }

  /**
   * Events a `batch` branch can still take: `bufferSize` less what it holds (in its stages,
   * its buffer, its batcher and its sink's write in progress). Counted, not read off the
   * streams' queues, so a burst that the stages have not moved along yet is not dropped.
   */
  get room(): number {
    return Math.max(0, this.spec.batch.bufferSize - this.deps.stats.buffered);
  }
}
