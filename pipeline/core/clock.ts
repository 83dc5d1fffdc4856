/**
 * Time as the stages see it, so that batching windows, throttling, retry backoff and
 * rotation can be tested with a clock the test moves.
 *
 * @module
 */

/** A source of time and of waiting. */
export interface Clock {
  /** Milliseconds, monotonic, for measuring intervals. */
  now(): number;
  /** Wall-clock time, for file names and ages. */
  date(): Date;
  /** Resolves after `ms`; rejects with the signal's reason if it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * The real clock.
 *
 * @example
 * ```ts
 * await systemClock.sleep(10);
 * ```
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  date: () => new Date(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(id);
        reject(signal!.reason);
      };
      const id = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

/**
 * A clock that moves only when told, for tests.
 *
 * @example
 * ```ts
 * const clock = new FakeClock();
 * const p = clock.sleep(1000);
 * await clock.advance(1000); // p resolves
 * ```
 */
export class FakeClock implements Clock {
  #now: number;
  #wall: number;
  #sleepers: { at: number; resolve: () => void }[] = [];

  constructor(start = 0, wall = Date.UTC(2024, 2, 1, 12, 34, 56, 789)) {
    this.#now = start;
    this.#wall = wall;
  }

  now(): number {
    return this.#now;
  }

  date(): Date {
    return new Date(this.#wall + this.#now);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const sleeper = { at: this.#now + ms, resolve };
      this.#sleepers.push(sleeper);
      signal?.addEventListener("abort", () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(signal.reason);
      }, { once: true });
    });
  }

  /** Number of pending sleeps. */
  get sleeping(): number {
    return this.#sleepers.length;
  }

  /** The durations of pending sleeps, from now. */
  pending(): number[] {
    return this.#sleepers.map((s) => s.at - this.#now);
  }

  /** Moves time forward, waking sleepers in order and letting their continuations run. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      await flushMicrotasks();
      this.#sleepers.sort((a, b) => a.at - b.at);
      const next = this.#sleepers[0];
      if (!next || next.at > target) break;
      this.#sleepers.shift();
      this.#now = next.at;
      next.resolve();
    }
    this.#now = target;
    await flushMicrotasks();
  }
}

/**
 * Lets pending promise continuations run.
 *
 * @example
 * ```ts
 * promise.then(() => done = true);
 * await flushMicrotasks(); // done === true
 * ```
 */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((r) => setTimeout(r, 0));
}
