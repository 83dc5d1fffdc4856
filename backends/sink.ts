/**
 * The one interface every backend implements, as kube-apiserver's audit `Backend`: a sink
 * writes batches of events and can be closed. Modes, buffering, throttling and truncation
 * are stages around it, not its business.
 *
 * @module
 */
import type { Clock } from "../pipeline/core/clock.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import type { Logger } from "../pipeline/core/log.ts";
import type { DropReason, SinkStats } from "../pipeline/core/stats.ts";

/**
 * A destination for batches of events.
 *
 * @example
 * ```ts
 * const sink: Sink = {
 *   async write(items) { for (const e of items) console.log(e.event.auditID); },
 *   async close() {},
 * };
 * ```
 */
export interface Sink {
  /**
   * Writes one batch, in order. Resolves when the batch is written (as durably as the sink's
   * settings say): with nothing, or with the events it left out for good and why (a
   * {@linkcode WriteResult}), the others being written. Rejects when the batch as a whole
   * could not be written, after any retries the sink does itself.
   */
  write(items: readonly Envelope[]): Promise<WriteResult | void>;
  /** Reopens files (SIGHUP), for sinks that have any. */
  reopen?(): Promise<void>;
  /** Releases files, connections and timers. Called once, after the last write settled. */
  close(): Promise<void>;
}

/**
 * One event a sink left out of a batch it otherwise wrote.
 *
 * @example
 * ```ts
 * const d: DroppedEvent = { index: 3, reason: "too_large",
 *   error: new Error("write length 2097152 exceeds maximum file size 1048576") };
 * ```
 */
export interface DroppedEvent {
  /** Index of the event in the batch given to `write`. */
  readonly index: number;
  /**
   * Why; a drop reported here is final: the sink writer never fails acks for it, since a
   * replay would meet the same fate (`too_large`).
   */
  readonly reason: DropReason;
  readonly error: Error;
}

/**
 * What a sink's `write` resolves with when it wrote a batch except for some events; the
 * events not listed were written.
 *
 * @example
 * ```ts
 * const result: WriteResult = { dropped: [{ index: 0, reason: "too_large", error }] };
 * ```
 */
export interface WriteResult {
  /** The events left out, in batch order, each at most once. */
  readonly dropped: readonly DroppedEvent[];
}

/** What the builder hands every sink factory. */
export interface SinkContext {
  /** The sink's name, for logs and metrics. */
  readonly name: string;
  readonly log: Logger;
  readonly clock: Clock;
  readonly stats: SinkStats;
  /** Aborted when shutdown time is up: retries stop waiting and fail. */
  readonly signal: AbortSignal;
}

/**
 * An error a sink rejects with to say why its events are lost; any other error counts as
 * `write_error`.
 *
 * @example
 * ```ts
 * throw new SinkError("POST https://siem: 503 after 5 attempts", "retries_exhausted");
 * ```
 */
export class SinkError extends Error {
  override name = "SinkError";
  constructor(message: string, readonly reason: DropReason, options?: ErrorOptions) {
    super(message, options);
  }
}
