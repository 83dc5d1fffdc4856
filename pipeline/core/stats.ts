import { type Level, LEVELS } from "./event.ts";
import { Ledger } from "./ledger.ts";
import { errorMessage } from "./errors.ts";

/**
 * Counters kept by the data path, read by `/metrics` and `/readyz`. Plain numbers on the hot
 * path; the metrics module turns them into Prometheus series when scraped.
 *
 * @module
 */

/** Why a sink did not write an event. */
export type DropReason =
  | "policy"
  | "omitted_stage"
  | "buffer_full"
  | "too_large"
  | "retries_exhausted"
  | "write_error"
  | "corrupt"
  | "shutdown";

/** Every drop reason, for exposing zeros too. */
export const DROP_REASONS: readonly DropReason[] = [
  "policy",
  "omitted_stage",
  "buffer_full",
  "too_large",
  "retries_exhausted",
  "write_error",
  "corrupt",
  "shutdown",
];

/**
 * Why a file sink reopened its path on its own: nothing was there any more (`removed`, or
 * moved away), or another file was (`replaced`).
 *
 * @example
 * ```ts
 * const reason: FileReopenReason = "removed";
 * ```
 */
export type FileReopenReason = "removed" | "replaced";

/**
 * Every file reopen reason, for exposing zeros too.
 *
 * @example
 * ```ts
 * for (const r of FILE_REOPEN_REASONS) console.log(r, stats.fileReopens?.[r]);
 * ```
 */
export const FILE_REOPEN_REASONS: readonly FileReopenReason[] = ["removed", "replaced"];

/**
 * Cumulative durations in fixed buckets, as Prometheus histograms count them: a few numbers
 * per label value however many observations, and none lost between scrapes.
 *
 * @example
 * ```ts
 * const h = new Durations([0.001, 0.01]);
 * h.observe("200", 0.004);
 * h.series.get("200"); // { counts: [0, 1, 1], sum: 0.004 }, counts per bound then +Inf
 * ```
 */
export class Durations {
  /** Per label value: counts per bucket (cumulative, the last is +Inf) and their sum. */
  readonly series: Map<string, { counts: number[]; sum: number }> = new Map();

  constructor(readonly bounds: readonly number[]) {}

  /** Counts one observation of `seconds` under `label`. */
  observe(label: string, seconds: number): void {
    let s = this.series.get(label);
    if (!s) {
      this.series.set(label, s = { counts: new Array(this.bounds.length + 1).fill(0), sum: 0 });
    }
    for (let i = this.bounds.length - 1; i >= 0 && seconds <= this.bounds[i]; i--) s.counts[i]++;
    s.counts[this.bounds.length]++;
    s.sum += seconds;
  }
}

/**
 * Buckets of sink writes and webhook requests, seconds.
 *
 * @example
 * ```ts
 * const requests = new Durations(DURATION_BUCKETS);
 * ```
 */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];

/**
 * What one sink branch has seen. At every moment
 * `received = written + dropped (all reasons) + buffered`, with `buffered` measured where the
 * events are (its {@linkcode Ledger}), so a stage that loses events without counting them
 * breaks the equation.
 *
 * @example
 * ```ts
 * const s = new SinkStats("local");
 * s.received += 3; s.ledger.put(chunk); // chunk holds 3 events
 * s.buffered; // 3
 * ```
 */
export class SinkStats {
  received = 0;
  written = 0;
  batches = 0;
  retries = 0;
  throttleWaitSeconds = 0;
  readonly dropped: Record<DropReason, number> = {
    policy: 0,
    omitted_stage: 0,
    buffer_full: 0,
    too_large: 0,
    retries_exhausted: 0,
    write_error: 0,
    corrupt: 0,
    shutdown: 0,
  };
  /** Durations of successful sink writes, seconds (one series, label ""). */
  readonly sendDurations: Durations = new Durations(DURATION_BUCKETS);
  /** `performance.now()` of the first failure in the current run of failures, else null. */
  failingSince: number | null = null;
  lastError: string | null = null;
  /** Where the branch's events are. */
  readonly ledger: Ledger = new Ledger();
  /**
   * Times the sink found its file removed or replaced under it and reopened it, by reason;
   * null for sinks that write no file (set by {@linkcode SinkStats.writesFile}).
   */
  fileReopens: Record<FileReopenReason, number> | null = null;
  /** Signed checkpoints written, null for sinks that sign none (see `checkpointed`). */
  checkpoints: number | null = null;
  /** Lines in the sink's hash chain since it started. */
  chainLength = 0;
  /**
   * Events a `batch` branch's memory buffer holds at most (`batch.bufferSize`); null for
   * blocking and disk-buffered branches, whose sources wait instead of overflowing it.
   */
  bufferCapacity: number | null = null;
  /** A disk buffer's `maxBytes`; null without a disk buffer. */
  diskMaxBytes: number | null = null;

  constructor(readonly name: string) {}

  /** Counts `n` events dropped for `reason`. */
  drop(reason: DropReason, n: number): void {
    this.dropped[reason] += n;
  }

  /** Sum of drops over all reasons. */
  get droppedTotal(): number {
    let t = 0;
    for (const r of DROP_REASONS) t += this.dropped[r];
    return t;
  }

  /** Events the branch holds now: in its stages, buffer, batches and writes in progress. */
  get buffered(): number {
    return this.ledger.held;
  }

  /** Events received but neither written, dropped nor held: 0 unless events were lost. */
  get unaccounted(): number {
    return this.received - this.written - this.droppedTotal - this.buffered;
  }

  /** Records a successful write of `n` events that took `seconds`. */
  wrote(n: number, seconds: number): void {
    this.written += n;
    this.batches++;
    this.sendDurations.observe("", seconds);
    this.failingSince = null;
  }

  /** Marks the sink as one writing a file, so its reopen counts are exposed (as zeros). */
  writesFile(): void {
    this.fileReopens ??= { removed: 0, replaced: 0 };
  }

  /**
   * A log sink wrote a signed checkpoint; its chain has `length` lines now.
   *
   * @example
   * ```ts
   * stats.checkpointed(1000);
   * ```
   */
  checkpointed(length: number): void {
    this.checkpoints = (this.checkpoints ?? 0) + 1;
    this.chainLength = length;
  }

  /** Counts one reopen of the sink's file for `reason`. */
  fileReopened(reason: FileReopenReason): void {
    this.writesFile();
    this.fileReopens![reason]++;
  }

  /** Records a failed write. */
  failed(err: unknown, now: number): void {
    this.failingSince ??= now;
    this.lastError = errorMessage(err);
  }
}

/**
 * A NATS source's JetStream consumer as last read: from a consumer info request every few
 * seconds, and the delivery info of each fetched chunk. Zeros until the first reading (and
 * for other sources); a failed reading keeps the last values.
 *
 * @example
 * ```ts
 * const s = new SourceStats("fanin");
 * s.nats.pending = info.num_pending;
 * ```
 */
export interface NatsConsumerStats {
  /** Messages in the stream not yet delivered to the consumer (`num_pending`). */
  pending: number;
  /** Messages delivered and not yet acknowledged (`num_ack_pending`). */
  ackPending: number;
  /** Messages awaiting their ack that were delivered more than once (`num_redelivered`). */
  redelivered: number;
  /** When JetStream stored the newest message this source fetched, Unix seconds; 0: none. */
  lastDeliveredTimestamp: number;
}

/**
 * What one source has seen.
 *
 * @example
 * ```ts
 * const s = new SourceStats("apiserver");
 * s.events += 400; s.reject("invalid_event");
 * ```
 */
export class SourceStats {
  events = 0;
  readonly rejected: Map<string, number> = new Map();
  /** Bytes behind the end of the followed file (tail sources). */
  lagBytes = 0;
  /** Whether the source is accepting input (listening, following). */
  ready = false;
  /**
   * Why the source, though accepting input, is not ready (a tail checkpoint that cannot be
   * written); null when nothing is wrong. `/readyz` reports it.
   */
  failing: string | null = null;
  /** Checkpoint writes that failed (tail sources). */
  checkpointErrors = 0;
  /** Seconds from a request's arrival to its answer (webhook sources), by status code. */
  readonly requestDurations: Durations = new Durations(DURATION_BUCKETS);
  /** The consumer's lag (NATS sources). */
  readonly nats: NatsConsumerStats = {
    pending: 0,
    ackPending: 0,
    redelivered: 0,
    lastDeliveredTimestamp: 0,
  };

  constructor(readonly name: string) {}

  /** Records one answered request. */
  answered(code: number, seconds: number): void {
    this.requestDurations.observe(String(code), seconds);
  }

  /** Counts `n` inputs rejected for `reason` (e.g. `invalid_event`, `too_long`). */
  reject(reason: string, n = 1): void {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + n);
  }
}

/**
 * Everything a running pipeline counts: its sources, its sinks, and policy levels.
 *
 * @example
 * ```ts
 * const stats = new PipelineStats();
 * stats.levels.Metadata++;
 * ```
 */
export class PipelineStats {
  readonly sources: Map<string, SourceStats> = new Map();
  readonly sinks: Map<string, SinkStats> = new Map();
  /** Policy evaluations by resulting level, as `apiserver_audit_level_total`. */
  readonly levels: Record<Level, number> = Object.fromEntries(
    LEVELS.map((l) => [l, 0]),
  ) as Record<Level, number>;
  readonly startedAt: number = Date.now();

  /** The stats of a source, created on first use. */
  source(name: string): SourceStats {
    let s = this.sources.get(name);
    if (!s) this.sources.set(name, s = new SourceStats(name));
    return s;
  }

  /** The stats of a sink, created on first use. */
  sink(name: string): SinkStats {
    let s = this.sinks.get(name);
    if (!s) this.sinks.set(name, s = new SinkStats(name));
    return s;
  }
}
