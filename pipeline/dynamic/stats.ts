/**
 * What the AuditSink folder gave, for `/metrics`: how many AuditSinks run, how many problems
 * the last read of the folder found (objects left out), and how folder changes went.
 *
 * @module
 */

/**
 * AuditSink counts, set by the daemon and read at scrape time.
 *
 * @example
 * ```ts
 * const auditSinks = new AuditSinkStats();
 * auditSinks.read(2, 1);          // 2 running, 1 object left out
 * auditSinks.reloaded(true);
 * ```
 */
export class AuditSinkStats {
  /** AuditSinks running as sinks. */
  running = 0;
  /** Problems the last read of the folder found: objects left out, files unreadable. */
  invalid = 0;
  /** Folder changes applied, and those refused or unreadable. */
  readonly reloads = { success: 0, failure: 0 };

  /** Records what a read of the folder gave and was applied. */
  read(running: number, invalid: number): void {
    this.running = running;
    this.invalid = invalid;
  }

  /** Counts one folder change, applied or not. */
  reloaded(ok: boolean): void {
    if (ok) this.reloads.success++;
    else this.reloads.failure++;
  }
}
