/**
 * A sink's disk buffer: an append-only log of segment files with a delivery cursor.
 *
 * - `append()` frames records (length + CRC-32) and resolves only once they are fsynced. Appends
 *   that arrive while an fsync runs are written and synced together by the next one (group
 *   commit), so one fsync serves many callers and a caller waits at most about two fsyncs.
 * - `read()` streams undelivered records in order through a fixed buffer, following new
 *   appends; `markDelivered()` moves the cursor (persisted atomically) and deletes segments
 *   the cursor has passed.
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
import {
  APPENDED_AT_BYTES,
  type BufferRecord,
  type DecodedRecord,
  frameAppendedAt,
  type SizedRecord,
  sizeFrame,
  writeFrame,
} from "./frame.ts";
import { type Cursor, readCursor, writeCursor } from "./cursor.ts";
import { syncDir } from "../core/atomic_file.ts";
import { CURSOR_FILE, listSegments, segmentPath } from "./layout.ts";
import { type Damage, scanSegment } from "./scan.ts";
import { SegmentReader } from "./segment_reader.ts";
import { FolderLock } from "./lock.ts";
import { DiskBufferStats } from "./stats.ts";
import { join } from "node:path";

export type { BufferRecord, DecodedRecord } from "./frame.ts";

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

/** A record read from the buffer, with where it is (for `markDelivered`). */
export interface StoredRecord extends DecodedRecord {
  readonly segment: number;
  readonly offset: number;
  readonly end: number;
  /** Its place among undelivered records since open; orders marks. */
  readonly ordinal: number;
}

/** What open found and repaired. */
export interface Recovery {
  /** Damaged regions cut off, by segment and offset. */
  readonly damage: readonly Damage[];
  /** Why the cursor file was unreadable (everything is then delivered again), if it was. */
  readonly cursorInvalid?: string;
  /** Undelivered records found. */
  readonly events: number;
}

interface Segment {
  readonly id: number;
  /** Bytes of whole, committed records. */
  size: number;
  /** No more appends go to it. */
  sealed: boolean;
  /** The ordinal after its last record (ordinals count undelivered records since open). */
  endOrdinal: number;
}

/**
 * Damage a reader found after open: the records from `offset` to the segment's end (as it
 * was then) were skipped; `records` of them were counted as undelivered.
 */
export interface SkippedDamage extends Damage {
  readonly records: number;
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
  frames: { sized: SizedRecord; appendedAt: number }[];
  pending: number;
}

const MIB = 1024 * 1024;

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
  #segments: Segment[] = [];
  #active: { seg: Segment; file: Deno.FsFile } | undefined;
  #nextId: number;
  #cursor: Cursor;
  #persisted: Cursor;
  #deliveredOrdinal = 0;
  #appendedOrdinal = 0;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #broken = false;
  #strays: string[] = [];
  #cursorChain: Promise<void> = Promise.resolve();
  #changed = Promise.withResolvers<void>();
  #closed = false;
  #lock: FolderLock | undefined;
  #recovery: Recovery;
  /** Ordinal ranges skipped as damaged, not yet passed by a mark: they are not delivered. */
  #skipped: { from: number; to: number }[] = [];
  /** The end of the last range skipped: a reader started again meets the same damage. */
  #skippedUpTo = 0;

  private constructor(
    opts: DiskBufferOptions,
    state: { segments: Segment[]; cursor: Cursor; nextId: number; recovery: Recovery },
  ) {
    this.#dir = opts.path;
    this.#maxBytes = opts.maxBytes;
    this.#segmentBytes = opts.segmentBytes ?? Math.max(1, Math.min(64 * MIB, opts.maxBytes / 4));
    this.#fsync = opts.fsync ?? true;
    this.#commitDelayMs = opts.commitDelayMs ?? 0;
    this.#log = opts.logger ?? silentLogger;
    this.#now = opts.now ?? Date.now;
    this.#faults = opts.faults;
    this.#segments = state.segments;
    this.#cursor = state.cursor;
    this.#persisted = state.cursor;
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
    return this.#cursor;
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
    const log = opts.logger ?? silentLogger;
    const io = async <T>(op: string, path: string, f: () => Promise<T>): Promise<T> => {
      try {
        return await f();
      } catch (err) {
        throw new DiskBufferError("io", op, path, "failed", { cause: err });
      }
    };
    await io("open", dir, () => Deno.mkdir(dir, { recursive: true }));
    // Released if opening fails below; the store holds it from the end of open to close.
    using held = new DisposableStack();
    const lock = held.adopt(await FolderLock.acquire(dir), (l) => l.release());
    opts.onLocked?.();
    await io("open", dir, async () => {
      try {
        await Deno.remove(join(dir, `${CURSOR_FILE}.tmp`));
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    });
    const read = await io("open", join(dir, CURSOR_FILE), () => readCursor(dir));
    let cursor: Cursor = { segment: 0, offset: 0 };
    let cursorInvalid: string | undefined;
    if (read.kind === "ok") cursor = read.cursor;
    if (read.kind === "invalid") {
      cursorInvalid = read.reason;
      log.warn("disk buffer cursor unreadable: delivering every record again", {
        path: join(dir, CURSOR_FILE),
        reason: read.reason,
      });
    }
    const ids = await io("open", dir, () => listSegments(dir));
    const segments: Segment[] = [];
    const damage: Damage[] = [];
    let events = 0, bytes = 0;
    let oldest: number | undefined;
    for (const id of ids) {
      const path = segmentPath(dir, id);
      if (id < cursor.segment) {
        // Delivered; its deletion did not happen before a crash.
        await io("delete", path, () => Deno.remove(path));
        continue;
      }
      const from = id === cursor.segment ? cursor.offset : 0;
      const scan = await io("scan", path, () => scanSegment(path, id, from));
      if (scan.damage) {
        damage.push(scan.damage);
        log.warn("disk buffer segment damaged: cut off at the last intact record", {
          path,
          segment: id,
          offset: scan.damage.offset,
          bytes: scan.damage.bytes,
          reason: scan.damage.reason,
        });
        await io("truncate", path, async () => {
          const f = await Deno.open(path, { write: true });
          try {
            await f.truncate(scan.goodEnd);
            await f.syncData();
          } finally {
            f.close();
          }
        });
      }
      events += scan.undelivered;
      segments.push({ id, size: scan.goodEnd, sealed: true, endOrdinal: events });
      bytes += scan.goodEnd;
      oldest ??= scan.firstUndeliveredAt;
    }
    const last = segments.at(-1)?.id ?? 0;
    const store = new DiskBuffer(opts, {
      segments,
      cursor,
      nextId: Math.max(last, cursor.segment) + 1,
      recovery: { damage, cursorInvalid, events },
    });
    store.stats.bytes = bytes;
    store.stats.events = events;
    store.stats.segments = segments.length;
    store.stats.oldestUndeliveredAt = oldest;
    store.stats.corruptRecords = damage.length;
    store.stats.corruptBytes = damage.reduce((n, d) => n + d.bytes, 0);
    store.#normalizeCursor();
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
    return promise;
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

  async #commit(group: Pending[]): Promise<void> {
    try {
      await this.#ensureWritable();
      await this.#rollDelivered();
    } catch (err) {
      this.stats.appendErrors += group.reduce((n, p) => n + p.frames.length, 0);
      for (const p of group) p.reject(err);
      return;
    }
    const accepted: Pending[] = [];
    let planned = this.stats.bytes;
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
    let op = "write";
    let opPath = this.#dir;
    try {
      for (const p of accepted) {
        for (const frame of p.frames) {
          if (current === undefined) {
            current = await this.#target(undefined);
            targets.push(current);
          }
          const size = current.startSize + current.pending;
          if (size > 0 && size + frame.size > this.#segmentBytes) {
            current = await this.#target(current);
            targets.push(current);
          }
          current.frames.push({ sized: frame, appendedAt: p.appendedAt });
          current.pending += frame.size;
        }
      }
      for (const t of targets) {
        opPath = segmentPath(this.#dir, t.seg.id);
        op = "write";
        const data = new Uint8Array(t.pending);
        let at = 0;
        for (const f of t.frames) {
          writeFrame(f.sized, f.appendedAt, data, at);
          at += f.sized.size;
        }
        this.#faults?.("write", opPath);
        await t.file.seek(t.startSize, Deno.SeekMode.Start);
        let done = 0;
        while (done < data.length) done += await t.file.write(data.subarray(done));
      }
      if (this.#fsync) {
        op = "fsync";
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
      }
    } catch (err) {
      await this.#rollback(targets);
      const e = new DiskBufferError("io", op, opPath, "append failed, nothing kept", {
        cause: err,
      });
      this.#log.warn("disk buffer append failed", { path: opPath, op, error: e.message });
      this.stats.appendErrors += accepted.reduce((n, p) => n + p.frames.length, 0);
      for (const p of accepted) p.reject(e);
      return;
    }
    // Committed: make it visible.
    const wasEmpty = this.stats.events === 0;
    let count = 0;
    for (const p of accepted) count += p.frames.length;
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
    const last = targets.at(-1)!;
    this.#active = { seg: last.seg, file: last.file };
    // Not `planned`: deletions may have run meanwhile.
    for (const t of targets) this.stats.bytes += t.pending;
    this.stats.segments = this.#segments.length;
    this.stats.events += count;
    this.stats.appended += count;
    this.#appendedOrdinal += count;
    if (wasEmpty) this.stats.oldestUndeliveredAt = accepted[0].appendedAt;
    for (const p of accepted) p.resolve("appended");
    this.#notify();
  }

  /** The segment to write next: the active one, or a new one after `prev`. */
  async #target(prev: Target | undefined): Promise<Target> {
    if (prev === undefined && this.#active !== undefined) {
      const seg = this.#active.seg;
      return {
        seg,
        file: this.#active.file,
        startSize: seg.size,
        created: false,
        frames: [],
        pending: 0,
      };
    }
    const id = this.#nextId++;
    const path = segmentPath(this.#dir, id);
    const file = await Deno.open(path, { read: true, write: true, createNew: true });
    // Only files this store made are removed after a failure, never something in the way.
    this.#strays.push(path);
    return {
      seg: { id, size: 0, sealed: false, endOrdinal: this.#appendedOrdinal },
      file,
      startSize: 0,
      created: true,
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
        await this.#active.file.truncate(this.#active.seg.size);
        await this.#active.file.syncData();
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
    if (
      a === undefined || a.seg.size === 0 || this.#cursor.segment !== a.seg.id ||
      this.#cursor.offset < a.seg.size
    ) return;
    a.seg.sealed = true;
    a.file.close();
    this.#active = undefined;
    this.#cursor = { segment: a.seg.id + 1, offset: 0 };
    await this.#deleteBelow(this.#cursor.segment);
  }

  /**
   * Streams undelivered records in order from the cursor; with `follow`, waits for appends
   * instead of ending (until `signal` aborts or the buffer closes).
   *
   * A record that went bad on disk after open (its frame no longer checks) is skipped with
   * the rest of its segment as it is then (where the next intact frame starts is unknown;
   * records appended later follow it): counted in `stats.corruptRecords`, logged with segment
   * and offset, taken off `stats.events`, and reported to `onDamage`. Reading goes on.
   *
   * @throws {DiskBufferError} `io` when a segment cannot be read.
   */
  async *read(
    opts: {
      follow?: boolean;
      signal?: AbortSignal;
      onDamage?: (damage: SkippedDamage) => void;
    } = {},
  ): AsyncGenerator<StoredRecord, void, undefined> {
    let seg = this.#cursor.segment;
    let off = this.#cursor.offset;
    let ordinal = this.#deliveredOrdinal;
    for (;;) {
      if (this.#closed || opts.signal?.aborted) return;
      const s = this.#segments.find((x) => x.id >= seg);
      if (s === undefined) {
        if (!opts.follow || !(await this.#waitChange(opts.signal))) return;
        continue;
      }
      if (s.id !== seg) {
        seg = s.id;
        off = 0;
      }
      const path = segmentPath(this.#dir, s.id);
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path, { read: true });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound && !this.#segments.includes(s)) continue;
        throw new DiskBufferError("io", "read", path, "cannot open segment", { cause: err });
      }
      try {
        let reader = new SegmentReader(file, off, s.size);
        for (;;) {
          reader.end = s.size;
          let it;
          try {
            it = await reader.next();
          } catch (err) {
            throw new DiskBufferError("io", "read", path, "read failed", { cause: err });
          }
          if (it?.kind === "record") {
            off = it.end;
            yield {
              ...it.record,
              segment: s.id,
              offset: it.offset,
              end: it.end,
              ordinal: ordinal++,
            };
            continue;
          }
          if (it?.kind === "corrupt") {
            // Read synchronously with the size: both change only together, in a commit.
            const damage: SkippedDamage = {
              segment: s.id,
              offset: it.offset,
              bytes: s.size - it.offset,
              reason: it.reason,
              records: Math.max(0, s.endOrdinal - ordinal),
            };
            if (this.#skip(damage, ordinal, s.endOrdinal, path)) opts.onDamage?.(damage);
            off = s.size;
            ordinal = Math.max(ordinal, s.endOrdinal);
            reader = new SegmentReader(file, off, s.size);
            continue;
          }
          if (off < s.size) continue;
          if (s.sealed) {
            seg = s.id + 1;
            off = 0;
            break;
          }
          if (!opts.follow || !(await this.#waitChange(opts.signal))) return;
          if (this.#closed) return;
        }
      } finally {
        file.close();
      }
    }
  }

  /**
   * Accounts for records a reader skipped as damaged (they leave the undelivered count);
   * false when this damage was met and counted before.
   */
  #skip(d: SkippedDamage, from: number, to: number, path: string): boolean {
    if (to <= this.#skippedUpTo) return false;
    this.#skippedUpTo = to;
    this.stats.corruptRecords++;
    this.stats.corruptBytes += d.bytes;
    const start = Math.max(from, this.#deliveredOrdinal);
    if (to > start) {
      this.stats.events -= to - start;
      this.#skipped.push({ from: start, to });
    }
    this.#log.error("disk buffer record corrupt after open: skipped to the end of its segment", {
      path,
      segment: d.segment,
      offset: d.offset,
      bytes: d.bytes,
      records: d.records,
      reason: d.reason,
    });
    return true;
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
    if (record.ordinal >= this.#deliveredOrdinal) {
      let n = record.ordinal + 1 - this.#deliveredOrdinal;
      this.#deliveredOrdinal = record.ordinal + 1;
      // Skipped records were taken off the count when skipped: they are not delivered.
      this.#skipped = this.#skipped.filter((r) => {
        const passed = Math.min(r.to, this.#deliveredOrdinal) - r.from;
        if (passed > 0) n -= passed;
        if (r.to <= this.#deliveredOrdinal) return false;
        if (passed > 0) r.from = this.#deliveredOrdinal;
        return true;
      });
      this.stats.events -= n;
      this.stats.delivered += n;
      if (
        record.segment > this.#cursor.segment ||
        (record.segment === this.#cursor.segment && record.end > this.#cursor.offset)
      ) {
        this.#cursor = { segment: record.segment, offset: record.end };
      }
      this.#normalizeCursor();
    }
    const next = this.#cursorChain.catch(() => {}).then(() => this.#persistCursor());
    this.#cursorChain = next;
    return next;
  }

  /** A cursor at the end of a sealed segment points at the start of the next one instead. */
  #normalizeCursor(): void {
    for (;;) {
      const s = this.#segments.find((x) => x.id === this.#cursor.segment);
      if (s === undefined || !s.sealed || this.#cursor.offset < s.size) return;
      // Ids may have gaps (a failed append burns one); readers take the next id at or above.
      this.#cursor = { segment: s.id + 1, offset: 0 };
    }
  }

  async #persistCursor(): Promise<void> {
    const c = this.#cursor;
    if (c.segment === this.#persisted.segment && c.offset === this.#persisted.offset) return;
    const t0 = performance.now();
    try {
      await writeCursor(this.#dir, c);
    } catch (err) {
      throw new DiskBufferError("io", "cursor", join(this.#dir, CURSOR_FILE), "write failed", {
        cause: err,
      });
    }
    if (this.#fsync) this.stats.fsync.observe("cursor", (performance.now() - t0) / 1000);
    this.#persisted = c;
    await this.#deleteBelow(c.segment);
    await this.#updateOldest();
    // A fully delivered active segment is deleted by the next append: wake blocked appenders.
    this.#notify();
  }

  /** Deletes segments below `id` (all delivered); a failed delete is retried on open. */
  async #deleteBelow(id: number): Promise<void> {
    const gone = this.#segments.filter((s) => s.id < id && s.sealed);
    if (gone.length === 0) return;
    this.#segments = this.#segments.filter((s) => !gone.includes(s));
    for (const s of gone) {
      this.stats.bytes -= s.size;
      const path = segmentPath(this.#dir, s.id);
      try {
        await Deno.remove(path);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) {
          this.#log.warn("disk buffer cannot delete a delivered segment", {
            path,
            error: String(err),
          });
        }
      }
    }
    this.stats.segments = this.#segments.length;
    this.#notify();
  }

  /** Reads when the record at the cursor was appended, for the age gauge. */
  async #updateOldest(): Promise<void> {
    if (this.stats.events <= 0) {
      this.stats.oldestUndeliveredAt = undefined;
      return;
    }
    const c = this.#cursor;
    const s = this.#segments.find((x) => x.id >= c.segment);
    if (s === undefined) return;
    const off = s.id === c.segment ? c.offset : 0;
    if (s.size < off + APPENDED_AT_BYTES) return;
    try {
      const f = await Deno.open(segmentPath(this.#dir, s.id), { read: true });
      try {
        const buf = new Uint8Array(APPENDED_AT_BYTES);
        await f.seek(off, Deno.SeekMode.Start);
        let n = 0;
        while (n < buf.length) {
          const r = await f.read(buf.subarray(n));
          if (r === null) return;
          n += r;
        }
        this.stats.oldestUndeliveredAt = frameAppendedAt(buf, 0);
      } finally {
        f.close();
      }
    } catch {
      // The gauge keeps its last value; reading goes on regardless.
    }
  }

  /** Resolves the next time space may have been freed (a segment deleted) or on close. */
  whenSpace(): Promise<void> {
    return this.#changed.promise;
  }

  #notify(): void {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers<void>();
  }

  /** Waits for a commit, deletion or close; false when `signal` aborted. */
  async #waitChange(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    if (!signal) {
      await this.#changed.promise;
      return true;
    }
    const aborted = Promise.withResolvers<boolean>();
    const onAbort = () => aborted.resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await Promise.race([this.#changed.promise.then(() => true), aborted.promise]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Finishes pending appends and the cursor, then closes the files. Readers end. */
  async close(): Promise<void> {
    if (this.#closed) return;
    while (this.#flushing) await this.#flushing;
    this.#closed = true;
    await this.#cursorChain.catch(() => {});
    this.#active?.file.close();
    this.#active = undefined;
    this.#lock?.release();
    this.#notify();
  }
}
