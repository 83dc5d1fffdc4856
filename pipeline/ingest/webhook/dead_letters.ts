/**
 * The webhook source's dead-letter file: items of a body that are not valid events.
 *
 * @module
 */
import type { Rejected } from "../../core/decode.ts";
import type { Logger } from "../../core/log.ts";

/**
 * Appends rejected items as JSON lines (`ts`, `source`, `index`, `reason`, `item`) to a file,
 * one write after another so lines never interleave; without a file it does nothing.
 *
 * @example
 * ```ts
 * const dead = new DeadLetters("/var/log/auditpipe/dead.jsonl", "apiserver", log);
 * dead.write(part.rejected);
 * await dead.flushed();
 * ```
 */
export class DeadLetters {
  #last: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string | undefined,
    private readonly source: string,
    private readonly log: Logger,
  ) {}

  /** Queues `items` for appending. */
  write(items: readonly Rejected[]): void {
    const file = this.file;
    if (!file || items.length === 0) return;
    const text = items.map((r) =>
      JSON.stringify({
        ts: new Date().toISOString(),
        source: this.source,
        index: r.index,
        reason: r.reason,
        item: r.item,
      }) + "\n"
    ).join("");
    this.#last = this.#last.then(() =>
      Deno.writeTextFile(file, text, { append: true, mode: 0o600 })
    ).catch((err) => this.log.error("cannot write dead-letter file", { path: file, error: err }));
  }

  /** Resolves once every queued write is done. */
  flushed(): Promise<void> {
    return this.#last;
  }
}
