/**
 * A sink's disk buffer: an append-only log of segment files with a delivery cursor.
 *
 * - `append()` frames records (length + CRC-32) and resolves only once they are fsynced. Appends
 *   that arrive while a commit runs are written and synced together by the next one (group
 *   commit), so a caller waits at most the running fsync and its own. The next segment's file
 *   is made ahead, off the write path.
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
 * `DiskBuffer` owns the shared state and composes the parts: recover.ts (open), commit.ts
 * (group commit, rollback), hot_tail.ts (handoffs to caught-up readers), reader.ts (reading
 * back, damage skipping), delivery.ts (cursor, marks, deleting segments), changes.ts (waking
 * waiters), segments.ts (the segment list) and lock.ts (the folder lock).
 *
 * @module
 */
import type { Logger } from "../core/log.ts";
import { silentLogger } from "../core/log.ts";
import { DiskBufferError } from "./errors.ts";
import type { BufferRecord } from "./frame.ts";
import type { Cursor } from "./cursor.ts";
import { io, type Recovered, recoverFolder, type Recovery } from "./recover.ts";
import { SegmentList } from "./segments.ts";
import { ChangeSignal } from "./changes.ts";
import { Delivery } from "./delivery.ts";
import { type AppendResult, GroupCommit } from "./commit.ts";
import { HotTail } from "./hot_tail.ts";
import type { StoredRecord } from "./records.ts";
import { BatchReader, type ReadOptions } from "./reader.ts";
import { FolderLock } from "./lock.ts";
import { DiskBufferStats } from "./stats.ts";

export type { BufferRecord, DecodedRecord } from "./frame.ts";
export type { Recovery } from "./recover.ts";
export type { SkippedDamage, StoredRecord } from "./records.ts";
export type { ReadOptions } from "./reader.ts";
export type { AppendResult } from "./commit.ts";

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
  /**
   * Marks within a segment are persisted at most this often, ms, and `markDelivered` resolves
   * before that (default 0: once its cursor is persisted). After a crash, records marked since
   * the last cursor write are delivered again: the duplicate window grows by at most this long
   * of delivery, and by at most `cursorMaxRecords` records. `close` persists the last mark.
   */
  readonly cursorEveryMs?: number;
  /**
   * With `cursorEveryMs`: the most records marked and not yet persisted; a mark beyond that
   * resolves once its cursor is persisted (default 10,000).
   */
  readonly cursorMaxRecords?: number;
  readonly logger?: Logger;
  /** Wall clock, ms since the epoch (tests). */
  readonly now?: () => number;
  /**
   * Called before each segment write and fsync; what it throws is handled as that call's
   * failure. Only for tests of disk errors (full, read-only) that a test cannot cause for real.
   */
  readonly faults?: (op: "write" | "fsync", path: string) => void;
  /**
   * Awaited before each delivered segment is removed. Only for tests that hold a deletion to
   * show what does (and does not) wait for it.
   */
  readonly beforeRemove?: (path: string) => Promise<void>;
  /**
   * Called once the folder's lock is held, before the backlog is scanned: a daemon's start
   * waits for the lock (another holder fails it), not for the scan.
   */
  readonly onLocked?: () => void;
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
  readonly #segments: SegmentList;
  readonly #hotTail = new HotTail();
  readonly #delivery: Delivery;
  readonly #commits: GroupCommit;
  readonly #reader: BatchReader;
  readonly #changes = new ChangeSignal();
  #lock: FolderLock | undefined;
  readonly #recovery: Recovery;

  private constructor(
    opts: DiskBufferOptions,
    state: Recovered,
  ) {
    this.#dir = opts.path;
    const fsync = opts.fsync ?? true;
    const log = opts.logger ?? silentLogger;
    this.#segments = new SegmentList(state.segments);
    this.#delivery = new Delivery({
      dir: this.#dir,
      fsync,
      log,
      stats: this.stats,
      segments: this.#segments,
      changes: this.#changes,
      persistEveryMs: opts.cursorEveryMs ?? 0,
      persistMaxRecords: opts.cursorMaxRecords ?? 10_000,
      beforeRemove: opts.beforeRemove,
    }, state.cursor);
    this.#reader = new BatchReader({
      dir: this.#dir,
      segments: this.#segments,
      delivery: this.#delivery,
      hotTail: this.#hotTail,
      changes: this.#changes,
      isClosed: () => this.#commits.closed,
    });
    this.#commits = new GroupCommit({
      dir: this.#dir,
      maxBytes: opts.maxBytes,
      segmentBytes: opts.segmentBytes ?? Math.max(1, Math.min(64 * MIB, opts.maxBytes / 4)),
      fsync,
      commitDelayMs: opts.commitDelayMs ?? 0,
      log,
      now: opts.now ?? Date.now,
      faults: opts.faults,
      stats: this.stats,
      segments: this.#segments,
      delivery: this.#delivery,
      hotTail: this.#hotTail,
      changes: this.#changes,
      nextId: state.nextId,
      appendedOrdinal: state.recovery.events,
    });
    this.#recovery = state.recovery;
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
    if (this.#commits.closed) {
      return Promise.reject(new DiskBufferError("closed", "append", this.#dir, "buffer closed"));
    }
    return this.#commits.append(records);
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
   * persisted (with `cursorEveryMs`, a mark within the segment the last persisted cursor is in
   * resolves at once and is persisted within that time). Segments wholly before the cursor are
   * then deleted.
   *
   * @throws {DiskBufferError} `io` when the cursor cannot be written (it is retried by the next mark).
   */
  markDelivered(record: StoredRecord): Promise<void> {
    if (this.#commits.closed) {
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
    if (this.#commits.closed) return;
    await this.#commits.close();
    await this.#delivery.settled();
    this.#commits.closeActive();
    this.#lock?.release();
    this.#changes.notify();
  }
}
