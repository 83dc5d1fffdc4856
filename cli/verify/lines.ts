/**
 * A log file's lines, streamed (gzip too), each with its digest: what `verify` compares with
 * the checkpoints.
 *
 * @module
 */
import { lineDigest } from "../../backends/integrity/format.ts";

/**
 * One line of a log file as read.
 *
 * @example
 * ```ts
 * const l: ReadLine = { no: 1, digest: "ab12…", complete: true, bytes: 512 };
 * ```
 */
export interface ReadLine {
  /** 1-based line number in the file. */
  readonly no: number;
  /** SHA-256 (hex) of the line's bytes, newline included. */
  readonly digest: string;
  /** False for a last line without its newline (a file cut mid-line). */
  readonly complete: boolean;
  readonly bytes: number;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Called with the bytes of each chunk read from the file as stored (before gunzip), before
 * its lines are yielded: for a progress bar.
 *
 * @example
 * ```ts
 * const onRead: OnRead = (n) => progress.read(n);
 * ```
 */
export type OnRead = (bytes: number) => void | Promise<void>;

/**
 * The lines of `path` (gunzipped when it ends in `.gz`), in constant memory but for one line.
 *
 * @example
 * ```ts
 * for await (const line of readLines("audit.log")) console.log(line.no, line.digest);
 * ```
 */
export async function* readLines(path: string, onRead?: OnRead): AsyncGenerator<ReadLine> {
  const file = await Deno.open(path, { read: true });
  let stream: ReadableStream<Uint8Array> = file.readable;
  if (onRead) {
    stream = stream.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        async transform(chunk, out) {
          await onRead(chunk.length);
          out.enqueue(chunk);
        },
      }),
    );
  }
  if (path.endsWith(".gz")) {
    stream = stream.pipeThrough(
      new DecompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>,
    );
  }
  let rest = new Uint8Array(0);
  let no = 0;
  for await (const chunk of stream) {
    let buf = rest.length > 0 ? concat(rest, chunk) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      const line = buf.subarray(start, nl + 1);
      yield { no: ++no, digest: lineDigest(line), complete: true, bytes: line.length };
      start = nl + 1;
    }
    buf = buf.subarray(start);
    rest = buf.slice();
  }
  if (rest.length > 0) {
    yield { no: ++no, digest: lineDigest(rest), complete: false, bytes: rest.length };
  }
}

/**
 * An async iterator one can look ahead in.
 *
 * @example
 * ```ts
 * const p = new Peekable(readLines("audit.log"));
 * const next = await p.peek(1);
 * ```
 */
export class Peekable<T> {
  readonly #it: AsyncIterator<T>;
  readonly #buf: T[] = [];
  #done = false;

  constructor(it: AsyncIterator<T>) {
    this.#it = it;
  }

  /**
   * The `k`-th item ahead (0 = next), or null past the end.
   *
   * @example
   * ```ts
   * await p.peek(0);
   * ```
   */
  async peek(k: number): Promise<T | null> {
    while (this.#buf.length <= k && !this.#done) {
      const r = await this.#it.next();
      if (r.done) this.#done = true;
      else this.#buf.push(r.value);
    }
    return this.#buf[k] ?? null;
  }

  /**
   * Takes the next item, or null.
   *
   * @example
   * ```ts
   * await p.take();
   * ```
   */
  async take(): Promise<T | null> {
    const v = await this.peek(0);
    if (v !== null) this.#buf.shift();
    return v;
  }
}
