/**
 * The progress bar long CLI jobs draw on a terminal's stderr (policy tools, rbac, verify,
 * buffer inspect --dump): bytes of the input read, and a count of what was found in them.
 *
 * @module
 */
import { writeAllSync } from "./write_all.ts";

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
 * Where a bar is drawn (stderr, or a test's buffer).
 *
 * @example
 * ```ts
 * const sink: ProgressSink = { write: async (b) => void Deno.stderr.writeSync(b) };
 * ```
 */
export interface ProgressSink {
  write(bytes: Uint8Array): Promise<void>;
}

/**
 * Draws `\r[####    ] 40% 12345 events`, again only when the percentage changes; `sink`
 * null draws nothing. Progress is in bytes of the input files as stored (compressed ones
 * too), so it moves evenly whatever they hold; `unit` names what is counted.
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

  constructor(
    readonly sink: ProgressSink | null,
    readonly total: number,
    readonly unit: string = "events",
  ) {}

  /** Counts bytes read. */
  read(bytes: number): void {
    this.#read += bytes;
  }

  /** Redraws the bar if its percentage changed. */
  async draw(count: number): Promise<void> {
    if (this.sink === null) return;
    const frac = Math.min(1, this.#read / this.total);
    const percent = Math.floor(frac * 100);
    if (percent === this.#shown) return;
    this.#shown = percent;
    const filled = Math.round(frac * WIDTH);
    const bar = "#".repeat(filled) + " ".repeat(WIDTH - filled);
    await this.sink.write(encoder.encode(`\r[${bar}] ${percent}% ${count} ${this.unit}`));
  }

  /** Clears the bar. */
  async done(): Promise<void> {
    if (this.sink === null || this.#shown < 0) return;
    this.#shown = -1;
    await this.sink.write(encoder.encode("\r\x1b[K"));
  }
}

/**
 * A bar on this process's stderr for a job reading `total` bytes (or `total` items of
 * `opts.bytes` bytes in all): drawn only when stderr is a terminal, the bytes are
 * {@linkcode PROGRESS_MIN_BYTES} or more and, with `unlessStdoutTerminal` (a job whose output
 * goes to stdout as it runs), stdout is not that terminal too.
 *
 * @example
 * ```ts
 * const progress = stderrProgress(totalBytes, "lines");
 * ```
 */
export function stderrProgress(
  total: number,
  unit: string,
  opts: { bytes?: number; unlessStdoutTerminal?: boolean } = {},
): Progress {
  const show = Deno.stderr.isTerminal() && (opts.bytes ?? total) >= PROGRESS_MIN_BYTES &&
    !(opts.unlessStdoutTerminal && Deno.stdout.isTerminal());
  const sink: ProgressSink = {
    write: (bytes) => Promise.resolve(writeAllSync(Deno.stderr, bytes)),
  };
  return new Progress(show ? sink : null, total, unit);
}
