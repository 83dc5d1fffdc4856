/**
 * The tail source's side of its checkpoint: the acknowledged position (`commit`), written
 * to the checkpoint file at most once per interval, never two writes at once, and once more
 * at close.
 *
 * @module
 */
import type { RateLimitedLog } from "../../core/log.ts";
import { errorText } from "../../core/retry.ts";
import { type Checkpoint, fingerprint, writeCheckpoint } from "../checkpoint.ts";
import type { Pos } from "./open_file.ts";

/**
 * What a {@linkcode Checkpointer} needs.
 *
 * @example
 * ```ts
 * const opts: CheckpointerOptions = { file: "/var/lib/auditpipe/tail.json",
 *   path: "/var/log/audit.log", interval: 100, now: () => performance.now(),
 *   sleep: (ms) => waiter.sleep(ms), stop: stop.signal, errorLog };
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
  readonly errorLog: RateLimitedLog;
}

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

  constructor(opts: CheckpointerOptions) {
    this.#opts = opts;
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
        this.#written = pos;
        this.#last = this.#opts.now();
      } catch (err) {
        this.#opts.errorLog.add(1, { checkpoint: file, error: errorText(err) });
      }
    });
    return this.#chain;
  }

  /** Waits for a scheduled write, then writes the final position. */
  async close(): Promise<void> {
    await this.#task;
    await this.write();
  }
}
