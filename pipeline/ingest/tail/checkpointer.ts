/**
 * The tail source's side of its checkpoint: the acknowledged position (`commit`), written
 * to the checkpoint file at most once per interval, never two writes at once, and once more
 * at close.
 *
 * A write that fails (the folder is gone, read-only, full) leaves events flowing, but a
 * restart would resume from an old position or from nowhere: so it is counted
 * (`auditpipe_tail_checkpoint_errors_total`), logged with the checkpoint's path and the OS
 * error, and makes the source not ready (`/readyz` 503) until a write succeeds; failed
 * writes are retried with backoff even when no new event arrives.
 *
 * @module
 */
import { type Logger, RateLimitedLog } from "../../core/log.ts";
import { Backoff } from "../../core/retry.ts";
import { errorText } from "../../core/errors.ts";
import type { SourceStats } from "../../core/stats.ts";
import { type Checkpoint, fingerprint, writeCheckpoint } from "../checkpoint.ts";
import type { Pos } from "./open_file.ts";

/**
 * What a {@linkcode Checkpointer} needs.
 *
 * @example
 * ```ts
 * const opts: CheckpointerOptions = { file: "/var/lib/auditpipe/tail.json",
 *   path: "/var/log/audit.log", interval: 100, now: () => performance.now(),
 *   sleep: (ms) => waiter.sleep(ms), stop: stop.signal, log, stats };
 * ```
 */
export interface CheckpointerOptions {
  /** The checkpoint file; none: nothing is written. */
  readonly file: string | undefined;
  /** The followed path, recorded in the checkpoint. */
  readonly path: string;
  /** Least time between two writes, ms. */
  readonly interval: number;
  readonly now: () => number;
  /** Sleeps, ending early on stop. */
  readonly sleep: (ms: number) => Promise<void>;
  /** Once aborted, no more writes are scheduled (close writes the last one). */
  readonly stop: AbortSignal;
  readonly log: Logger;
  /** Counts failed writes; `failing` says why the source is not ready. */
  readonly stats: SourceStats;
}

/** First wait before writing again after a failed write, ms; doubles up to the max. */
const RETRY_MIN = 1_000;
const RETRY_MAX = 30_000;

/**
 * Keeps the checkpoint file at the acknowledged position.
 *
 * @example
 * ```ts
 * cp.commit = { h, offset: 4096 };
 * cp.schedule();      // written within the interval
 * await cp.close();   // and at the end
 * ```
 */
export class Checkpointer {
  /** Everything before this position is acknowledged. */
  commit: Pos | null = null;
  readonly #opts: CheckpointerOptions;
  /** The position the checkpoint file holds. */
  #written: Pos | null = null;
  #scheduled = false;
  #last = -Infinity;
  #task: Promise<void> = Promise.resolve();
  #chain: Promise<void> = Promise.resolve();
  readonly #failedLog: RateLimitedLog;
  readonly #retry: Backoff;
  #retrying = false;

  constructor(opts: CheckpointerOptions) {
    this.#opts = opts;
    this.#failedLog = new RateLimitedLog(
      opts.log,
      "tail checkpoint write failed; not ready until a write succeeds",
      1000,
      "error",
    );
    this.#retry = new Backoff({
      initialBackoff: Math.max(RETRY_MIN, opts.interval),
      maxBackoff: RETRY_MAX,
      factor: 2,
    });
  }

  /** Writes the commit position after the interval since the last write, unless pending. */
  schedule(): void {
    if (this.#opts.file === undefined || this.#scheduled || this.#opts.stop.aborted) return;
    this.#scheduled = true;
    const wait = this.#last + this.#opts.interval - this.#opts.now();
    this.#task = (async () => {
      if (wait > 0) await this.#opts.sleep(wait);
      this.#scheduled = false;
      await this.write();
    })();
  }

  /** Writes the checkpoint if it moved; writes never overlap. */
  write(): Promise<void> {
    this.#chain = this.#chain.then(async () => {
      const pos = this.commit;
      const file = this.#opts.file;
      if (pos === null || file === undefined) return;
      if (this.#written?.h === pos.h && this.#written.offset === pos.offset) return;
      const head = pos.h.head;
      const cp: Checkpoint = {
        version: 1,
        path: this.#opts.path,
        dev: pos.h.dev,
        ino: pos.h.ino,
        offset: pos.offset,
        fingerprint: await fingerprint(head),
        fingerprintBytes: head.length,
      };
      try {
        await writeCheckpoint(file, cp);
      } catch (err) {
        this.#failed(file, err);
        return;
      }
      this.#written = pos;
      this.#last = this.#opts.now();
      this.#retry.reset();
      if (this.#opts.stats.failing !== null) {
        this.#opts.stats.failing = null;
        this.#failedLog.flush();
        this.#opts.log.info("tail checkpoint written again; ready", { checkpoint: file });
      }
    });
    return this.#chain;
  }

  #failed(file: string, err: unknown): void {
    const error = errorText(err);
    const stats = this.#opts.stats;
    stats.checkpointErrors++;
    stats.failing = `checkpoint ${file} cannot be written: ${error}`;
    this.#failedLog.add(1, { checkpoint: file, error });
    this.#retryLater();
  }

  /** Writes again after a backoff, so an idle source becomes ready once the cause is fixed. */
  #retryLater(): void {
    if (this.#retrying || this.#opts.stop.aborted) return;
    this.#retrying = true;
    const delay = this.#retry.next();
    void (async () => {
      await this.#opts.sleep(delay);
      this.#retrying = false;
      if (!this.#opts.stop.aborted) await this.write();
    })();
  }

  /** Waits for a scheduled write, then writes the final position. */
  async close(): Promise<void> {
    await this.#task;
    await this.write();
    this.#failedLog.flush();
  }
}
