/**
 * The group commit pipeline: appends queue up and are written and fsynced together by the
 * next commit; up to {@linkcode MAX_INFLIGHT} commits to the active segment run at once and
 * resolve in order. A failed write or fsync is cut back (rolled back) to the last record
 * boundary, rejecting that commit's appends and every later one in flight; a rollback that
 * fails is repaired before the next write. Segments are started here (the active one sealed
 * when full, or passed to delivery once fully delivered).
 *
 * @module
 */
import type { Logger } from "../core/log.ts";
import { syncDir } from "../core/atomic_file.ts";
import { DiskBufferError } from "./errors.ts";
import { type BufferRecord, type SizedRecord, sizeFrame, writeFrame } from "./frame.ts";
import { segmentPath } from "./layout.ts";
import type { Segment, SegmentList } from "./segments.ts";
import type { ChangeSignal } from "./changes.ts";
import type { Delivery } from "./delivery.ts";
import type { HotTail } from "./hot_tail.ts";
import type { DiskBufferStats } from "./stats.ts";

/**
 * What an append did: everything was written and synced, or nothing because it did not fit.
 *
 * @example
 * ```ts
 * const r: AppendResult = await buf.append(records); // "appended" | "full"
 * ```
 */
export type AppendResult = "appended" | "full";

/** What the commit pipeline works on, shared with the rest of the store. */
export interface CommitDeps {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  /** fsync before an append resolves. */
  readonly fsync: boolean;
  /** Extra time to gather appends before each write, ms. */
  readonly commitDelayMs: number;
  readonly log: Logger;
  /** Wall clock, ms since the epoch: when records were appended. */
  readonly now: () => number;
  /** Test hook called before each segment write and fsync (see `DiskBufferOptions.faults`). */
  readonly faults: ((op: "write" | "fsync", path: string) => void) | undefined;
  readonly stats: DiskBufferStats;
  readonly segments: SegmentList;
  /** Passed a fully delivered active segment before it is replaced. */
  readonly delivery: Delivery;
  /** Handed each commit's records once they are visible. */
  readonly hotTail: HotTail;
  /** Notified when a commit becomes visible. */
  readonly changes: ChangeSignal;
  /** The id the next new segment takes. */
  readonly nextId: number;
  /** Undelivered records at open: ordinals of appended records follow them. */
  readonly appendedOrdinal: number;
}

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

/** Commits whose fsync runs at once, at most. */
const MAX_INFLIGHT = 3;
/** The largest commit framed into the kept buffer; a larger one gets its own. */
const WRITE_BUFFER_MAX = 4 * 1024 * 1024;

/**
 * Writes appends to the segment files, group-committed and pipelined.
 *
 * @example
 * ```ts
 * const commits = new CommitPipeline(deps);
 * if (await commits.append(records) === "full") await changes.next();
 * await commits.close();
 * commits.closeActive();
 * ```
 */
export class CommitPipeline {
  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #segmentBytes: number;
  readonly #fsync: boolean;
  readonly #commitDelayMs: number;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #faults: ((op: "write" | "fsync", path: string) => void) | undefined;
  readonly #stats: DiskBufferStats;
  readonly #segments: SegmentList;
  readonly #delivery: Delivery;
  readonly #hotTail: HotTail;
  readonly #changes: ChangeSignal;
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
  #scratch = new Uint8Array(64 * 1024);
  #nextId: number;
  #appendedOrdinal = 0;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #broken = false;
  #strays: string[] = [];
  #closed = false;

  constructor(deps: CommitDeps) {
    this.#dir = deps.dir;
    this.#maxBytes = deps.maxBytes;
    this.#segmentBytes = deps.segmentBytes;
    this.#fsync = deps.fsync;
    this.#commitDelayMs = deps.commitDelayMs;
    this.#log = deps.log;
    this.#now = deps.now;
    this.#faults = deps.faults;
    this.#stats = deps.stats;
    this.#segments = deps.segments;
    this.#delivery = deps.delivery;
    this.#hotTail = deps.hotTail;
    this.#changes = deps.changes;
    this.#nextId = deps.nextId;
    this.#appendedOrdinal = deps.appendedOrdinal;
  }

  /**
   * Appends `records` (all or none); see `DiskBuffer.append`.
   *
   * @throws {DiskBufferError} `io` when the disk refused (nothing was kept), `too_large`.
   */
  append(records: readonly BufferRecord[]): Promise<AppendResult> {
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

  /** Whether `close` finished draining: the store is closed from then on. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Finishes every append queued (written and synced, or failed), then counts as closed in
   * the same step, so no append slips in between.
   */
  async close(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    await this.#lastCommit;
    this.#closed = true;
  }

  /** Closes the active segment's file (after `close`). */
  closeActive(): void {
    this.#active?.file.close();
    this.#active = undefined;
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
        await this.#rollDelivered(group.reduce((n, p) => n + p.bytes, 0));
      } catch (err) {
        this.#stats.appendErrors += group.reduce((n, p) => n + p.frames.length, 0);
        for (const p of group) p.reject(err);
        return;
      }
    }
    const accepted: Pending[] = [];
    let planned = this.#stats.bytes + this.#inflightBytes;
    for (const p of group) {
      if (planned + p.bytes > this.#maxBytes) {
        this.#stats.full += p.frames.length;
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
      this.#stats.appendErrors += accepted.reduce((n, p) => n + p.frames.length, 0);
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
        this.#stats.appendErrors += accepted.reduce((n, p) => n + p.frames.length, 0);
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
        this.#stats.fsync.observe("segment", (performance.now() - t0) / 1000);
      }
      if (targets.some((t) => t.created)) {
        opPath = this.#dir;
        // Observed too: on a busy disk it can take as long as the segment's own fsync, and it
        // runs in series with it (issue 14 traced a stall through it).
        const t0 = performance.now();
        await syncDir(this.#dir);
        this.#stats.fsync.observe("dir", (performance.now() - t0) / 1000);
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
    const wasEmpty = this.#stats.events === 0;
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
    for (const t of targets) this.#stats.bytes += t.pending;
    this.#stats.segments = this.#segments.length;
    this.#stats.events += count;
    this.#stats.appended += count;
    this.#appendedOrdinal += count;
    if (wasEmpty) this.#stats.oldestUndeliveredAt = accepted[0].appendedAt;
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

  /**
   * Starts a new segment when the active one is fully delivered, so it can be deleted: once it
   * holds a quarter of a segment, or when its space is needed for `groupBytes` under
   * `maxBytes`. Not for every append that finds it delivered: a reader that keeps up (the
   * usual case at a low rate) would make every commit start a segment, each one a file
   * created, an fsync of the folder in series with the segment's own, no commit pipelined
   * behind it, and an unlink (issue 14). Only when the space is needed does the append wait
   * for the deletion (the files on disk never exceed `maxBytes`); otherwise it runs beside
   * the append, whose bytes fit with the old segment's still counted.
   */
  async #rollDelivered(groupBytes: number): Promise<void> {
    const a = this.#active;
    const cursor = this.#delivery.cursor;
    if (
      a === undefined || a.seg.size === 0 || cursor.segment !== a.seg.id ||
      cursor.offset < a.seg.size
    ) return;
    const spaceNeeded = this.#stats.bytes + this.#inflightBytes + groupBytes > this.#maxBytes;
    if (a.seg.size < this.#segmentBytes / 4 && !spaceNeeded) return;
    a.seg.sealed = true;
    a.file.close();
    this.#active = undefined;
    const deleting = this.#delivery.pass(a.seg.id);
    if (spaceNeeded) await deleting;
  }
}
