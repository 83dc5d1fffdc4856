/**
 * The group commit: appends queue up while a commit runs and are written and fsynced together
 * by the next one; commits run one at a time. A failed write or fsync is cut back (rolled back)
 * to the last record boundary, rejecting that commit's appends; a rollback that fails is
 * repaired before the next write. Segments are started here (the active one sealed when full,
 * or passed to delivery once fully delivered; the next one made ahead).
 *
 * Why one at a time: commits that overlapped (a write and fsync started while the one before
 * still ran) were measured against this in one sitting (issue 14, bench/README.md): a write
 * into a file whose fsync runs can wait for it in the kernel (7-17 ms seen), so it had to go to
 * a blocking thread, and its answer then waited for the busy event loop; ack p99 at
 * kube-apiserver's load fell from 46-49 ms with overlap to 26-27 ms without, with no loss of
 * throughput.
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

/** What the group commit works on, shared with the rest of the store. */
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
  /** A created segment whose file was made ahead (its folder entry is already synced). */
  readonly prepared: boolean;
  /** Where the file's own offset is, when known: a write there needs no seek. */
  readonly pos: number | undefined;
  frames: { sized: SizedRecord; appendedAt: number }[];
  pending: number;
}

/** The largest commit framed into the kept buffer; a larger one gets its own. */
const WRITE_BUFFER_MAX = 4 * 1024 * 1024;

/**
 * Writes appends to the segment files, group-committed, one commit at a time.
 *
 * @example
 * ```ts
 * const commits = new GroupCommit(deps);
 * if (await commits.append(records) === "full") await changes.next();
 * await commits.close();
 * commits.closeActive();
 * ```
 */
export class GroupCommit {
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
   * a commit runs); `pos` is the file's offset, when known.
   */
  #active:
    | { seg: Segment; file: Deno.FsFile; pos: number | undefined; written: number }
    | undefined;
  #scratch = new Uint8Array(64 * 1024);
  #nextId: number;
  #appendedOrdinal = 0;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #broken = false;
  #strays: string[] = [];
  #closed = false;
  /**
   * The next segment's file, made and its folder entry synced ahead of the roll (see
   * `#prepareSpare`); `#preparing` while that runs.
   */
  #spare: { id: number; file: Deno.FsFile } | undefined;
  #preparing: Promise<void> | undefined;
  /** The highest id a segment was made with: a spare below it is out of order, never used. */
  #lastMadeId = 0;

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
    this.#closed = true;
    await this.#preparing;
    await this.#dropSpare();
  }

  /** Closes the active segment's file (after `close`). */
  closeActive(): void {
    this.#active?.file.close();
    this.#active = undefined;
  }

  async #flushLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
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
   * Writes `group` (what fits under maxBytes) and fsyncs it; its appends resolve (or reject,
   * nothing of them kept) before this returns.
   */
  async #commit(group: Pending[]): Promise<void> {
    const groupBytes = group.reduce((n, p) => n + p.bytes, 0);
    try {
      await this.#ensureWritable();
      await this.#rollDelivered(groupBytes);
      // A roll while the next segment is being made waits for it: making another in line
      // would cost the same file and folder fsync, and leave the one being made unused.
      if (this.#preparing !== undefined && this.#rolls(groupBytes)) await this.#preparing;
    } catch (err) {
      this.#stats.appendErrors += group.reduce((n, p) => n + p.frames.length, 0);
      for (const p of group) p.reject(err);
      return;
    }
    const accepted: Pending[] = [];
    let planned = this.#stats.bytes;
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
    let failure: DiskBufferError | undefined;
    let opPath = this.#dir;
    try {
      let current: Target | undefined;
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
      for (const t of targets) {
        opPath = segmentPath(this.#dir, t.seg.id);
        const data = this.#writeBuffer(t.pending);
        let at = 0;
        for (const f of t.frames) {
          writeFrame(f.sized, f.appendedAt, data, at);
          at += f.sized.size;
        }
        this.#faults?.("write", opPath);
        // Synchronous: no fsync of the file runs now (commits take turns), and a write into
        // the page cache takes microseconds where an async one is a hop to a blocking thread
        // and back through the event loop (measured about 3x the cost).
        if (t.pos !== t.startSize) t.file.seekSync(t.startSize, Deno.SeekMode.Start);
        let done = 0;
        while (done < data.length) done += t.file.writeSync(data.subarray(done));
        if (!t.created && this.#active?.seg === t.seg) {
          this.#active.pos = this.#active.written = t.startSize + t.pending;
        }
      }
    } catch (err) {
      // A segment could not be made, or a write failed.
      failure = new DiskBufferError("io", "write", opPath, "append failed, nothing kept", {
        cause: err,
      });
    }
    failure ??= await this.#sync(targets);
    if (failure === undefined) {
      this.#visible(targets, accepted);
      return;
    }
    this.#log.warn("disk buffer append failed", {
      path: failure.path,
      op: failure.op,
      error: failure.message,
    });
    this.#stats.appendErrors += accepted.reduce((n, p) => n + p.frames.length, 0);
    // Cut the files back to where this commit started: nothing of it is kept.
    if (this.#active) this.#active.pos = undefined;
    await this.#rollback(targets);
    for (const p of accepted) p.reject(failure);
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
      if (targets.some((t) => t.created && !t.prepared)) {
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
      this.#prepareSpare();
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
        prepared: false,
        pos: this.#active.pos,
        frames: [],
        pending: 0,
      };
    }
    const spare = this.#takeSpare();
    const id = spare?.id ?? this.#nextId++;
    const path = segmentPath(this.#dir, id);
    const file = spare?.file ?? Deno.openSync(path, { read: true, write: true, createNew: true });
    this.#lastMadeId = id;
    // Only files this store made are removed after a failure, never something in the way.
    this.#strays.push(path);
    return {
      seg: { id, size: 0, sealed: false, endOrdinal: this.#appendedOrdinal },
      file,
      startSize: 0,
      created: true,
      prepared: spare !== undefined,
      pos: 0,
      frames: [],
      pending: 0,
    };
  }

  /**
   * Makes the next segment's file now, while the active one fills: a roll then takes it instead
   * of creating a file and syncing the folder on the write path, in series with the commit's
   * own fsync (issue 14 traced a stall through these: on a busy disk each took up to ~100 ms,
   * and at kube-apiserver's load a segment rolls every few seconds). The file is empty, so it
   * takes no space under `maxBytes`; one left by a crash is removed on open.
   */
  #prepareSpare(): void {
    if (this.#spare !== undefined || this.#preparing !== undefined || this.#closed) return;
    const id = this.#nextId++;
    const path = segmentPath(this.#dir, id);
    this.#preparing = (async () => {
      let file: Deno.FsFile | undefined;
      try {
        file = await Deno.open(path, { read: true, write: true, createNew: true });
        if (this.#fsync) {
          const t0 = performance.now();
          await syncDir(this.#dir);
          this.#stats.fsync.observe("dir", (performance.now() - t0) / 1000);
        }
        this.#spare = { id, file };
      } catch (err) {
        // Not an append's failure: the next roll makes its segment in line, as without a spare.
        file?.close();
        await Deno.remove(path).catch(() => {});
        this.#log.debug("disk buffer could not make the next segment ahead", {
          path,
          error: String(err),
        });
      } finally {
        this.#preparing = undefined;
      }
      if (this.#closed) await this.#dropSpare();
    })();
  }

  /** Whether appending `bytes` starts a segment. */
  #rolls(bytes: number): boolean {
    const a = this.#active;
    return a === undefined || (a.written > 0 && a.written + bytes > this.#segmentBytes);
  }

  /** The spare segment, when one is ready and still in id order. */
  #takeSpare(): { id: number; file: Deno.FsFile } | undefined {
    const spare = this.#spare;
    this.#spare = undefined;
    if (spare === undefined || spare.id > this.#lastMadeId) return spare;
    // A segment was made in line while it was being prepared: ids must grow in file order.
    spare.file.close();
    Deno.remove(segmentPath(this.#dir, spare.id)).catch(() => {});
    return undefined;
  }

  /** Removes an unused spare segment (on close). */
  async #dropSpare(): Promise<void> {
    const spare = this.#spare;
    this.#spare = undefined;
    if (spare === undefined) return;
    spare.file.close();
    await Deno.remove(segmentPath(this.#dir, spare.id)).catch(() => {});
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
   * created (or the one made ahead used, and the next made), and an unlink (issue 14). Only when the space is needed does the append wait
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
    const spaceNeeded = this.#stats.bytes + groupBytes > this.#maxBytes;
    if (a.seg.size < this.#segmentBytes / 4 && !spaceNeeded) return;
    a.seg.sealed = true;
    a.file.close();
    this.#active = undefined;
    const deleting = this.#delivery.pass(a.seg.id);
    if (spaceNeeded) await deleting;
  }
}
