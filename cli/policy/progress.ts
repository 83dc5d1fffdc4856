/**
 * The progress bar drawn on a terminal's stderr while a large input is read.
 *
 * @module
 */
import type { ByteSink } from "./io.ts";

const encoder = new TextEncoder();
const WIDTH = 30;

/**
 * Inputs smaller than this are read too fast for a bar to help.
 *
 * @example
 * ```ts
 * const show = io.stderrIsTerminal && total >= PROGRESS_MIN_BYTES;
 * ```
 */
export const PROGRESS_MIN_BYTES = 16 * 1024 * 1024;

/**
 * Draws `\r[####    ] 40% 12345 events`, again only when the percentage changes; `sink`
 * null draws nothing. Progress is in bytes of the input files as stored (compressed ones
 * too), so it moves evenly whatever they hold.
 *
 * @example
 * ```ts
 * const progress = new Progress(io.stderrIsTerminal ? io.stderr : null, totalBytes);
 * progress.read(chunk.length);
 * await progress.draw(events);
 * await progress.done();
 * ```
 */
export class Progress {
  #read = 0;
  #shown = -1;

  constructor(readonly sink: ByteSink | null, readonly total: number) {}

  /** Counts bytes read. */
  read(bytes: number): void {
    this.#read += bytes;
  }

  /** Redraws the bar if its percentage changed. */
  async draw(events: number): Promise<void> {
    if (this.sink === null) return;
    const frac = Math.min(1, this.#read / this.total);
    const percent = Math.floor(frac * 100);
    if (percent === this.#shown) return;
    this.#shown = percent;
    const filled = Math.round(frac * WIDTH);
    const bar = "#".repeat(filled) + " ".repeat(WIDTH - filled);
    await this.sink.write(encoder.encode(`\r[${bar}] ${percent}% ${events} events`));
  }

  /** Clears the bar. */
  async done(): Promise<void> {
    if (this.sink === null || this.#shown < 0) return;
    this.#shown = -1;
    await this.sink.write(encoder.encode("\r\x1b[K"));
  }
}
