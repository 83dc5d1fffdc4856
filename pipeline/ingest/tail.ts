/**
 * The tail source: follows an audit log file the way kube-apiserver writes it (appends;
 * lumberjack rotation renames `audit.log` to `audit-<time>.log` and creates a new one), also
 * surviving copytruncate and delete/recreate, and resumes from a checkpoint that advances
 * only over acknowledged reads.
 *
 * Delivery is at least once: after a `blocking-strict` sink fails a chunk, the source waits
 * and re-reads from that chunk's start, so the chunks read after it in the same window are
 * delivered again too; after a crash it resumes from the last checkpoint, repeating what was
 * delivered but not yet checkpointed.
 *
 * Known limits: a copytruncate is seen only when the file is shorter than the read offset at
 * the next look (a file truncated and regrown past that offset in between is not noticed);
 * when several rotations happened while auditpipe was down, the checkpointed file is finished
 * and then the current file is read from its start, so backups in between are not read.
 *
 * @module
 */
import { Ack } from "../core/ack.ts";
import type { Chunk, Envelope } from "../core/envelope.ts";
import { DecodeError, decodeLine } from "../core/decode.ts";
import type { SourceConfig } from "../config/schema.ts";
import { type Logger, RateLimitedLog } from "../core/log.ts";
import type { SourceStats } from "../core/stats.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import { LineSplitter } from "./lines.ts";
import {
  type Checkpoint,
  CommitWindow,
  dirname,
  fingerprint,
  FINGERPRINT_BYTES,
  fingerprintMatches,
  readCheckpoint,
  writeCheckpoint,
} from "./checkpoint.ts";

/**
 * The config of a tail source.
 *
 * @example
 * ```ts
 * const cfg: TailConfig = { type: "tail", path: "/var/log/audit.log", startAt: "end",
 *   maxLineBytes: 1 << 20, pollInterval: 250 };
 * ```
 */
export type TailConfig = Extract<SourceConfig, { type: "tail" }>;

/**
 * What a tail source needs from the daemon; the optional knobs exist for tests.
 *
 * @example
 * ```ts
 * const deps: TailDeps = { name: "apiserver", log, stats, signal: ac.signal };
 * ```
 */
export interface TailDeps {
  readonly name: string;
  readonly log: Logger;
  readonly stats: SourceStats;
  readonly clock?: Clock;
  /** Aborting stops reading, waits for outstanding acks, writes the checkpoint, closes. */
  readonly signal: AbortSignal;
  /** First wait before re-reading after a failed ack, ms (doubles up to 30 s); default 1000. */
  readonly retryDelay?: number;
  /** Chunks handed downstream whose acks have not settled, at most; default 16. */
  readonly maxUnsettled?: number;
  /** How long closing waits for outstanding acks, ms; default 10000. */
  readonly drainTimeout?: number;
  /** Bytes per read (one chunk per read); default 64 KiB. */
  readonly readSize?: number;
  /** Least time between two checkpoint writes, ms; default 100. */
  readonly checkpointInterval?: number;
}

/**
 * The stream a tail source returns, and when it has fully stopped (checkpoint written).
 *
 * @example
 * ```ts
 * ac.abort();
 * await stream.finished; // final checkpoint is on disk
 * ```
 */
export interface TailStream extends ReadableStream<Chunk> {
  /** Resolves once the source stopped, its final checkpoint is written and files closed. */
  readonly finished: Promise<void>;
}

/**
 * Follows `cfg.path`, one chunk of envelopes per read.
 *
 * The stream is pull-based: the file is read only when downstream asks, and at most
 * `maxUnsettled` chunks may be awaiting their ack. The source never releases an ack itself;
 * it only awaits `chunk.ack.settled` to advance its checkpoint.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * const stream = tailSource(
 *   { type: "tail", path: "/var/log/kubernetes/audit.log", startAt: "end",
 *     checkpointFile: "/var/lib/auditpipe/audit.ckpt", maxLineBytes: 1 << 20, pollInterval: 250 },
 *   { name: "apiserver", log, stats: new SourceStats("apiserver"), signal: ac.signal },
 * );
 * for await (const chunk of stream) { dispatch(chunk); }
 * await stream.finished;
 * ```
 */
export function tailSource(cfg: TailConfig, deps: TailDeps): TailStream {
  return new Tailer(cfg, deps).stream;
}

/** A position in one open file. */
interface Pos {
  readonly h: OpenFile;
  readonly offset: number;
}

/** An open file and what we know of it; identity is (dev, ino). */
class OpenFile {
  /** The file descriptor's position, to seek only when needed. */
  #pos = 0;
  /** The file's first bytes (up to FINGERPRINT_BYTES), for its fingerprint. */
  head: Uint8Array = new Uint8Array(0);
  closed = false;

  constructor(
    readonly file: Deno.FsFile,
    readonly dev: number,
    readonly ino: number,
    /** The name it was opened under (it may have been renamed since). */
    readonly name: string,
    /** The largest size seen. */
    public size: number,
  ) {}

  /** Reads at `offset` into `buf`; null at end of file. */
  async readAt(buf: Uint8Array, offset: number): Promise<number | null> {
    if (this.#pos !== offset) {
      await this.file.seek(offset, Deno.SeekMode.Start);
      this.#pos = offset;
    }
    const n = await this.file.read(buf);
    if (n !== null) this.#pos += n;
    return n;
  }

  /** Keeps the file's first bytes up to date from a read of `bytes` at `offset`. */
  noteHead(bytes: Uint8Array, offset: number): void {
    const have = this.head.length;
    if (have >= FINGERPRINT_BYTES || offset > have || offset + bytes.length <= have) return;
    const more = bytes.subarray(have - offset, Math.min(bytes.length, FINGERPRINT_BYTES - offset));
    const head = new Uint8Array(have + more.length);
    head.set(this.head);
    head.set(more, have);
    this.head = head;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.file.close();
    } catch { /* already closed */ }
  }
}

/** Where reading is: a file, the next byte to read and the lines being assembled. */
interface Cursor {
  readonly h: OpenFile;
  offset: number;
  readonly splitter: LineSplitter;
  /** A stat showed another file at the path; the next end of file is the real end. */
  replaced: boolean;
}

/** What one read produced. */
interface ReadResult {
  readonly envelopes: Envelope[];
  readonly start: Pos;
  readonly end: Pos;
}

const WHITESPACE = new Set([0x20, 0x09, 0x0d, 0x0a]);
const MAX_RETRY_DELAY = 30_000;
const TAIL_SCAN_BYTES = 64 * 1024;
/** lumberjack's backup time stamp, `2006-01-02T15-04-05.000`. */
const BACKUP_STAMP = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}$/;

function isBlank(line: Uint8Array): boolean {
  for (const b of line) if (!WHITESPACE.has(b)) return false;
  return true;
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

class Tailer {
  readonly stream: TailStream;
  readonly #cfg: TailConfig;
  readonly #log: Logger;
  readonly #stats: SourceStats;
  readonly #clock: Clock;
  readonly #signal: AbortSignal;
  readonly #baseRetry: number;
  readonly #maxUnsettled: number;
  readonly #drainTimeout: number;
  readonly #cpInterval: number;
  readonly #pollMs: number;
  readonly #buf: Uint8Array;
  readonly #invalidLog: RateLimitedLog;
  readonly #tooLongLog: RateLimitedLog;
  readonly #errorLog: RateLimitedLog;

  #controller!: ReadableStreamDefaultController<Chunk>;
  #started = false;
  #cursor: Cursor | null = null;
  /** Everything before this position is acknowledged. */
  #commit: Pos | null = null;
  /** The position the checkpoint file holds. */
  #written: Pos | null = null;
  readonly #window: CommitWindow<Pos>;
  #rewindTo: Pos | null = null;
  #rewindAt = 0;
  #retryDelay: number;
  readonly #files = new Set<OpenFile>();
  /**
   * Files opened and not yet followed (a rotation's successor being checked, a start-up
   * file being positioned). Work on them awaits, and an ack settling meanwhile runs `#gc`,
   * which must not close them.
   */
  readonly #adopting = new Set<OpenFile>();

  #stopping = false;
  readonly #stop = new AbortController();
  #pulling: Promise<void> | null = null;
  #finishing: Promise<void> | null = null;
  readonly #finished: PromiseWithResolvers<void> = Promise.withResolvers();

  #watcher: Deno.FsWatcher | null = null;
  #watchLoop: Promise<void> = Promise.resolve();
  #watchTried = -Infinity;
  #woken = false;
  #wakeResolve: (() => void) | null = null;

  #cpScheduled = false;
  #cpLast = -Infinity;
  #cpTask: Promise<void> = Promise.resolve();
  #cpChain: Promise<void> = Promise.resolve();

  constructor(cfg: TailConfig, deps: TailDeps) {
    this.#cfg = cfg;
    this.#log = deps.log.with({ source: deps.name, path: cfg.path });
    this.#stats = deps.stats;
    this.#clock = deps.clock ?? systemClock;
    this.#signal = deps.signal;
    this.#baseRetry = this.#retryDelay = deps.retryDelay ?? 1000;
    this.#maxUnsettled = deps.maxUnsettled ?? 16;
    this.#drainTimeout = deps.drainTimeout ?? 10_000;
    this.#cpInterval = deps.checkpointInterval ?? 100;
    this.#pollMs = Math.max(cfg.pollInterval, 5);
    this.#buf = new Uint8Array(deps.readSize ?? 64 * 1024);
    this.#invalidLog = new RateLimitedLog(this.#log, "invalid lines skipped");
    this.#tooLongLog = new RateLimitedLog(this.#log, "lines over maxLineBytes skipped");
    this.#errorLog = new RateLimitedLog(this.#log, "tail read failed; retrying", 1000, "error");
    this.#window = new CommitWindow<Pos>({
      onCommit: (end) => this.#onCommit(end),
      onFail: (start, err) => this.#onFail(start, err),
    });

    const stream = new ReadableStream<Chunk>({
      start: (c) => {
        this.#controller = c;
      },
      pull: (c) => this.#pull(c),
      cancel: () => this.#shutdown(false),
    }, { highWaterMark: 0 });
    this.stream = Object.assign(stream, { finished: this.#finished.promise });

    if (deps.signal.aborted) this.#shutdown(true);
    else deps.signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  readonly #onAbort = () => {
    this.#shutdown(true);
  };

  // ---- reading ----

  async #pull(c: ReadableStreamDefaultController<Chunk>): Promise<void> {
    const run = this.#pullLoop(c);
    this.#pulling = run;
    try {
      await run;
    } finally {
      this.#pulling = null;
    }
  }

  async #pullLoop(c: ReadableStreamDefaultController<Chunk>): Promise<void> {
    // A failed start (say, the directory is not readable yet) is retried as a whole, so the
    // checkpoint is not forgotten.
    while (!this.#started && !this.#stopping) {
      this.#started = await this.#guard(() => this.#init()) ?? false;
      this.#startWatch();
    }
    while (!this.#stopping) {
      const chunk = await this.#guard(() => this.#step());
      if (chunk === null) continue;
      try {
        c.enqueue(chunk);
      } catch (err) {
        // Cancelled meanwhile: nobody will settle it, and it must not count as delivered.
        chunk.ack.fail(err instanceof Error ? err : new Error(String(err)));
      }
      return;
    }
  }

  /** Makes the chunk of a read and records it, in order, in the commit window. */
  #chunk(result: ReadResult): Chunk {
    const chunk: Chunk = { items: result.envelopes, ack: new Ack() };
    this.#window.push(result.start, result.end, chunk.ack.settled);
    this.#stats.events += result.envelopes.length;
    return chunk;
  }

  /** Runs `fn`; an unexpected error is logged and retried after a poll interval. */
  async #guard<T>(fn: () => Promise<T | null>): Promise<T | null> {
    try {
      return await fn();
    } catch (err) {
      if (this.#stopping) return null;
      this.#errorLog.add(1, { error: err instanceof Error ? err.message : String(err) });
      await this.#sleep(this.#pollMs);
      return null;
    }
  }

  /** One step of following: a chunk to send, or null to step again. */
  async #step(): Promise<Chunk | null> {
    if (this.#rewindTo !== null) {
      await this.#sleep(this.#rewindAt - this.#clock.now());
      if (!this.#stopping) this.#rewind();
      return null;
    }
    if (this.#window.unsettled >= this.#maxUnsettled) {
      await Promise.race([this.#window.waitForRoom(this.#maxUnsettled), this.#stopped()]);
      return null;
    }
    const cur = this.#cursor;
    if (cur === null) {
      if (!await this.#openWaited()) await this.#waitForChange();
      return null;
    }
    const n = await cur.h.readAt(this.#buf, cur.offset);
    if (n === null || n === 0) {
      const r = await this.#atEnd(cur);
      if (r === "wait") await this.#waitForChange();
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
      return this.#chunk({ envelopes, start: { h, offset: start }, end: { h, offset: end } });
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
    this.#adopting.delete(h);
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
    const h = await this.#openSuccessor(cur.h);
    if (h === null) return "wait";
    if (h.dev === cur.h.dev && h.ino === cur.h.ino) {
      this.#release(h);
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

  /**
   * Opens the file that follows `done` in kube-apiserver's rotation: the oldest lumberjack
   * backup (`<name>-<UTC time><ext>`) after `done`'s own backup name, else the path itself.
   * A file that is not among the backups (deleted, truncated away) is followed by the path.
   * Null when there is no such file now.
   */
  async #openSuccessor(done: OpenFile): Promise<OpenFile | null> {
    const after = async () => {
      const backups = await this.#backups();
      const i = backups.findIndex((b) => b.dev === done.dev && b.ino === done.ino);
      return i < 0 ? null : backups[i + 1] ?? null;
    };
    // A backup may be compressed or pruned, or the path rotated again, between looking and
    // opening: check what was opened and look again.
    for (let attempt = 0; attempt < 5; attempt++) {
      const next = await after();
      const path = next?.path ?? this.#cfg.path;
      let h: OpenFile;
      try {
        h = await this.#open(path);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) {
          if (next === null) return null;
          continue;
        }
        throw err;
      }
      if (next !== null) {
        if (h.dev === next.dev && h.ino === next.ino) return h;
      } else {
        // The path was the next file when we looked; if it has been rotated since, the
        // backups now show a successor, and it is not what we opened.
        const now = await after();
        if (now === null || (now.dev === h.dev && now.ino === h.ino)) return h;
      }
      this.#release(h);
    }
    return null;
  }

  /** The lumberjack backups next to the path, oldest first, with their identities. */
  async #backups(): Promise<{ path: string; dev: number; ino: number }[]> {
    const dir = dirname(this.#cfg.path);
    const base = basename(this.#cfg.path);
    const dot = base.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, ""];
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (!e.isFile || !e.name.startsWith(stem + "-") || !e.name.endsWith(ext)) continue;
        const stamp = e.name.slice(stem.length + 1, e.name.length - ext.length);
        if (BACKUP_STAMP.test(stamp)) names.push(e.name);
      }
    } catch {
      return [];
    }
    // The stamp is fixed-width UTC, so name order is time order.
    names.sort();
    const out: { path: string; dev: number; ino: number }[] = [];
    for (const name of names) {
      const st = await statOrNull(`${dir}/${name}`);
      if (st !== null) out.push({ path: `${dir}/${name}`, dev: st.dev, ino: st.ino ?? 0 });
    }
    return out;
  }

  async #truncated(cur: Cursor, size: number): Promise<"again"> {
    this.#log.warn("file truncated; reading it from the start", { size, offset: cur.offset });
    // A fresh handle, so positions before the truncation keep the old content's fingerprint.
    const h = await this.#open(this.#cfg.path);
    if (h.dev !== cur.h.dev || h.ino !== cur.h.ino) {
      this.#release(h); // replaced meanwhile: the next end of file sees it
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
      h = await this.#open(this.#cfg.path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
    this.#log.info("file appeared; reading it from the start");
    this.#follow(h, 0);
    this.#commit = { h, offset: 0 };
    this.#scheduleCheckpoint();
    return true;
  }

  async #open(path: string): Promise<OpenFile> {
    const file = await Deno.open(path, { read: true });
    let h: OpenFile;
    try {
      const st = await file.stat();
      h = new OpenFile(file, st.dev, st.ino ?? 0, path, st.size);
      const head = new Uint8Array(FINGERPRINT_BYTES);
      let have = 0;
      while (have < head.length) {
        const n = await h.readAt(head.subarray(have), have);
        if (n === null || n === 0) break;
        have += n;
      }
      h.head = head.slice(0, have);
    } catch (err) {
      file.close();
      throw err;
    }
    this.#files.add(h);
    this.#adopting.add(h);
    return h;
  }

  #release(h: OpenFile): void {
    h.close();
    this.#files.delete(h);
    this.#adopting.delete(h);
  }

  /** Closes files nothing refers to any more. */
  #gc(): void {
    const used = new Set<OpenFile>();
    if (this.#cursor) used.add(this.#cursor.h);
    if (this.#commit) used.add(this.#commit.h);
    if (this.#rewindTo) used.add(this.#rewindTo.h);
    for (const h of this.#adopting) used.add(h);
    for (const p of this.#window.positions()) used.add(p.h);
    for (const h of this.#files) if (!used.has(h)) this.#release(h);
  }

  // ---- starting ----

  async #init(): Promise<boolean> {
    this.#cursor = null;
    for (const h of this.#files) this.#release(h);
    let cp: Checkpoint | null = null;
    if (this.#cfg.checkpointFile !== undefined) {
      try {
        cp = await readCheckpoint(this.#cfg.checkpointFile);
      } catch (err) {
        this.#log.warn("checkpoint unreadable; ignoring it", {
          checkpoint: this.#cfg.checkpointFile,
          error: err instanceof Error ? err.message : String(err),
        });
      }
      if (cp !== null && cp.path !== this.#cfg.path) {
        this.#log.warn("checkpoint is for another path; ignoring it", { checkpointPath: cp.path });
        cp = null;
      }
    }
    if (cp !== null) await this.#resume(cp);
    else await this.#startFresh();
    // (TS narrowed the field at the reset above and cannot see the calls set it.)
    const cur = this.#cursor as Cursor | null;
    if (cur !== null) {
      this.#commit = { h: cur.h, offset: cur.splitter.consumed };
      // Record where we start right away: with `startAt: end`, a restart before the first
      // acknowledged read must not skip what was appended in between.
      this.#scheduleCheckpoint();
    } else {
      this.#log.info("file does not exist yet; waiting for it");
    }
    return true;
  }

  async #startFresh(): Promise<void> {
    let h: OpenFile;
    try {
      h = await this.#open(this.#cfg.path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    if (this.#cfg.startAt === "beginning") return this.#follow(h, 0);
    const { offset, skip } = await this.#lastLineStart(h);
    this.#follow(h, offset, skip);
  }

  /**
   * Where `startAt: end` starts: the end of the file, or the start of its last line when
   * that is still being written (so it is delivered whole, not torn).
   */
  async #lastLineStart(h: OpenFile): Promise<{ offset: number; skip: boolean }> {
    const size = h.size;
    if (size === 0) return { offset: 0, skip: false };
    const from = Math.max(0, size - TAIL_SCAN_BYTES);
    const block = new Uint8Array(size - from);
    let have = 0;
    while (have < block.length) {
      const n = await h.readAt(block.subarray(have), from + have);
      if (n === null || n === 0) break;
      have += n;
    }
    const nl = block.subarray(0, have).lastIndexOf(0x0a);
    if (nl === have - 1) return { offset: from + have, skip: false };
    if (nl >= 0) return { offset: from + nl + 1, skip: false };
    if (from === 0) return { offset: 0, skip: false };
    return { offset: from + have, skip: true };
  }

  async #resume(cp: Checkpoint): Promise<void> {
    const path = this.#cfg.path;
    const st = await statOrNull(path);
    if (st !== null && st.dev === cp.dev && (st.ino ?? 0) === cp.ino) {
      const h = await this.#open(path);
      if (h.dev === cp.dev && h.ino === cp.ino && await fingerprintMatches(h.head, cp)) {
        if (cp.offset <= h.size) return this.#follow(h, cp.offset);
        this.#log.warn("file is shorter than the checkpoint; reading it from the start", {
          offset: cp.offset,
          size: h.size,
        });
        return this.#follow(h, 0);
      }
      this.#log.info("checkpointed file was replaced; reading the current file from the start");
      return this.#follow(h, 0);
    }
    const old = await this.#findRotated(cp);
    if (old !== null) {
      this.#log.info("checkpointed file was rotated; finishing it first", {
        file: old.name,
        offset: cp.offset,
      });
      return this.#follow(old, cp.offset <= old.size ? cp.offset : 0);
    }
    this.#log.warn("checkpointed file is gone; reading the current file from the start", {
      dev: cp.dev,
      ino: cp.ino,
    });
    if (st !== null) {
      try {
        this.#follow(await this.#open(path), 0);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
  }

  /** The checkpointed file under another name in the same directory (a rotated backup). */
  async #findRotated(cp: Checkpoint): Promise<OpenFile | null> {
    const dir = dirname(this.#cfg.path);
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return null;
    }
    for (const e of entries) {
      if (!e.isFile) continue;
      const path = `${dir}/${e.name}`;
      const st = await statOrNull(path);
      if (st === null || st.dev !== cp.dev || (st.ino ?? 0) !== cp.ino) continue;
      let h: OpenFile;
      try {
        h = await this.#open(path);
      } catch {
        continue;
      }
      if (h.dev === cp.dev && h.ino === cp.ino && await fingerprintMatches(h.head, cp)) return h;
      this.#release(h);
    }
    return null;
  }

  // ---- acknowledgements and the checkpoint ----

  #onCommit(end: Pos): void {
    this.#commit = end;
    this.#retryDelay = this.#baseRetry;
    this.#scheduleCheckpoint();
    this.#gc();
  }

  #onFail(start: Pos, err: Error): void {
    this.#log.warn("a sink failed a chunk; re-reading from it after a delay", {
      file: start.h.name,
      offset: start.offset,
      delayMs: this.#retryDelay,
      error: err.message,
    });
    this.#rewindTo = start;
    this.#rewindAt = this.#clock.now() + this.#retryDelay;
    this.#retryDelay = Math.min(this.#retryDelay * 2, MAX_RETRY_DELAY);
    this.#wake();
  }

  /** Re-reads from the failed chunk: everything after it is forgotten and read again. */
  #rewind(): void {
    const to = this.#rewindTo!;
    this.#rewindTo = null;
    this.#window.reset();
    this.#follow(to.h, to.offset);
    this.#gc();
  }

  #scheduleCheckpoint(): void {
    if (this.#cfg.checkpointFile === undefined || this.#cpScheduled || this.#stopping) return;
    this.#cpScheduled = true;
    const wait = this.#cpLast + this.#cpInterval - this.#clock.now();
    this.#cpTask = (async () => {
      if (wait > 0) await this.#sleep(wait);
      this.#cpScheduled = false;
      await this.#writeCheckpoint();
    })();
  }

  /** Writes the checkpoint if it moved; writes never overlap. */
  #writeCheckpoint(): Promise<void> {
    this.#cpChain = this.#cpChain.then(async () => {
      const pos = this.#commit;
      const file = this.#cfg.checkpointFile;
      if (pos === null || file === undefined) return;
      if (this.#written?.h === pos.h && this.#written.offset === pos.offset) return;
      const head = pos.h.head;
      const cp: Checkpoint = {
        version: 1,
        path: this.#cfg.path,
        dev: pos.h.dev,
        ino: pos.h.ino,
        offset: pos.offset,
        fingerprint: await fingerprint(head),
        fingerprintBytes: head.length,
      };
      try {
        await writeCheckpoint(file, cp);
        this.#written = pos;
        this.#cpLast = this.#clock.now();
      } catch (err) {
        this.#errorLog.add(1, {
          checkpoint: file,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    });
    return this.#cpChain;
  }

  // ---- waiting ----

  #startWatch(): void {
    if (this.#watcher !== null || this.#stopping) return;
    const now = this.#clock.now();
    if (now - this.#watchTried < 1000) return;
    this.#watchTried = now;
    let w: Deno.FsWatcher;
    try {
      w = Deno.watchFs(dirname(this.#cfg.path), { recursive: false });
    } catch {
      return; // the directory may not exist yet: polling covers it, and we try again later
    }
    this.#watcher = w;
    const base = basename(this.#cfg.path);
    this.#watchLoop = (async () => {
      try {
        for await (const ev of w) {
          if (ev.paths.some((p) => basename(p) === base)) this.#wake();
        }
      } catch { /* closed or failed: polling goes on */ }
      if (this.#watcher === w) this.#watcher = null;
    })();
  }

  #wake(): void {
    this.#woken = true;
    this.#wakeResolve?.();
  }

  /** Waits for a change notification, a poll interval, or stop. */
  async #waitForChange(): Promise<void> {
    if (this.#watcher === null) this.#startWatch();
    if (!this.#woken) {
      const woke = new Promise<void>((r) => this.#wakeResolve = r);
      await Promise.race([this.#sleep(this.#pollMs, woke), woke]);
      this.#wakeResolve = null;
    }
    this.#woken = false;
  }

  /** Sleeps `ms` on the clock; ends early on stop (or when `until` resolves). */
  async #sleep(ms: number, until?: Promise<void>): Promise<void> {
    if (ms <= 0 || this.#stopping) return;
    const ac = new AbortController();
    const onStop = () => ac.abort();
    this.#stop.signal.addEventListener("abort", onStop, { once: true });
    until?.then(onStop);
    try {
      await this.#clock.sleep(ms, ac.signal);
    } catch {
      /* woken */
    } finally {
      this.#stop.signal.removeEventListener("abort", onStop);
    }
  }

  #stopped(): Promise<void> {
    return new Promise((r) => {
      if (this.#stop.signal.aborted) r();
      else this.#stop.signal.addEventListener("abort", () => r(), { once: true });
    });
  }

  // ---- stopping ----

  #shutdown(closeStream: boolean): Promise<void> {
    this.#finishing ??= (async () => {
      this.#stopping = true;
      this.#stop.abort();
      this.#wake();
      this.#signal.removeEventListener("abort", this.#onAbort);
      if (this.#pulling) await this.#pulling.catch(() => {});
      if (closeStream) {
        try {
          this.#controller.close();
        } catch { /* already closed or cancelled */ }
      }
      if (!await this.#window.drain(this.#drainTimeout)) {
        this.#log.warn("acks still outstanding at close; checkpoint stays at the last acked read", {
          unsettled: this.#window.unsettled,
        });
      }
      await this.#cpTask;
      await this.#writeCheckpoint();
      const w = this.#watcher;
      this.#watcher = null;
      try {
        w?.close();
      } catch { /* already closed */ }
      await this.#watchLoop;
      for (const h of this.#files) h.close();
      this.#files.clear();
      this.#invalidLog.flush();
      this.#tooLongLog.flush();
      this.#errorLog.flush();
      this.#stats.ready = false;
      this.#finished.resolve();
    })();
    return this.#finishing;
  }
}
