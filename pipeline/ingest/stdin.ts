/**
 * The stdin source: JSON lines of audit events (a line may also hold an `EventList` or a
 * JSON array), or one pretty-printed JSON document spread over many lines. The stream closes
 * at end of input, so the pipeline drains and the daemon exits.
 *
 * @module
 */
import { concatBytes } from "../core/bytes.ts";
import { Ack } from "../core/ack.ts";
import type { Chunk, Envelope } from "../core/envelope.ts";
import { decodeBody, DecodeError, decodeLine, type Rejected } from "../core/decode.ts";
import { decodeUtf8 } from "../core/utf8.ts";
import type { SourceConfig } from "../config/schema.ts";
import { type Logger, RateLimitedLog } from "../core/log.ts";
import type { SourceStats } from "../core/stats.ts";
import { LineSplitter } from "./lines.ts";

/**
 * The config of a stdin source.
 *
 * @example
 * ```ts
 * const cfg: StdinConfig = { type: "stdin", maxLineBytes: 1 << 20 };
 * ```
 */
export type StdinConfig = Extract<SourceConfig, { type: "stdin" }>;

/**
 * What a stdin source needs from the daemon.
 *
 * @example
 * ```ts
 * const deps: StdinDeps = { name: "stdin", log, stats, signal: ac.signal };
 * ```
 */
export interface StdinDeps {
  readonly name: string;
  readonly log: Logger;
  readonly stats: SourceStats;
  /** Aborting stops reading and closes the stream. */
  readonly signal: AbortSignal;
  /** Largest multi-line JSON document buffered whole, bytes; default 64 MiB. */
  readonly maxDocumentBytes?: number;
}

const DEFAULT_MAX_DOCUMENT = 64 * 1024 * 1024;
const BLANK = new Set([0x20, 0x09, 0x0d, 0x0a]);
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const textDecoder = new TextDecoder();

function firstNonBlank(line: Uint8Array): number {
  for (const b of line) if (!BLANK.has(b)) return b;
  return -1;
}

/**
 * Reads audit events from `input` (stdin by default), one chunk per read.
 *
 * Input is JSON lines unless its first non-blank line starts with `{` or `[` and is not JSON
 * by itself: then it is taken as one multi-line document (`EventList`, array or `Event`),
 * buffered up to `maxDocumentBytes` and decoded at end of input. If it turns out not to be
 * one (it does not parse, or it is too big), the buffered input is read as lines after all.
 *
 * Acks are not awaited: stdin cannot be re-read, so there is nothing to retry.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * const stream = stdinSource(
 *   { type: "stdin", maxLineBytes: 1 << 20 },
 *   { name: "stdin", log, stats: new SourceStats("stdin"), signal: ac.signal },
 * );
 * for await (const chunk of stream) dispatch(chunk); // ends at end of input
 * ```
 */
export function stdinSource(
  cfg: StdinConfig,
  deps: StdinDeps,
  input: ReadableStream<Uint8Array> = Deno.stdin.readable,
): ReadableStream<Chunk> {
  return new StdinReader(cfg, deps, input).stream;
}

class StdinReader {
  readonly stream: ReadableStream<Chunk>;
  readonly #cfg: StdinConfig;
  readonly #log: Logger;
  readonly #stats: SourceStats;
  readonly #signal: AbortSignal;
  readonly #maxDoc: number;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #invalidLog: RateLimitedLog;
  readonly #tooLongLog: RateLimitedLog;
  #controller!: ReadableStreamDefaultController<Chunk>;
  #splitter: LineSplitter;
  /** "detect" until the first non-blank line tells lines from a multi-line document. */
  #mode: "detect" | "lines" | "document" = "detect";
  /** Every byte read, kept while detecting and while buffering a document. */
  #raw: Uint8Array[] = [];
  #rawLen = 0;
  #closed = false;

  constructor(cfg: StdinConfig, deps: StdinDeps, input: ReadableStream<Uint8Array>) {
    this.#cfg = cfg;
    this.#log = deps.log.with({ source: deps.name });
    this.#stats = deps.stats;
    this.#signal = deps.signal;
    this.#maxDoc = deps.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT;
    this.#reader = input.getReader();
    this.#invalidLog = new RateLimitedLog(this.#log, "invalid input skipped");
    this.#tooLongLog = new RateLimitedLog(this.#log, "lines over maxLineBytes skipped");
    this.#splitter = this.#newSplitter();
    this.stream = new ReadableStream<Chunk>({
      start: (c) => {
        this.#controller = c;
      },
      pull: (c) => this.#pull(c),
      cancel: async (reason) => {
        this.#finish();
        await this.#reader.cancel(reason).catch(() => {});
      },
    }, { highWaterMark: 0 });
    this.#stats.ready = true;
    if (this.#signal.aborted) this.#onAbort();
    else this.#signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  readonly #onAbort = () => {
    // Ends a pending read (it returns done), so the pull in progress closes the stream.
    this.#reader.cancel(this.#signal.reason).catch(() => {});
    this.#close();
  };

  #newSplitter(): LineSplitter {
    return new LineSplitter({
      maxLineBytes: this.#cfg.maxLineBytes,
      onTooLong: ({ offset, bytes }) => {
        if (this.#mode === "detect") this.#endDetect("lines");
        this.#stats.reject("too_long");
        this.#tooLongLog.add(1, { offset, bytes, max: this.#cfg.maxLineBytes });
      },
    });
  }

  async #pull(c: ReadableStreamDefaultController<Chunk>): Promise<void> {
    while (!this.#closed) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await this.#reader.read();
      } catch (err) {
        this.#log.error("reading stdin failed", { error: err });
        r = { done: true, value: undefined };
      }
      if (this.#closed) return;
      const out: Envelope[] = [];
      if (r.done) {
        this.#atEnd(out);
        this.#emit(c, out);
        this.#close();
        return;
      }
      let bytes = r.value;
      // A short read must not pin a large buffer for as long as its events live.
      if (bytes.byteLength * 2 < bytes.buffer.byteLength) bytes = bytes.slice();
      this.#feed(bytes, out);
      if (this.#emit(c, out)) return;
    }
  }

  #emit(c: ReadableStreamDefaultController<Chunk>, items: Envelope[]): boolean {
    if (items.length === 0) return false;
    this.#stats.events += items.length;
    c.enqueue({ items, ack: new Ack() });
    return true;
  }

  #feed(bytes: Uint8Array, out: Envelope[]): void {
    if (this.#mode !== "lines") {
      this.#raw.push(bytes);
      this.#rawLen += bytes.length;
    }
    if (this.#mode === "document") {
      if (this.#rawLen > this.#maxDoc) {
        this.#log.warn("input is larger than a document may be; reading it as lines", {
          maxDocumentBytes: this.#maxDoc,
        });
        this.#replayAsLines(out);
      }
      return;
    }
    this.#splitter.push(bytes, (line, offset) => this.#line(line, offset, out));
  }

  #line(line: Uint8Array, offset: number, out: Envelope[]): void {
    if (this.#mode === "document") return; // the rest of this read is in the document
    const first = firstNonBlank(line);
    if (first < 0) return;
    if (this.#mode === "detect") {
      if ((first === OPEN_BRACE || first === OPEN_BRACKET) && !isJson(line)) {
        this.#mode = "document";
        return;
      }
      this.#endDetect("lines");
    }
    try {
      const { envelopes, rejected } = decodeLine(line);
      for (const e of envelopes) out.push(e);
      this.#rejected(rejected, offset);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.#stats.reject("invalid_event");
      this.#invalidLog.add(1, { offset, reason: err.message });
    }
  }

  #endDetect(mode: "lines"): void {
    this.#mode = mode;
    this.#raw = [];
    this.#rawLen = 0;
  }

  #rejected(rejected: Rejected[], offset: number): void {
    if (rejected.length === 0) return;
    this.#stats.reject("invalid_event", rejected.length);
    this.#invalidLog.add(rejected.length, {
      offset,
      reason: `item ${rejected[0].index}: ${rejected[0].reason}`,
    });
  }

  /** The buffered input was not one document after all: split it into lines from the start. */
  #replayAsLines(out: Envelope[]): void {
    const all = concatBytes(this.#raw, this.#rawLen);
    this.#endDetect("lines");
    this.#splitter = this.#newSplitter();
    this.#splitter.push(all, (line, offset) => this.#line(line, offset, out));
  }

  #atEnd(out: Envelope[]): void {
    if (this.#mode !== "document") {
      const last = this.#splitter.flush();
      if (last !== null) this.#line(last.line, last.offset, out);
      // An unterminated first line may have just started a document (TS cannot see
      // that `#line` changes the mode, hence the widening).
      if ((this.#mode as string) !== "document") return;
    }
    // As Go decodes: one U+FFFD per invalid byte, so every sink writes this document's events
    // the same way the line readers' events are written.
    const { text } = decodeUtf8(concatBytes(this.#raw, this.#rawLen));
    try {
      const { envelopes, rejected } = decodeBody(text);
      for (const e of envelopes) out.push(e);
      this.#rejected(rejected, 0);
      this.#endDetect("lines");
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.#log.warn("input is not one JSON document; reading it as lines", {
        reason: err.message,
      });
      this.#replayAsLines(out);
      const last = this.#splitter.flush();
      if (last !== null) this.#line(last.line, last.offset, out);
    }
  }

  #close(): void {
    if (this.#closed) return;
    this.#finish();
    try {
      this.#controller.close();
    } catch { /* cancelled */ }
  }

  #finish(): void {
    this.#closed = true;
    this.#stats.ready = false;
    this.#signal.removeEventListener("abort", this.#onAbort);
    this.#invalidLog.flush();
    this.#tooLongLog.flush();
  }
}

function isJson(line: Uint8Array): boolean {
  try {
    JSON.parse(textDecoder.decode(line));
    return true;
  } catch {
    return false;
  }
}
