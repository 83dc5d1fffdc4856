import { type Level, LEVELS } from "./event.ts";

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
  | "shutdown";

/** Every drop reason, for exposing zeros too. */
export const DROP_REASONS: readonly DropReason[] = [
  "policy",
  "omitted_stage",
  "buffer_full",
  "too_large",
  "retries_exhausted",
  "write_error",
  "shutdown",
];

/**
 * What one sink branch has seen. At every moment
 * `received = written + dropped (all reasons) + buffered`, with `buffered` derived.
 *
 * @example
 * ```ts
 * const s = new SinkStats("local");
 * s.received += 3; s.written += 2; s.drop("policy", 1);
 * s.buffered; // 0
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
    shutdown: 0,
  };
  /** Observed durations of sink writes, seconds; drained by the metrics module. */
  sendDurations: number[] = [];
  /** `performance.now()` of the first failure in the current run of failures, else null. */
  failingSince: number | null = null;
  lastError: string | null = null;

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

  /** Events received and neither written nor dropped yet. */
  get buffered(): number {
    return this.received - this.written - this.droppedTotal;
  }

  /** Records a successful write of `n` events that took `seconds`. */
  wrote(n: number, seconds: number): void {
    this.written += n;
    this.batches++;
    if (this.sendDurations.length < 10_000) this.sendDurations.push(seconds);
    this.failingSince = null;
  }

  /** Records a failed write. */
  failed(err: unknown, now: number): void {
    this.failingSince ??= now;
    this.lastError = err instanceof Error ? err.message : String(err);
  }
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
   * Seconds from a request's arrival to its answer (webhook sources), by status code;
   * drained by the metrics module, at most 10,000 kept between scrapes.
   */
  requestDurations: { code: number; seconds: number }[] = [];

  constructor(readonly name: string) {}

  /** Records one answered request. */
  answered(code: number, seconds: number): void {
    if (this.requestDurations.length < 10_000) this.requestDurations.push({ code, seconds });
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
