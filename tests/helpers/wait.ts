/**
 * Waiting in tests, always under a deadline: a regression that never produces what a test
 * waits for fails that test, naming what it waited for, instead of hanging the suite.
 * Deadlines are generous (a loaded 2-core machine is slow); they bound a hang, not speed.
 *
 * @module
 */

/** How long a wait lasts by default. */
export const WAIT_MS = 20_000;

/**
 * Polls `cond` until it holds; throws after `timeoutMs`, naming `what` (and `detail()`, the
 * state seen last, when given).
 *
 * @example
 * ```ts
 * await waitFor("the receiver's first request", () => recv.requests > 0);
 * ```
 */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  opts: { timeoutMs?: number; intervalMs?: number; detail?: () => string } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? WAIT_MS;
  const deadline = Date.now() + timeoutMs;
  while (!await cond()) {
    if (Date.now() > deadline) {
      const detail = opts.detail ? `; ${opts.detail()}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 10));
  }
}

/**
 * `promise`, or a rejection naming `what` once `timeoutMs` pass first.
 *
 * @example
 * ```ts
 * const status = await deadline(child.status, "the child to exit", 10_000);
 * ```
 */
export async function deadline<T>(
  promise: Promise<T>,
  what: string,
  timeoutMs: number = WAIT_MS,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
