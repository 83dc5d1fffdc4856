/**
 * How a tail source waits at the end of its file: for a change notification on the file's
 * directory (inotify through `Deno.watchFs`), else a poll interval, and never past stop.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import { abortableSleep } from "../../core/retry.ts";
import { basename, dirname } from "node:path";

/**
 * Waits for changes to one path, or a poll interval; every wait ends early once `stop`
 * aborts.
 *
 * @example
 * ```ts
 * const waiter = new ChangeWaiter("/var/log/audit.log", 250, systemClock, stop.signal);
 * await waiter.waitForChange(); // appended to, renamed, created, or 250 ms passed
 * await waiter.close();
 * ```
 */
export class ChangeWaiter {
  readonly #path: string;
  readonly #pollMs: number;
  readonly #clock: Clock;
  readonly #stop: AbortSignal;
  #watcher: Deno.FsWatcher | null = null;
  #watchLoop: Promise<void> = Promise.resolve();
  #watchTried = -Infinity;
  #woken = false;
  #wakeResolve: (() => void) | null = null;

  constructor(path: string, pollMs: number, clock: Clock, stop: AbortSignal) {
    this.#path = path;
    this.#pollMs = pollMs;
    this.#clock = clock;
    this.#stop = stop;
    stop.addEventListener("abort", () => this.wake(), { once: true });
  }

  /** Starts watching the directory, unless it is watched or was tried less than 1 s ago. */
  watch(): void {
    if (this.#watcher !== null || this.#stop.aborted) return;
    const now = this.#clock.now();
    if (now - this.#watchTried < 1000) return;
    this.#watchTried = now;
    let w: Deno.FsWatcher;
    try {
      w = Deno.watchFs(dirname(this.#path), { recursive: false });
    } catch {
      return; // the directory may not exist yet: polling covers it, and we try again later
    }
    this.#watcher = w;
    const base = basename(this.#path);
    this.#watchLoop = (async () => {
      try {
        for await (const ev of w) {
          if (ev.paths.some((p) => basename(p) === base)) this.wake();
        }
      } catch { /* closed or failed: polling goes on */ }
      if (this.#watcher === w) this.#watcher = null;
    })();
  }

  /** Ends the current (or the next) {@linkcode ChangeWaiter.waitForChange}. */
  wake(): void {
    this.#woken = true;
    this.#wakeResolve?.();
  }

  /** Waits for a change notification, a poll interval, or stop. */
  async waitForChange(): Promise<void> {
    if (this.#watcher === null) this.watch();
    if (!this.#woken) {
      const woke = new Promise<void>((r) => this.#wakeResolve = r);
      await Promise.race([this.sleep(this.#pollMs, woke), woke]);
      this.#wakeResolve = null;
    }
    this.#woken = false;
  }

  /** Sleeps `ms` on the clock; ends early on stop (or when `until` resolves). */
  async sleep(ms: number, until?: Promise<void>): Promise<void> {
    if (ms <= 0 || this.#stop.aborted) return;
    if (until === undefined) {
      await abortableSleep(this.#clock, ms, this.#stop);
      return;
    }
    const ac = new AbortController();
    const onStop = () => ac.abort();
    this.#stop.addEventListener("abort", onStop, { once: true });
    until.then(onStop);
    try {
      await abortableSleep(this.#clock, ms, ac.signal);
    } finally {
      this.#stop.removeEventListener("abort", onStop);
    }
  }

  /** Resolves once stop aborted. */
  stopped(): Promise<void> {
    return new Promise((r) => {
      if (this.#stop.aborted) r();
      else this.#stop.addEventListener("abort", () => r(), { once: true });
    });
  }

  /** Stops watching. */
  async close(): Promise<void> {
    const w = this.#watcher;
    this.#watcher = null;
    try {
      w?.close();
    } catch { /* already closed */ }
    await this.#watchLoop;
  }
}
