/**
 * kube-apiserver's batch throttle (spec sec. 8; client-go `util/flowcontrol` token bucket):
 * each batch takes a token from a bucket that starts full with `burst` tokens and refills at
 * `qps` per second; with none left, the batch waits for the next.
 *
 * @module
 */
import type { Batch } from "../core/envelope.ts";
import type { Clock } from "../core/clock.ts";
import type { SinkStats } from "../core/stats.ts";
import type { BatchConfig } from "../config/schema.ts";
import { asError } from "../core/errors.ts";

/** The throttle settings of a sink. */
export type ThrottleConfig = BatchConfig["throttle"];

/** What {@linkcode throttle} needs besides its config. */
export interface ThrottleDeps {
  /** Time for refilling and waiting; tests pass a `FakeClock`. */
  clock: Clock;
  /** Where the time spent waiting is added (`throttleWaitSeconds`). */
  stats: SinkStats;
}

/**
 * A token bucket as `golang.org/x/time/rate` keeps it for client-go: tokens refill
 * continuously, capped at `burst`, and a taker that finds none reserves the next one, so the
 * count may go below zero and later takers wait their turn.
 *
 * @example
 * ```ts
 * const bucket = new TokenBucket(10, 2, 0);
 * bucket.take(0); // 0: a token was there
 * bucket.take(0); // 0
 * bucket.take(0); // 100: wait 100 ms for the next token
 * ```
 */
export class TokenBucket {
  #tokens: number;
  #last: number;

  /**
   * A full bucket.
   *
   * @param qps tokens added per second, > 0
   * @param burst capacity, and the tokens at the start, > 0
   * @param now the current time in milliseconds
   */
  constructor(readonly qps: number, readonly burst: number, now: number) {
    this.#tokens = burst;
    this.#last = now;
  }

  /** Tokens available at `now` (negative while takers are waiting). */
  tokens(now: number): number {
    this.#advance(now);
    return this.#tokens;
  }

  /** Takes one token at `now`; returns how many milliseconds to wait before using it. */
  take(now: number): number {
    this.#advance(now);
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.qps) * 1000;
  }

  #advance(now: number): void {
    // A clock that does not move forward adds nothing (x/time/rate does the same).
    if (now <= this.#last) return;
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.qps);
    this.#last = now;
  }
}

/**
 * The throttling stage. While a batch waits for its token, `transform()` has not returned,
 * so the stage takes nothing else and the wait backs up into the bounded buffer upstream,
 * as the throttle stalls Go's worker. The time waited is added to
 * `stats.throttleWaitSeconds`. If the stream is cancelled during a wait, the wait ends and
 * the waiting batch's acks fail, since it will not be written. When `cfg.enabled` is false
 * the stage passes batches through untouched.
 *
 * @example
 * ```ts
 * const batches = chunks
 *   .pipeThrough(batcher(sink.batch, { clock }))
 *   .pipeThrough(throttle(sink.batch.throttle, { clock, stats }));
 * ```
 */
export function throttle(
  cfg: ThrottleConfig,
  deps: ThrottleDeps,
): TransformStream<Batch, Batch> {
  if (!cfg.enabled) return new TransformStream<Batch, Batch>();
  const { clock, stats } = deps;
  const bucket = new TokenBucket(cfg.qps, cfg.burst, clock.now());
  const stop = new AbortController();
  return new TransformStream<Batch, Batch>({
    async transform(batch, controller) {
      try {
        const wait = bucket.take(clock.now());
        if (wait > 0) {
          const started = clock.now();
          await clock.sleep(wait, stop.signal);
          stats.throttleWaitSeconds += (clock.now() - started) / 1000;
        }
        controller.enqueue(batch);
      } catch (reason) {
        const err = asError(reason, "throttle cancelled");
        for (const ack of batch.acks) ack.fail(err);
        throw err;
      }
    },
    cancel(reason) {
      stop.abort(reason ?? new Error("throttle cancelled"));
    },
  });
}
