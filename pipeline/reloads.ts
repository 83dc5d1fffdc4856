/**
 * Outcomes of config reloads, as Prometheus counts its own: how many succeeded or failed,
 * and when the config in force was last loaded successfully (at startup, then each reload).
 *
 * @module
 */

/**
 * Reload outcomes, read by `/metrics`.
 *
 * @example
 * ```ts
 * const reloads = new ReloadStats();   // the startup load counts as the last success
 * reloads.failed();
 * reloads.lastSucceeded;               // false
 * ```
 */
export class ReloadStats {
  success = 0;
  failure = 0;
  /** Unix time, milliseconds, of the last successful load (startup included). */
  lastSuccessAt: number;
  /** Whether the last attempt succeeded: the config on disk is the one in force. */
  lastSucceeded = true;

  constructor(now: number = Date.now()) {
    this.lastSuccessAt = now;
  }

  /** Counts a reload that was applied in full. */
  succeeded(now: number = Date.now()): void {
    this.success++;
    this.lastSuccessAt = now;
    this.lastSucceeded = true;
  }

  /** Counts a reload refused, or applied only in part. */
  failed(): void {
    this.failure++;
    this.lastSucceeded = false;
  }
}
