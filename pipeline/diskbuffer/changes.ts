/**
 * The store's change signal: resolved whenever a commit, a deletion or close happened, so that
 * blocked appenders (`whenSpace`) and following readers look again.
 *
 * @module
 */

/**
 * A signal that settles on the next change and is renewed at once.
 *
 * @example
 * ```ts
 * const changes = new ChangeSignal();
 * const next = changes.next();
 * changes.notify(); // `next` resolves
 * await changes.wait(AbortSignal.timeout(1000)); // true on a change, false once aborted
 * ```
 */
export class ChangeSignal {
  #changed = Promise.withResolvers<void>();

  /** Resolves the next time something changes. */
  next(): Promise<void> {
    return this.#changed.promise;
  }

  /** Wakes everything waiting for a change. */
  notify(): void {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers<void>();
  }

  /** Waits for a change; false when `signal` aborted (before or meanwhile). */
  async wait(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    if (!signal) {
      await this.#changed.promise;
      return true;
    }
    const aborted = Promise.withResolvers<boolean>();
    const onAbort = () => aborted.resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await Promise.race([this.#changed.promise.then(() => true), aborted.promise]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}
