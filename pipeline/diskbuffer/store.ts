/**
 * A sink's disk buffer: an append-only log of segment files with a delivery cursor.
 *
 * - `append()` frames records (length + CRC-32) and resolves only once they are fsynced. Appends
 *   that arrive while commits run are written and synced together by the next one (group
 *   commit); up to three commits to the active segment run at once (pipelined) and resolve in
 *   order, so a caller waits about one fsync.
 * - `read()` / `readBatches()` stream undelivered records in order through a fixed buffer,
 *   following new appends; a follower that keeps up is handed fsynced records from memory
 *   instead of reading them back. `markDelivered()` moves the cursor (persisted atomically) and
 *   deletes segments the cursor has passed.
 * - `maxBytes` bounds the segment files: an append that does not fit resolves `"full"` and
 *   writes nothing, so the caller chooses to block (`whenSpace()`) or drop.
 * - A failed write or fsync is cut back to the last record boundary and rejects with a
 *   {@linkcode DiskBufferError}; the next append retries the disk.
 * - On open, damage (a torn tail after a crash, flipped bytes) is found by the CRC, cut off,
 *   counted and logged; every intact undelivered record is read again.
 *
 * Duplicates after a crash are bounded by what was read and delivered but not yet marked.
 *
 * @module
 */
import type { Logger } from "../core/log.ts";
import { silentLogger } from "../core/log.ts";
import { DiskBufferError } from "./errors.ts";
import { type BufferRecord, type SizedRecord, sizeFrame, writeFrame } from "./frame.ts";
import type { Cursor } from "./cursor.ts";
import { syncDir } from "../core/atomic_file.ts";
import { segmentPath } from "./layout.ts";
import { io, type Recovered, recoverFolder, type Recovery } from "./recover.ts";
import { type Segment, SegmentList } from "./segments.ts";
import { ChangeSignal } from "./changes.ts";
import { Delivery } from "./delivery.ts";
import { HotTail } from "./hot_tail.ts";
import type { StoredRecord } from "./records.ts";
import { BatchReader, type ReadOptions } from "./reader.ts";
import { FolderLock } from "./lock.ts";
import { DiskBufferStats } from "./stats.ts";

export type { BufferRecord, DecodedRecord } from "./frame.ts";
export type { Recovery } from "./recover.ts";
export type { SkippedDamage, StoredRecord } from "./records.ts";
export type { ReadOptions } from "./reader.ts";

/** How a disk buffer is opened. */
export interface DiskBufferOptions {
  /** The buffer's own folder (created if missing). */
  readonly path: string;
  /** The most bytes the segment files may take together. */
  readonly maxBytes: number;
  /** Size at which a new segment is started; default min(64 MiB, maxBytes / 4). */
  readonly segmentBytes?: number;
  /** fsync before an append resolves (default true); false only for tests and benchmarks. */
  readonly fsync?: boolean;
  /** Extra time to gather appends before each write, ms (default 0: what came during the last fsync). */
  readonly commitDelayMs?: number;
  readonly logger?: Logger;
  /** Wall clock, ms since the epoch (tests). */
  readonly now?: () => number;
  /**
   * Called before each segment write and fsync; what it throws is handled as that call's
   * failure. Only for tests of disk errors (full, read-only) that a test cannot cause for real.
   */
  readonly faults?: (op: "write" | "fsync", path: string) => void;
  /**
   * Called once the folder's lock is held, before the backlog is scanned: a daemon's start
   * waits for the lock (another holder fails it), not for the scan.
   */
  readonly onLocked?: () => void;
}

/** What an append did: everything was written and synced, or nothing because it did not fit. */
export type AppendResult = "appended" | "full";

interface Pending {
  readonly frames: SizedRecord[];
  readonly bytes: number;
  readonly appendedAt: number;
  readonly resolve: (r: AppendResult) => void;
  readonly reject: (e: unknown) => void;
}

interface Target {
  readonly seg: Segment;
  readonly file: Deno.FsFile;
  readonly startSize: number;
  readonly created: boolean;
  /** Where the file's own offset is, when known: a write there needs no seek. */
  readonly pos: number | undefined;
  frames: { sized: SizedRecord; appendedAt: number }[];
  pending: number;
}

const MIB = 1024 * 1024;
/** Commits whose fsync runs at once, at most. */
const MAX_INFLIGHT = 3;
/** The largest commit framed into the kept buffer; a larger one gets its own. */
const WRITE_BUFFER_MAX = 4 * MIB;

/**
 * A disk buffer. Open with {@linkcode DiskBuffer.open}.
 *
 * @example
 * ```ts
 * const buf = await DiskBuffer.open({ path: "/var/lib/auditpipe/remote", maxBytes: 1 << 30 });
 * if (await buf.append(records) === "full") await buf.whenSpace();
 * for await (const r of buf.read({ follow: true })) {
 *   await send(r.bytes);
 *   await buf.markDelivered(r);
 * }
 * ```
 */
export class DiskBuffer {
  /** Counters for metrics. */
  readonly stats: DiskBufferStats = new DiskBufferStats();
  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #segmentBytes: number;
  readonly #fsync: boolean;
  readonly #commitDelayMs: number;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #faults: ((op: "write" | "fsync", path: string) => void) | undefined;
  readonly #segments: SegmentList;
  /**
   * The segment appended to: `written` is where its written bytes end (past `seg.size` while
   * commits are in flight); `pos` is the file's offset, when known.
   */
  #active:
    | { seg: Segment; file: Deno.FsFile; pos: number | undefined; written: number }
    | undefined;
  /** Commits written whose fsync (or an earlier commit's) has not finished. */
  #inflight = 0;
  #inflightBytes = 0;
  /** Whether an in-flight commit started a segment (none is pipelined after it). */
  #inflightCreated = false;
  /** Settles once the last commit started is finished (they finish in order). */
  #lastCommit: Promise<void> = Promise.resolve();
  /** The failure of an in-flight commit: the ones after it fail too, then it is cut off. */
  #pipelineError: DiskBufferError | undefined;
  #cutFrom: Target[] | undefined;
  #cutOff: Pending[] = [];
  /** A write failed: no commit starts until the failure is cut off. */
  #halted = false;
  #wake = Promise.withResolvers<void>();
  readonly #hotTail = new HotTail();
  #scratch = new Uint8Array(64 * 1024);
  #nextId: number;
  readonly #delivery: Delivery;
  readonly #reader: BatchReader;
  #appendedOrdinal = 0;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #broken = false;
  #strays: string[] = [];
  readonly #changes = new ChangeSignal();
  #closed = false;
  #lock: FolderLock | undefined;
  #recovery: Recovery;
  private constructor(
    opts: DiskBufferOptions,
    state: Recovered,
  ) {
    this.#dir = opts.path;
    this.#maxBytes = opts.maxBytes;
    this.#segmentBytes = opts.segmentBytes ?? Math.max(1, Math.min(64 * MIB, opts.maxBytes / 4));
    this.#fsync = opts.fsync ?? true;
    this.#commitDelayMs = opts.commitDelayMs ?? 0;
    this.#log = opts.logger ?? silentLogger;
    this.#now = opts.now ?? Date.now;
    this.#faults = opts.faults;
    this.#segments = new SegmentList(state.segments);
    this.#delivery = new Delivery({
      dir: this.#dir,
      fsync: this.#fsync,
      log: this.#log,
      stats: this.stats,
      segments: this.#segments,
      changes: this.#changes,
    }, state.cursor);
    this.#reader = new BatchReader({
      dir: this.#dir,
      segments: this.#segments,
      delivery: this.#delivery,
      hotTail: this.#hotTail,
      changes: this.#changes,
      isClosed: () => this.#closed,
    });
    this.#nextId = state.nextId;
    this.#recovery = state.recovery;
    this.#appendedOrdinal = state.recovery.events;
  }

  /** The folder. */
  get path(): string {
    return this.#dir;
  }

  /** What open found and repaired. */
  get recovery(): Recovery {
    return this.#recovery;
  }

  /** The delivery cursor (in memory; persisted by `markDelivered`). */
  get cursor(): Cursor {
    return this.#delivery.cursor;
  }

  /**
   * Opens (or creates) the buffer in `opts.path`, cutting off damaged tails. The folder is
   * locked until {@linkcode DiskBuffer.close}: a second opener fails with a
   * `BufferInUseError` (lock.ts) naming the holder's pid.
   *
   * @example
   * ```ts
   * const buf = await DiskBuffer.open({ path: "buf", maxBytes: 512 * 1024 * 1024 });
   * for (const d of buf.recovery.damage) console.warn(d);
   * ```
   */
  static async open(opts: DiskBufferOptions): Promise<DiskBuffer> {
    const dir = opts.path;
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes <= 0) {
      throw new RangeError(`disk buffer ${dir}: maxBytes must be a positive integer`);
    }
    if (
      opts.segmentBytes !== undefined &&
      (!Number.isSafeInteger(opts.segmentBytes) || opts.segmentBytes <= 0)
    ) {
      throw new RangeError(`disk buffer ${dir}: segmentBytes must be a positive integer`);
    }
    await io("open", dir, () => Deno.mkdir(dir, { recursive: true }));
    // Released if opening fails below; the store holds it from the end of open to close.
    using held = new DisposableStack();
    const lock = held.adopt(await FolderLock.acquire(dir), (l) => l.release());
    opts.onLocked?.();
    const found = await recoverFolder(dir, opts.logger ?? silentLogger);
    const store = new DiskBuffer(opts, found);
    const damage = found.recovery.damage;
    store.stats.bytes = found.bytes;
    store.stats.events = found.recovery.events;
    store.stats.segments = found.segments.length;
    store.stats.oldestUndeliveredAt = found.oldestUndeliveredAt;
    store.stats.corruptRecords = damage.length;
    store.stats.corruptBytes = damage.reduce((n, d) => n + d.bytes, 0);
    store.#delivery.normalize();
    store.#lock = lock;
    held.move();
    return store;
  }

  /**
   * Appends `records` (all or none) and resolves once they are on disk (fsynced), or with
   * `"full"` when they would take the segment files over `maxBytes`.
   *
   * @throws {DiskBufferError} `io` when the disk refused (nothing was kept), `too_large`,
   * `closed`.
   */
  append(records: readonly BufferRecord[]): Promise<AppendResult> {
    if (this.#closed) {
      return Promise.reject(new DiskBufferError("closed", "append", this.#dir, "buffer closed"));
    }
    if (records.length === 0) return Promise.resolve("appended");
    const appendedAt = this.#now();
    let frames: SizedRecord[];
    try {
      frames = records.map(sizeFrame);
    } catch (err) {
      return Promise.reject(
        new DiskBufferError("too_large", "append", this.#dir, "record refused", { cause: err }),
      );
    }
    const bytes = frames.reduce((n, f) => n + f.size, 0);
    if (bytes > this.#maxBytes) {
      return Promise.reject(
        new DiskBufferError(
          "too_large",
          "append",
          this.#dir,
          `${bytes} bytes in one append exceed maxBytes ${this.#maxBytes}`,
        ),
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<AppendResult>();
    this.#queue.push({ frames, bytes, appendedAt, resolve, reject });
    this.#flushing ??= this.#flushLoop();
    this.#kick();
    return promise;
  }

  async #flushLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0 || this.#inflight > 0) {
        if (this.#queue.length === 0 || !this.#mayStart()) {
          await this.#wake.promise;
          continue;
        }
        if (this.#commitDelayMs > 0) {
          await new Promise((r) => setTimeout(r, this.#commitDelayMs));
        }
        const group = this.#queue;
        this.#queue = [];
        await this.#commit(group);
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  /**
   * Whether the next commit may start now. Commits are pipelined: one may be written and its
   * fsync started while earlier fsyncs run (up to {@linkcode MAX_INFLIGHT}), so an append
   * waits about one fsync instead of the rest of the running one first. Only appends to the
   * active segment are pipelined: a commit that starts a segment, or one after a failure, or
   * one that must repair the files, waits until none runs.
   */
  #mayStart(): boolean {
    // After a failure, nothing starts until it is cut off.
    if (this.#pipelineError || this.#halted) return false;
    if (this.#inflight === 0) return true;
    if (this.#inflight >= MAX_INFLIGHT || this.#inflightCreated) return false;
    const a = this.#active;
    if (a === undefined || this.#broken) return false;
    let bytes = 0;
    for (const p of this.#queue) bytes += p.bytes;
    return a.written + bytes <= this.#segmentBytes;
  }

  #kick(): void {
    this.#wake.resolve();
    this.#wake = Promise.withResolvers<void>();
  }

  /**
   * Writes `group` (what fits under maxBytes) and starts its fsync; the appends resolve once
   * it and every commit before it are synced, in order. Returns once the bytes are written.
   */
  async #commit(group: Pending[]): Promise<void> {
    if (this.#inflight === 0) {
      try {
        await this.#ensureWritable();
        await this.#rollDelivered();
      } catch (err) {
        this.stats.appendErrors += group.reduce((n, p) => n + p.frames.length, 0);
        for (const p of group) p.reject(err);
        return;
      }
    }
    const accepted: Pending[] = [];
    let planned = this.stats.bytes + this.#inflightBytes;
    for (const p of group) {
      if (planned + p.bytes > this.#maxBytes) {
        this.stats.full += p.frames.length;
        p.resolve("full");
      } else {
        accepted.push(p);
        planned += p.bytes;
      }
    }
    if (accepted.length === 0) return;
    const targets: Target[] = [];
    let current: Target | undefined;
    try {
      for (const p of accepted) {
        for (const frame of p.frames) {
          if (current === undefined) {
            current = this.#target(undefined);
            targets.push(current);
          }
          const size = current.startSize + current.pending;
          if (size > 0 && size + frame.size > this.#segmentBytes) {
            current = this.#target(current);
            targets.push(current);
          }
          current.frames.push({ sized: frame, appendedAt: p.appendedAt });
          current.pending += frame.size;
        }
      }
    } catch (err) {
      // A segment could not be made (only a commit that runs alone makes one).
      await this.#rollback(targets);
      const e = new DiskBufferError("io", "write", this.#dir, "append failed, nothing kept", {
        cause: err,
      });
      this.#log.warn("disk buffer append failed", {
        path: this.#dir,
        op: "write",
        error: e.message,
      });
      this.stats.appendErrors += accepted.reduce((n, p) => n + p.frames.length, 0);
      for (const p of accepted) p.reject(e);
      return;
    }
    const bytes = targets.reduce((n, t) => n + t.pending, 0);
    const created = targets.some((t) => t.created);
    // In flight from its first write: an earlier commit that fails meanwhile must not cut the
    // files back before this one is done writing (it then fails with it).
    this.#inflight++;
    this.#inflightBytes += bytes;
    if (created) this.#inflightCreated = true;
    const pipelined = this.#inflight > 1;
    let failed: DiskBufferError | undefined;
    let opPath = this.#dir;
    try {
      for (const t of targets) {
        opPath = segmentPath(this.#dir, t.seg.id);
        const data = this.#writeBuffer(t.pending);
        let at = 0;
        for (const f of t.frames) {
          writeFrame(f.sized, f.appendedAt, data, at);
          at += f.sized.size;
        }
        this.#faults?.("write", opPath);
        // Synchronous when no fsync runs: a write into the page cache takes microseconds, an
        // async one a hop to a blocking thread (measured about 3x the cost). While an fsync of
        // the file runs, a write can wait for it (measured: p99 10-16 ms against 0.7-4 ms),
        // which must not stall the event loop: then it goes to a blocking thread.
        if (t.pos !== t.startSize) t.file.seekSync(t.startSize, Deno.SeekMode.Start);
        let done = 0;
        if (!pipelined) {
          while (done < data.length) done += t.file.writeSync(data.subarray(done));
        } else {
          while (done < data.length) done += await t.file.write(data.subarray(done));
        }
        if (!t.created && this.#active?.seg === t.seg) {
          this.#active.pos = this.#active.written = t.startSize + t.pending;
        }
      }
    } catch (err) {
      if (this.#active) this.#active.pos = undefined;
      // Nothing starts after a failed write until it is cut off.
      this.#halted = true;
      failed = new DiskBufferError("io", "write", opPath, "append failed, nothing kept", {
        cause: err,
      });
    }
    const synced = failed ? Promise.resolve(failed) : this.#sync(targets);
    const before = this.#lastCommit;
    const done = (async () => {
      const failure = await synced;
      // In order: a commit is visible only after every earlier one.
      await before;
      this.#inflight--;
      this.#inflightBytes -= bytes;
      if (created) this.#inflightCreated = false;
      if (failure || this.#pipelineError) {
        // An earlier commit's failure cuts this one's bytes too (they follow its own).
        const first = this.#pipelineError === undefined;
        if (first) this.#pipelineError = failure;
        const err = this.#pipelineError!;
        if (first) {
          this.#log.warn("disk buffer append failed", {
            path: err.path,
            op: err.op,
            error: err.message,
          });
        }
        this.stats.appendErrors += accepted.reduce((n, p) => n + p.frames.length, 0);
        if (first) this.#cutFrom = targets;
        this.#cutOff.push(...accepted);
        if (this.#inflight === 0) {
          // The last one out cuts the files back to where the failed commit started, then
          // its appends and the later ones reject: nothing of them is kept.
          if (this.#active) this.#active.pos = undefined;
          await this.#rollback(this.#cutFrom!);
          const rejected = this.#cutOff;
          this.#cutFrom = undefined;
          this.#cutOff = [];
          this.#pipelineError = undefined;
          this.#halted = false;
          for (const p of rejected) p.reject(err);
        }
      } else {
        this.#visible(targets, accepted);
      }
      this.#kick();
    })();
    this.#lastCommit = done;
  }

  /** fsyncs what a commit wrote; resolves with the error (never rejects). */
  async #sync(targets: readonly Target[]): Promise<DiskBufferError | undefined> {
    if (!this.#fsync) return undefined;
    let opPath = this.#dir;
    try {
      for (const t of targets) {
        opPath = segmentPath(this.#dir, t.seg.id);
        const t0 = performance.now();
        this.#faults?.("fsync", opPath);
        await t.file.syncData();
        this.stats.fsync.observe("segment", (performance.now() - t0) / 1000);
      }
      if (targets.some((t) => t.created)) {
        opPath = this.#dir;
        await syncDir(this.#dir);
      }
      return undefined;
    } catch (err) {
      return new DiskBufferError("io", "fsync", opPath, "append failed, nothing kept", {
        cause: err,
      });
    }
  }

  /** A synced commit (every earlier one is visible): its records become readable. */
  #visible(targets: readonly Target[], accepted: readonly Pending[]): void {
    const wasEmpty = this.stats.events === 0;
    let count = 0;
    for (const p of accepted) count += p.frames.length;
    const firstOrdinal = this.#appendedOrdinal;
    let end = this.#appendedOrdinal;
    for (const t of targets) {
      t.seg.size = t.startSize + t.pending;
      end += t.frames.length;
      t.seg.endOrdinal = end;
      if (t.created) this.#segments.push(t.seg);
      if (t !== targets.at(-1)) {
        t.seg.sealed = true;
        t.file.close();
      }
    }
    if (targets.some((t) => t.created)) {
      // Committed: no longer a stray that a repair would remove.
      const made = new Set(
        targets.filter((t) => t.created).map((t) => segmentPath(this.#dir, t.seg.id)),
      );
      this.#strays = this.#strays.filter((p) => !made.has(p));
    }
    const last = targets.at(-1)!;
    if (last.created) {
      const size = last.seg.size;
      this.#active = { seg: last.seg, file: last.file, pos: size, written: size };
    }
    // Not `planned`: deletions may have run meanwhile.
    for (const t of targets) this.stats.bytes += t.pending;
    this.stats.segments = this.#segments.length;
    this.stats.events += count;
    this.stats.appended += count;
    this.#appendedOrdinal += count;
    if (wasEmpty) this.stats.oldestUndeliveredAt = accepted[0].appendedAt;
    this.#hotTail.committed(targets, firstOrdinal);
    for (const p of accepted) p.resolve("appended");
    this.#changes.notify();
  }

  /**
   * A buffer of `size` bytes to frame a commit into: one kept for the next commit (writes are
   * synchronous, so it is free again at once), not one allocated per commit.
   */
  #writeBuffer(size: number): Uint8Array {
    if (size > WRITE_BUFFER_MAX) return new Uint8Array(size);
    if (this.#scratch.length < size) {
      this.#scratch = new Uint8Array(
        Math.min(WRITE_BUFFER_MAX, Math.max(size, 2 * this.#scratch.length)),
      );
    }
    return this.#scratch.subarray(0, size);
  }

  /** The segment to write next: the active one, or a new one after `prev`. */
  #target(prev: Target | undefined): Target {
    if (prev === undefined && this.#active !== undefined) {
      const seg = this.#active.seg;
      return {
        seg,
        file: this.#active.file,
        startSize: this.#active.written,
        created: false,
        pos: this.#active.pos,
        frames: [],
        pending: 0,
      };
    }
    const id = this.#nextId++;
    const path = segmentPath(this.#dir, id);
    const file = Deno.openSync(path, { read: true, write: true, createNew: true });
    // Only files this store made are removed after a failure, never something in the way.
    this.#strays.push(path);
    return {
      seg: { id, size: 0, sealed: false, endOrdinal: this.#appendedOrdinal },
      file,
      startSize: 0,
      created: true,
      pos: 0,
      frames: [],
      pending: 0,
    };
  }

  /** Cuts a failed write back to the last record boundary; a cut that fails is retried later. */
  async #rollback(targets: Target[]): Promise<void> {
    for (const t of targets) {
      try {
        if (t.created) {
          t.file.close();
          await Deno.remove(segmentPath(this.#dir, t.seg.id));
          this.#strays = this.#strays.filter((s) => s !== segmentPath(this.#dir, t.seg.id));
        } else {
          await t.file.truncate(t.startSize);
          if (this.#active?.seg === t.seg) this.#active.written = t.startSize;
        }
      } catch {
        this.#broken = true;
      }
    }
    if (!this.#broken) this.#strays = [];
  }

  /** After a failed rollback: cut the active segment back and remove half-made segments. */
  async #ensureWritable(): Promise<void> {
    if (!this.#broken) {
      this.#strays = [];
      return;
    }
    try {
      for (const path of this.#strays) {
        try {
          await Deno.remove(path);
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
        }
      }
      this.#strays = [];
      if (this.#active) {
        this.#active.pos = undefined;
        await this.#active.file.truncate(this.#active.seg.size);
        await this.#active.file.syncData();
        this.#active.written = this.#active.seg.size;
      }
      this.#broken = false;
      this.#log.info("disk buffer writable again", { path: this.#dir });
    } catch (err) {
      throw new DiskBufferError("io", "truncate", this.#dir, "cannot repair a failed append", {
        cause: err,
      });
    }
  }

  /** Starts a new segment when the active one is fully delivered, so it can be deleted. */
  async #rollDelivered(): Promise<void> {
    const a = this.#active;
    const cursor = this.#delivery.cursor;
    if (
      a === undefined || a.seg.size === 0 || cursor.segment !== a.seg.id ||
      cursor.offset < a.seg.size
    ) return;
    a.seg.sealed = true;
    a.file.close();
    this.#active = undefined;
    await this.#delivery.pass(a.seg.id);
  }

  /**
   * Streams undelivered records in order from the cursor; with `follow`, waits for appends
   * instead of ending (until `signal` aborts or the buffer closes). One record at a time; see
   * {@linkcode DiskBuffer.readBatches}, which this reads.
   *
   * @throws {DiskBufferError} `io` when a segment cannot be read.
   */
  async *read(opts: ReadOptions = {}): AsyncGenerator<StoredRecord, void, undefined> {
    for await (const batch of this.readBatches(opts)) yield* batch;
  }

  /**
   * Streams undelivered records in order from the cursor, in batches of what is there (up to
   * 512 records); with `follow`, waits for appends instead of ending (until `signal` aborts
   * or the buffer closes). A following reader that has caught up is handed later commits'
   * records from memory once they are fsynced, instead of reading them back from disk.
   *
   * A record that went bad on disk after open (its frame no longer checks) is skipped with
   * the rest of its segment as it is then (where the next intact frame starts is unknown;
   * records appended later follow it): counted in `stats.corruptRecords`, logged with segment
   * and offset, taken off `stats.events`, and reported to `onDamage`. Reading goes on.
   *
   * @throws {DiskBufferError} `io` when a segment cannot be read.
   * @example
   * ```ts
   * for await (const batch of buf.readBatches({ follow: true })) {
   *   await send(batch.map((r) => r.bytes));
   *   await buf.markDelivered(batch.at(-1)!);
   * }
   * ```
   */
  readBatches(opts: ReadOptions = {}): AsyncGenerator<StoredRecord[], void, undefined> {
    return this.#reader.batches(opts);
  }

  /**
   * Marks `record` and every record before it delivered; resolves once the cursor is
   * persisted. Segments wholly before the cursor are then deleted.
   *
   * @throws {DiskBufferError} `io` when the cursor cannot be written (it is retried by the next mark).
   */
  markDelivered(record: StoredRecord): Promise<void> {
    if (this.#closed) {
      return Promise.reject(
        new DiskBufferError("closed", "mark", this.#dir, "buffer closed"),
      );
    }
    return this.#delivery.mark(record);
  }

  /** Resolves the next time space may have been freed (a segment deleted) or on close. */
  whenSpace(): Promise<void> {
    return this.#changes.next();
  }

  /** Finishes pending appends and the cursor, then closes the files. Readers end. */
  async close(): Promise<void> {
    if (this.#closed) return;
    while (this.#flushing) await this.#flushing;
    await this.#lastCommit;
    this.#closed = true;
    await this.#delivery.settled();
    this.#active?.file.close();
    this.#active = undefined;
    this.#lock?.release();
    this.#changes.notify();
  }
}
