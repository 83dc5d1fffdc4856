/**
 * The retry schedule of kube-apiserver's webhook backend (apimachinery `wait.Backoff` with
 * factor 1.5 and jitter 0.2, `pkg/util/webhook.WithExponentialBackoff`): after failed attempt
 * k sleep d_k x (1 + r), r uniform in [0, 0.2), d_1 = the initial backoff, d_(k+1) = 1.5 d_k;
 * a fresh schedule per batch. auditpipe adds an optional cap (`maxBackoff`), unlimited attempts
 * (`maxAttempts: 0`), and honours a server's `Retry-After` in place of the backoff. The same
 * pieces serve the daemon's other waits: {@linkcode Backoff} with another `factor` (the tail
 * and NATS sources double theirs), {@linkcode Backoff.reset} after a success, and
 * {@linkcode abortableSleep} for a wait that stop ends early.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import { errorText } from "./errors.ts";

/** kube-apiserver's backoff factor. */
export const BACKOFF_FACTOR = 1.5;
/** kube-apiserver's jitter: a delay is stretched by up to this fraction. */
export const BACKOFF_JITTER = 0.2;
/** Longest delay a timer can take (2^31 - 1 ms); longer ones would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Settings of a {@linkcode Backoff}. */
export interface BackoffOptions {
  /** d_1, milliseconds. */
  initialBackoff: number;
  /** Upper bound of every delay, jitter included, milliseconds; none when unset or 0. */
  maxBackoff?: number;
  /** Growth per delay; default {@linkcode BACKOFF_FACTOR}. */
  factor?: number;
  /** Jitter fraction; default {@linkcode BACKOFF_JITTER}. */
  jitter?: number;
  /** Uniform [0, 1) source; default `Math.random`. */
  random?: () => number;
}

/**
 * One batch's sequence of delays. Each {@linkcode Backoff.next} gives the sleep after the
 * next failed attempt.
 *
 * @example
 * ```ts
 * const b = new Backoff({ initialBackoff: 10_000, random: () => 0 });
 * b.next(); // 10000
 * b.next(); // 15000
 * b.next(); // 22500
 * ```
 */
export class Backoff {
  #base: number;
  readonly #initial: number;
  readonly #factor: number;
  readonly #max: number;
  readonly #jitter: number;
  readonly #random: () => number;

  constructor(opts: BackoffOptions) {
    this.#base = this.#initial = Math.max(0, opts.initialBackoff);
    this.#factor = opts.factor ?? BACKOFF_FACTOR;
    this.#max = opts.maxBackoff && opts.maxBackoff > 0 ? opts.maxBackoff : Infinity;
    this.#jitter = opts.jitter ?? BACKOFF_JITTER;
    this.#random = opts.random ?? Math.random;
  }

  /** The next delay in milliseconds (to the nanosecond, as Go's durations). */
  next(): number {
    const d = this.#base * (1 + this.#random() * this.#jitter);
    // Grow only while it still matters, so unlimited attempts never overflow to Infinity.
    if (this.#base < this.#max && this.#base < MAX_TIMER_MS) this.#base *= this.#factor;
    return Math.round(Math.min(d, this.#max, MAX_TIMER_MS) * 1e6) / 1e6;
  }

  /** Starts the schedule over (after a success): the next delay is d_1 again. */
  reset(): void {
    this.#base = this.#initial;
  }
}

/**
 * Sleeps `ms` on `clock`, ending early (without throwing) when `signal` aborts; resolves to
 * whether the whole time passed.
 *
 * @example
 * ```ts
 * if (!await abortableSleep(systemClock, backoff.next(), stop.signal)) return; // stopping
 * ```
 */
export async function abortableSleep(
  clock: Clock,
  ms: number,
  signal?: AbortSignal,
): Promise<boolean> {
  if (signal?.aborted) return false;
  if (ms <= 0) return true;
  try {
    await clock.sleep(ms, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * The first `count` delays of a schedule, for docs and tests.
 *
 * @example
 * ```ts
 * backoffDelays({ initialBackoff: 10_000, random: () => 0 }, 4); // [10000, 15000, 22500, 33750]
 * ```
 */
export function backoffDelays(opts: BackoffOptions, count: number): number[] {
  const b = new Backoff(opts);
  return Array.from({ length: count }, () => b.next());
}

/** Settings of {@linkcode withRetry}. */
export interface RetryOptions extends BackoffOptions {
  /** Attempts in all, the first included; 0 = until success or abort. */
  maxAttempts: number;
  /** Sleeps between attempts. */
  clock: Clock;
  /** Stops the waiting: the call rejects with a {@linkcode RetryError} with `aborted` set. */
  signal?: AbortSignal;
  /** Called after failed attempt `attempt` (1-based) when another follows in `delayMs`. */
  onRetry?: (attempt: number, err: unknown, delayMs: number) => void;
  /**
   * How long the failure asks to wait (a server's `Retry-After`), milliseconds, or undefined
   * to use the backoff. Only values > 0 replace the backoff; they are capped by `maxBackoff`.
   */
  retryAfter?: (err: unknown) => number | undefined;
}

/**
 * All attempts failed, or the signal stopped the retrying. `cause` is the last attempt's
 * error (or the abort reason if no attempt ran).
 *
 * @example
 * ```ts
 * try { await withRetry(send, opts); } catch (e) {
 *   if (e instanceof RetryError && !e.aborted) console.log(`gave up after ${e.attempts}`);
 * }
 * ```
 */
export class RetryError extends Error {
  override name = "RetryError";
  constructor(
    message: string,
    /** Attempts made. */
    readonly attempts: number,
    /** Whether the signal ended it rather than running out of attempts. */
    readonly aborted: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Runs `fn` until it resolves, sleeping on `clock` between attempts per the schedule.
 *
 * @example
 * ```ts
 * await withRetry((attempt) => post(body), {
 *   maxAttempts: 5,
 *   initialBackoff: 10_000,
 *   clock: systemClock,
 *   signal: ctx.signal,
 *   onRetry: () => stats.retries++,
 * });
 * ```
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  opts: RetryOptions,
): Promise<T> {
  const backoff = new Backoff(opts);
  const max = opts.maxAttempts > 0 ? opts.maxAttempts : Infinity;
  const signal = opts.signal;
  const aborted = (attempts: number, last: unknown): RetryError => {
    const reason = last !== undefined ? `: ${errorText(last)}` : "";
    return new RetryError(
      `aborted after ${attempts} attempt${attempts === 1 ? "" : "s"}${reason}`,
      attempts,
      true,
      { cause: last ?? signal?.reason },
    );
  };
  let last: unknown = undefined;
  for (let attempt = 1;; attempt++) {
    if (signal?.aborted) throw aborted(attempt - 1, last);
    try {
      return await fn(attempt);
    } catch (err) {
      last = err;
    }
    if (signal?.aborted) throw aborted(attempt, last);
    if (attempt >= max) {
      throw new RetryError(
        `gave up after ${attempt} attempt${attempt === 1 ? "" : "s"}: ${errorText(last)}`,
        attempt,
        false,
        { cause: last },
      );
    }
    // The schedule advances even when Retry-After overrides it, so attempt k+1 waits d_(k+1).
    let delay = backoff.next();
    const asked = opts.retryAfter?.(last);
    // 0 would mean an immediate retry; with unlimited attempts that hammers the server.
    if (asked !== undefined && asked > 0) {
      const cap = opts.maxBackoff && opts.maxBackoff > 0 ? opts.maxBackoff : MAX_TIMER_MS;
      delay = Math.min(asked, cap, MAX_TIMER_MS);
    }
    opts.onRetry?.(attempt, last, delay);
    try {
      await opts.clock.sleep(delay, signal);
    } catch {
      throw aborted(attempt, last);
    }
  }
}
