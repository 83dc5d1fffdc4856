/**
 * Writing lines in large pieces: one `write` per 64 KiB instead of one per line, which is
 * most of the cost of printing millions of small lines.
 *
 * @module
 */
import type { ByteSink } from "./io.ts";

const encoder = new TextEncoder();
const NEWLINE = new Uint8Array([0x0a]);
const FLUSH_AT = 64 * 1024;

/**
 * Buffers lines (each gets a `\n`) and writes them to a sink in large pieces.
 *
 * @example
 * ```ts
 * const out = new LineWriter(io.stdout);
 * await out.line('{"auditID":"a"}');
 * await out.flush();
 * ```
 */
export class LineWriter {
  #parts: Uint8Array[] = [];
  #size = 0;

  constructor(readonly sink: ByteSink) {}

  /** Adds a line; writes when enough are buffered. */
  async line(text: string | Uint8Array): Promise<void> {
    this.push(text);
    if (this.#size >= FLUSH_AT) await this.flush();
  }

  /** Adds a line without writing, for callers that cannot wait; see {@linkcode flushIfFull}. */
  push(text: string | Uint8Array): void {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    this.#parts.push(bytes, NEWLINE);
    this.#size += bytes.length + 1;
  }

  /** Writes when enough is buffered. */
  async flushIfFull(): Promise<void> {
    if (this.#size >= FLUSH_AT) await this.flush();
  }

  /** Writes everything buffered. */
  async flush(): Promise<void> {
    if (this.#size === 0) return;
    const out = new Uint8Array(this.#size);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    this.#parts = [];
    this.#size = 0;
    await this.sink.write(out);
  }
}
