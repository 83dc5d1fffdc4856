/**
 * The tail source's read loop: read a block at the cursor, split it into lines, decode them
 * into one chunk; at the end of the file look whether the path was rotated, truncated or
 * replaced; and after a sink failed a chunk, wait and re-read from that chunk's start.
 *
 * @module
 */
import { Ack } from "../../core/ack.ts";
import type { Chunk, Envelope } from "../../core/envelope.ts";
import { DecodeError, decodeLine } from "../../core/decode.ts";
import { type Logger, RateLimitedLog } from "../../core/log.ts";
import type { SourceStats } from "../../core/stats.ts";
import { type Clock, systemClock } from "../../core/clock.ts";
import { Backoff } from "../../core/retry.ts";
import { errorText } from "../../core/errors.ts";
import { LineSplitter } from "../lines.ts";
import { CommitWindow } from "../checkpoint.ts";
import { type PullStream, pullStream } from "../pull_stream.ts";
import { type OpenFile, OpenFiles, type Pos, statOrNull } from "./open_file.ts";
import { openSuccessor } from "./rotation.ts";
import { startPosition } from "./start.ts";
import { ChangeWaiter } from "./waiter.ts";
import { Checkpointer } from "./checkpointer.ts";
import type { TailConfig, TailDeps } from "./mod.ts";
import { isBlank } from "../../core/bytes.ts";

/** Where reading is: a file, the next byte to read and the lines being assembled. */
interface Cursor {
  readonly h: OpenFile;
  offset: number;
  readonly splitter: LineSplitter;
  /** A stat showed another file at the path; the next end of file is the real end. */
  replaced: boolean;
}

const MAX_RETRY_DELAY = 30_000;

/**
 * Bytes per read when catching up: each read becomes one chunk, and a chunk's way through
 * the stages (stream hops, acks, the commit window, the ledger, one sink write) costs the
 * same however many events it holds, so fewer, larger chunks cost less per event. At most
 * `maxUnsettled` (16) chunks are held, 4 MiB. A read of a file being written returns what
 * is there, so this adds no latency.
 */
export const READ_SIZE = 256 * 1024;

/**
 * Follows one path; {@linkcode Tailer.stream} is what the source returns.
 *
 * @example
 * ```ts
 * const stream = new Tailer(cfg, deps).stream;
 * ```
 */
export class Tailer {
  readonly stream: PullStream;
  readonly #cfg: TailConfig;
  readonly #log: Logger;
  readonly #stats: SourceStats;
  readonly #clock: Clock;
  readonly #maxUnsettled: number;
  readonly #drainTimeout: number;
  readonly #pollMs: number;
  readonly #buf: Uint8Array;
  readonly #invalidLog: RateLimitedLog;
  readonly #tooLongLog: RateLimitedLog;
  readonly #errorLog: RateLimitedLog;
  readonly #stop = new AbortController();
  readonly #files = new OpenFiles();
  readonly #waiter: ChangeWaiter;
  readonly #checkpoint: Checkpointer;
  readonly #window: CommitWindow<Pos>;
  /** Delays before re-reading after a failed ack. */
  readonly #retry: Backoff;

  #started = false;
  #cursor: Cursor | null = null;
  #rewindTo: Pos | null = null;
  #rewindAt = 0;

  constructor(cfg: TailConfig, deps: TailDeps) {
    this.#cfg = cfg;
    this.#log = deps.log.with({ source: deps.name, path: cfg.path });
    this.#stats = deps.stats;
    this.#clock = deps.clock ?? systemClock;
    this.#retry = new Backoff({
      initialBackoff: deps.retryDelay ?? 1000,
      maxBackoff: MAX_RETRY_DELAY,
      factor: 2,
      jitter: 0,
    });
    this.#maxUnsettled = deps.maxUnsettled ?? 16;
    this.#drainTimeout = deps.drainTimeout ?? 10_000;
    this.#pollMs = Math.max(cfg.pollInterval, 5);
    this.#buf = new Uint8Array(deps.readSize ?? READ_SIZE);
    this.#invalidLog = new RateLimitedLog(this.#log, "invalid lines skipped");
    this.#tooLongLog = new RateLimitedLog(this.#log, "lines over maxLineBytes skipped");
    this.#errorLog = new RateLimitedLog(this.#log, "tail read failed; retrying", 1000, "error");
    this.#waiter = new ChangeWaiter(cfg.path, this.#pollMs, this.#clock, this.#stop.signal);
    this.#checkpoint = new Checkpointer({
      file: cfg.checkpointFile,
      path: cfg.path,
      interval: deps.checkpointInterval ?? 100,
      now: () => this.#clock.now(),
      sleep: (ms) => this.#waiter.sleep(ms),
      stop: this.#stop.signal,
      log: this.#log,
      stats: this.#stats,
    });
    this.#window = new CommitWindow<Pos>({
      onCommit: (end) => this.#onCommit(end),
      onFail: (start, err) => this.#onFail(start, err),
    });
    this.stream = pullStream({
      signal: deps.signal,
      stop: this.#stop,
      next: () => this.#next(),
      finish: () => this.#finish(),
    });
  }

  get #stopping(): boolean {
    return this.#stop.signal.aborted;
  }

  // ---- reading ----

  /** One pull's step: starting first, then following. */
  #next(): Promise<Chunk | null> {
    if (this.#started) return this.#guard(() => this.#step());
    // A failed start (say, the directory is not readable yet) is retried as a whole, so the
    // checkpoint is not forgotten.
    return this.#guard(async () => {
      this.#started = await this.#init();
      return null;
    }).finally(() => this.#waiter.watch());
  }

  /** Makes the chunk of a read and records it, in order, in the commit window. */
  #chunk(envelopes: Envelope[], start: Pos, end: Pos): Chunk {
    const chunk: Chunk = { items: envelopes, ack: new Ack() };
    this.#window.push(start, end, chunk.ack.settled);
    this.#stats.events += envelopes.length;
    return chunk;
  }

  /** Runs `fn`; an unexpected error is logged and retried after a poll interval. */
  async #guard<T>(fn: () => Promise<T | null>): Promise<T | null> {
    try {
      return await fn();
    } catch (err) {
      if (this.#stopping) return null;
      this.#errorLog.add(1, { error: errorText(err) });
      await this.#waiter.sleep(this.#pollMs);
      return null;
    }
  }

  /** One step of following: a chunk to send, or null to step again. */
  async #step(): Promise<Chunk | null> {
    if (this.#rewindTo !== null) {
      await this.#waiter.sleep(this.#rewindAt - this.#clock.now());
      if (!this.#stopping) this.#rewind();
      return null;
    }
    if (this.#window.unsettled >= this.#maxUnsettled) {
      await Promise.race([this.#window.waitForRoom(this.#maxUnsettled), this.#waiter.stopped()]);
      return null;
    }
    const cur = this.#cursor;
    if (cur === null) {
      if (!await this.#openWaited()) await this.#waiter.waitForChange();
      return null;
    }
    const n = await cur.h.readAt(this.#buf, cur.offset);
    if (n === null || n === 0) {
      const r = await this.#atEnd(cur);
      if (r === "wait") await this.#waiter.waitForChange();
      return r === "wait" || r === "again" ? null : r;
    }
    // An exact-size copy: lines are views into it, and a small read must not pin a big buffer.
    const bytes = this.#buf.slice(0, n);
    cur.h.noteHead(bytes, cur.offset);
    cur.offset += n;
    if (cur.offset > cur.h.size) cur.h.size = cur.offset;
    this.#stats.lagBytes = cur.h.size - cur.offset;
    const start = cur.splitter.consumed;
    const envelopes: Envelope[] = [];
    cur.splitter.push(bytes, (line, off) => this.#decode(line, off, cur.h, envelopes, false));
    return this.#result(cur.h, start, cur.splitter.consumed, envelopes);
  }

  /** The chunk of a read, or records a read without events in the window. */
  #result(h: OpenFile, start: number, end: number, envelopes: Envelope[]): Chunk | null {
    if (envelopes.length > 0) {
      return this.#chunk(envelopes, { h, offset: start }, { h, offset: end });
    }
    if (end > start) this.#window.pushSettled({ h, offset: start }, { h, offset: end });
    return null;
  }

  #decode(
    line: Uint8Array,
    offset: number,
    h: OpenFile,
    out: Envelope[],
    incomplete: boolean,
  ): void {
    if (isBlank(line)) return;
    try {
      const { envelopes, rejected } = decodeLine(line);
      for (const e of envelopes) out.push(e);
      if (rejected.length > 0) {
        this.#stats.reject("invalid_event", rejected.length);
        this.#invalidLog.add(rejected.length, {
          file: h.name,
          offset,
          reason: `item ${rejected[0].index}: ${rejected[0].reason}`,
        });
      }
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.#stats.reject("invalid_event");
      const reason = incomplete ? `last line without a line end: ${err.message}` : err.message;
      this.#invalidLog.add(1, { file: h.name, offset, reason });
    }
  }

  #splitter(h: OpenFile, offset: number, skipFirstLine = false): LineSplitter {
    return new LineSplitter({
      maxLineBytes: this.#cfg.maxLineBytes,
      offset,
      skipFirstLine,
      onTooLong: ({ offset: at, bytes }) => {
        this.#stats.reject("too_long");
        this.#tooLongLog.add(1, { file: h.name, offset: at, bytes, max: this.#cfg.maxLineBytes });
      },
    });
  }

  #follow(h: OpenFile, offset: number, skipFirstLine = false): void {
    this.#files.adopt(h);
    this.#cursor = {
      h,
      offset,
      splitter: this.#splitter(h, offset, skipFirstLine),
      replaced: false,
    };
    this.#stats.lagBytes = Math.max(0, h.size - offset);
    this.#stats.ready = true;
  }

  /**
   * At the end of the current file: has the path been rotated, truncated or replaced?
   * Returns a chunk (the old file's unterminated last line), "again" to read on, or "wait".
   */
  async #atEnd(cur: Cursor): Promise<Chunk | "again" | "wait"> {
    const st = await statOrNull(this.#cfg.path);
    if (st === null) return "wait"; // renamed or deleted; the open file may still grow
    if (st.dev !== cur.h.dev || (st.ino ?? 0) !== cur.h.ino) {
      // Writes to the old file all happened before the new one appeared, so one more read
      // to its end after this stat sees all of them.
      this.#stats.lagBytes = Math.max(0, cur.h.size - cur.offset) + st.size;
      if (!cur.replaced) {
        cur.replaced = true;
        return "again";
      }
      return await this.#switch(cur);
    }
    cur.replaced = false;
    if (st.size < cur.offset) return await this.#truncated(cur, st.size);
    if (st.size > cur.h.size) cur.h.size = st.size;
    this.#stats.lagBytes = st.size - cur.offset;
    return st.size > cur.offset ? "again" : "wait";
  }

  /** Leaves a finished (rotated away or deleted) file for the new one at the path. */
  async #switch(cur: Cursor): Promise<Chunk | "again" | "wait"> {
    const h = await openSuccessor(this.#files, this.#cfg.path, cur.h);
    if (h === null) return "wait";
    if (h.is(cur.h)) {
      this.#files.release(h);
      return "wait";
    }
    this.#log.info("file rotated; following the next file", {
      previous: cur.h.name,
      previousBytes: cur.offset,
      next: h.name,
    });
    // kube-apiserver ends every event with a line end; a last line without one is from a
    // writer that died mid-line, and it is delivered if it is whole JSON, reported if not.
    const start = cur.splitter.consumed;
    const last = cur.splitter.flush();
    let chunk: Chunk | null = null;
    if (last !== null) {
      const envelopes: Envelope[] = [];
      this.#decode(last.line, last.offset, cur.h, envelopes, true);
      chunk = this.#result(cur.h, start, cur.offset, envelopes);
    }
    this.#window.pushSettled({ h: cur.h, offset: cur.offset }, { h, offset: 0 });
    this.#follow(h, 0);
    this.#gc();
    return chunk ?? "again";
  }

  async #truncated(cur: Cursor, size: number): Promise<"again"> {
    this.#log.warn("file truncated; reading it from the start", { size, offset: cur.offset });
    // A fresh handle, so positions before the truncation keep the old content's fingerprint.
    const h = await this.#files.open(this.#cfg.path);
    if (!h.is(cur.h)) {
      this.#files.release(h); // replaced meanwhile: the next end of file sees it
      return "again";
    }
    this.#window.pushSettled({ h: cur.h, offset: cur.splitter.consumed }, { h, offset: 0 });
    this.#follow(h, 0);
    this.#gc();
    return "again";
  }

  /** Before any file was found: opens the path once it exists, from its start. */
  async #openWaited(): Promise<boolean> {
    let h: OpenFile;
    try {
      h = await this.#files.open(this.#cfg.path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
    this.#log.info("file appeared; reading it from the start");
    this.#follow(h, 0);
    this.#checkpoint.commit = { h, offset: 0 };
    this.#checkpoint.schedule();
    return true;
  }

  /** Closes files nothing refers to any more. */
  #gc(): void {
    const used: OpenFile[] = [];
    if (this.#cursor) used.push(this.#cursor.h);
    if (this.#checkpoint.commit) used.push(this.#checkpoint.commit.h);
    if (this.#rewindTo) used.push(this.#rewindTo.h);
    for (const p of this.#window.positions()) used.push(p.h);
    this.#files.collect(used);
  }

  // ---- starting ----

  async #init(): Promise<boolean> {
    this.#cursor = null;
    this.#files.releaseAll();
    const start = await startPosition(this.#files, this.#cfg, this.#log);
    if (start === null) {
      this.#log.info("file does not exist yet; waiting for it");
      return true;
    }
    this.#follow(start.h, start.offset, start.skipFirstLine);
    this.#checkpoint.commit = { h: start.h, offset: this.#cursor!.splitter.consumed };
    // Record where we start right away: with `startAt: end`, a restart before the first
    // acknowledged read must not skip what was appended in between.
    this.#checkpoint.schedule();
    return true;
  }

  // ---- acknowledgements ----

  #onCommit(end: Pos): void {
    this.#checkpoint.commit = end;
    this.#retry.reset();
    this.#checkpoint.schedule();
    this.#gc();
  }

  #onFail(start: Pos, err: Error): void {
    const delay = this.#retry.next();
    this.#log.warn("a sink failed a chunk; re-reading from it after a delay", {
      file: start.h.name,
      offset: start.offset,
      delayMs: delay,
      error: err.message,
    });
    this.#rewindTo = start;
    this.#rewindAt = this.#clock.now() + delay;
    this.#waiter.wake();
  }

  /** Re-reads from the failed chunk: everything after it is forgotten and read again. */
  #rewind(): void {
    const to = this.#rewindTo!;
    this.#rewindTo = null;
    this.#window.reset();
    this.#follow(to.h, to.offset);
    this.#gc();
  }

  // ---- stopping ----

  /** After the last read: waits (bounded) for acks, writes the checkpoint, closes files. */
  async #finish(): Promise<void> {
    if (!await this.#window.drain(this.#drainTimeout)) {
      this.#log.warn("acks still outstanding at close; checkpoint stays at the last acked read", {
        unsettled: this.#window.unsettled,
      });
    }
    await this.#checkpoint.close();
    await this.#waiter.close();
    this.#files.releaseAll();
    this.#invalidLog.flush();
    this.#tooLongLog.flush();
    this.#errorLog.flush();
    this.#stats.ready = false;
  }
}
