/**
 * Splitting a byte stream into lines for the tail and stdin sources: lines may be split
 * across reads, end in `\n` or `\r\n`, and may be longer than the configured limit, in which
 * case they are reported and skipped without ever holding more than the limit in memory.
 *
 * @module
 */
import { concatBytes } from "../core/bytes.ts";

const LF = 0x0a;
const CR = 0x0d;

/**
 * A line that went over the limit; reported once, when the limit is crossed.
 *
 * @example
 * ```ts
 * const onTooLong = (t: TooLongLine) => log.warn("line too long", { offset: t.offset });
 * ```
 */
export interface TooLongLine {
  /** Absolute offset of the line's first byte. */
  readonly offset: number;
  /** Bytes of the line seen when it was reported (more than the limit; the line may be longer). */
  readonly bytes: number;
}

/**
 * Options of a {@linkcode LineSplitter}.
 *
 * @example
 * ```ts
 * const opts: LineSplitterOptions = { maxLineBytes: 1 << 20, offset: 4096 };
 * ```
 */
export interface LineSplitterOptions {
  /** Longest line handed out, in bytes, without its line end. */
  readonly maxLineBytes: number;
  /** Absolute offset of the first byte that will be pushed (a file offset); default 0. */
  readonly offset?: number;
  /** Called for each line over `maxLineBytes`; the line is skipped. */
  readonly onTooLong?: (line: TooLongLine) => void;
  /**
   * Drop everything up to and including the first `\n` without reporting it: used when
   * starting to read in the middle of a line (tail `startAt: end` on a file whose last line
   * is still being written).
   */
  readonly skipFirstLine?: boolean;
}

/**
 * Splits pushed byte chunks into complete lines, tracking absolute offsets so a reader can
 * checkpoint "everything before this byte has been handed out".
 *
 * Lines are views into the pushed chunks where possible (no copy), so a caller must not
 * reuse a chunk's buffer after pushing it. A line that spans chunks is copied once, when its
 * end arrives. Buffered bytes never exceed `maxLineBytes + 1` (the `+ 1` leaves room for a
 * `\r` whose `\n` has not arrived yet).
 *
 * @example
 * ```ts
 * const s = new LineSplitter({ maxLineBytes: 1024 });
 * const enc = new TextEncoder();
 * s.push(enc.encode('{"a":1}\n{"b"'), (line, offset) => console.log(offset, line.length));
 * // logs "0 7"; s.consumed === 8, s.pending === 4
 * s.push(enc.encode(":2}\r\n"), (line, offset) => console.log(offset, line.length));
 * // logs "8 7"
 * ```
 */
export class LineSplitter {
  readonly #max: number;
  readonly #onTooLong: ((line: TooLongLine) => void) | undefined;
  #parts: Uint8Array[] = [];
  #partLen = 0;
  /** Inside a line that is being skipped (too long, or the unreported first line). */
  #skipping: boolean;
  /** Absolute offset of the next byte to be pushed. */
  #offset: number;
  /** Absolute offset where the current (incomplete) line starts. */
  #lineStart: number;

  constructor(opts: LineSplitterOptions) {
    this.#max = opts.maxLineBytes;
    this.#onTooLong = opts.onTooLong;
    this.#offset = this.#lineStart = opts.offset ?? 0;
    this.#skipping = opts.skipFirstLine ?? false;
  }

  /**
   * Offset just past the last complete line handed out (or skipped): resuming a read here
   * loses and repeats nothing.
   */
  get consumed(): number {
    return this.#lineStart;
  }

  /** Absolute offset of the next byte to be pushed. */
  get offset(): number {
    return this.#offset;
  }

  /** Bytes pushed but not yet part of a complete line. */
  get pending(): number {
    return this.#offset - this.#lineStart;
  }

  /**
   * Splits `chunk`, calling `onLine` with each complete line (without `\n` or `\r\n`) and
   * the absolute offset of its first byte, in order.
   */
  push(chunk: Uint8Array, onLine: (line: Uint8Array, offset: number) => void): void {
    const base = this.#offset;
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) {
        this.#hold(chunk.subarray(pos));
        break;
      }
      const start = this.#lineStart;
      if (this.#skipping) {
        this.#skipping = false;
      } else {
        const seg = chunk.subarray(pos, nl);
        const total = this.#partLen + seg.length;
        // A trailing `\r` is not part of the line, so one byte over is still in bounds here.
        if (total > this.#max + 1) {
          this.#onTooLong?.({ offset: start, bytes: total });
        } else {
          let line = this.#partLen === 0 ? seg : this.#join(seg);
          if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, -1);
          if (line.length > this.#max) this.#onTooLong?.({ offset: start, bytes: line.length });
          else onLine(line, start);
        }
        if (this.#partLen !== 0) {
          this.#parts = [];
          this.#partLen = 0;
        }
      }
      pos = nl + 1;
      this.#lineStart = base + pos;
    }
    this.#offset = base + chunk.length;
  }

  /**
   * Ends the input: returns the incomplete last line (no line end ever came) with its
   * offset, or null when there is none or it was being skipped. Afterwards `consumed`
   * equals `offset`.
   */
  flush(): { line: Uint8Array; offset: number } | null {
    const start = this.#lineStart;
    this.#lineStart = this.#offset;
    if (this.#skipping) {
      this.#skipping = false;
      return null;
    }
    if (this.#partLen === 0) return null;
    let line = this.#join(new Uint8Array(0));
    this.#parts = [];
    this.#partLen = 0;
    if (line[line.length - 1] === CR) line = line.subarray(0, -1);
    return { line, offset: start };
  }

  #hold(rest: Uint8Array): void {
    if (this.#skipping) return;
    const total = this.#partLen + rest.length;
    if (total > this.#max + 1) {
      // Drop what is held and skip to the next line end: a long line costs no memory.
      this.#parts = [];
      this.#partLen = 0;
      this.#skipping = true;
      this.#onTooLong?.({ offset: this.#lineStart, bytes: total });
      return;
    }
    this.#parts.push(rest);
    this.#partLen = total;
  }

  #join(last: Uint8Array): Uint8Array {
    return concatBytes([...this.#parts, last], this.#partLen + last.length);
  }
}
