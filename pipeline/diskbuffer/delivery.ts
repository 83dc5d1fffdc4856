/**
 * Delivery: the cursor (the first record not yet delivered), moved by marks and persisted
 * atomically one write at a time; the segments it has passed are then deleted. Records a
 * reader skipped as damaged leave the undelivered count when skipped, so a mark that passes
 * them does not count them as delivered.
 *
 * With `persistEveryMs`, marks within one segment are persisted at most that often (a cursor
 * write is a file, two fsyncs and a rename), up to `persistMaxRecords` marked and not yet
 * persisted records (a mark beyond that waits for its write): after a crash, what was marked
 * since the last write is delivered again, so the duplicate window grows by at most that
 * many records. A mark that passes into another segment is persisted at once, so delivered
 * segments are deleted (and a full buffer's space freed) without that wait.
 *
 * @module
 */
import { join } from "node:path";
import type { Logger } from "../core/log.ts";
import { DiskBufferError } from "./errors.ts";
import { APPENDED_AT_BYTES, frameAppendedAt } from "./frame.ts";
import { type Cursor, writeCursor } from "./cursor.ts";
import { CURSOR_FILE, segmentPath } from "./layout.ts";
import type { SegmentList } from "./segments.ts";
import type { ChangeSignal } from "./changes.ts";
import type { DiskBufferStats } from "./stats.ts";
import type { SkippedDamage, StoredRecord } from "./records.ts";

/** What delivery works on, shared with the rest of the store. */
export interface DeliveryDeps {
  readonly dir: string;
  /** Whether the cursor write is fsynced (then its duration is observed). */
  readonly fsync: boolean;
  readonly log: Logger;
  readonly stats: DiskBufferStats;
  readonly segments: SegmentList;
  /** Notified when segments are deleted (space freed). */
  readonly changes: ChangeSignal;
  /**
   * Marks within a segment are persisted at most this often, ms, and resolve before that;
   * 0: every mark resolves once its cursor is persisted.
   */
  readonly persistEveryMs: number;
  /** With `persistEveryMs`: the most records marked and not yet persisted. */
  readonly persistMaxRecords: number;
  /**
   * Test hook awaited before each delivered segment is removed (see
   * `DiskBufferOptions.beforeRemove`).
   */
  readonly beforeRemove?: (path: string) => Promise<void>;
}

/**
 * The delivery cursor and what hangs on it.
 *
 * @example
 * ```ts
 * const delivery = new Delivery(deps, { segment: 1, offset: 0 });
 * await delivery.mark(record); // cursor persisted, passed segments deleted
 * console.log(delivery.cursor);
 * ```
 */
export class Delivery {
  readonly #deps: DeliveryDeps;
  #cursor: Cursor;
  #persisted: Cursor;
  #deliveredOrdinal = 0;
  #chain: Promise<void> = Promise.resolve();
  /** Ordinal ranges skipped as damaged, not yet passed by a mark: they are not delivered. */
  #skipped: { from: number; to: number }[] = [];
  /** The end of the last range skipped: a reader started again meets the same damage. */
  #skippedUpTo = 0;
  /** A deferred persist (see `DeliveryDeps.persistEveryMs`) is due. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the last cursor write started (performance.now()). */
  #lastPersistAt = -Infinity;
  /** `deliveredOrdinal` as of the cursor last written (or being written). */
  #persistedOrdinal = 0;
  /** Deletions started by `pass` and not finished (awaited by `settled`). */
  readonly #deleting = new Set<Promise<void>>();

  constructor(deps: DeliveryDeps, cursor: Cursor) {
    this.#deps = deps;
    this.#cursor = cursor;
    this.#persisted = cursor;
  }

  /** The cursor in memory (persisted by `mark`). */
  get cursor(): Cursor {
    return this.#cursor;
  }

  /** The ordinal of the first record not marked delivered. */
  get deliveredOrdinal(): number {
    return this.#deliveredOrdinal;
  }

  /**
   * Marks `record` and every record before it delivered; resolves once the cursor is
   * persisted, then deletes segments wholly before it.
   *
   * @throws {DiskBufferError} `io` when the cursor cannot be written (retried by the next mark).
   */
  mark(record: StoredRecord): Promise<void> {
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
      this.#deps.stats.events -= n;
      this.#deps.stats.delivered += n;
      if (
        record.segment > this.#cursor.segment ||
        (record.segment === this.#cursor.segment && record.end > this.#cursor.offset)
      ) {
        this.#cursor = { segment: record.segment, offset: record.end };
      }
      this.normalize();
    }
    const every = this.#deps.persistEveryMs;
    if (
      every <= 0 || this.#cursor.segment !== this.#persisted.segment ||
      this.#deliveredOrdinal - this.#persistedOrdinal >= this.#deps.persistMaxRecords
    ) return this.#persistNow();
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#persistNow().catch((err) =>
        this.#deps.log.warn(
          "disk buffer cursor not saved; events delivered since may be sent again",
          {
            path: this.#deps.dir,
            error: err,
          },
        )
      );
    }, Math.max(0, this.#lastPersistAt + every - performance.now()));
    return Promise.resolve();
  }

  /** Persists the cursor after every write already started; see `mark`. */
  #persistNow(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const next = this.#chain.catch(() => {}).then(() => this.#persist());
    this.#chain = next;
    return next;
  }

  /**
   * Persists a cursor whose write was deferred, then settles once every cursor write started
   * has finished (never rejects).
   */
  async settled(): Promise<void> {
    if (this.#timer !== undefined) this.#persistNow().catch(() => {});
    await this.#chain.catch(() => {});
    while (this.#deleting.size > 0) await Promise.all(this.#deleting);
  }

  /** A cursor at the end of a sealed segment points at the start of the next one instead. */
  normalize(): void {
    for (;;) {
      const s = this.#deps.segments.find((x) => x.id === this.#cursor.segment);
      if (s === undefined || !s.sealed || this.#cursor.offset < s.size) return;
      // Ids may have gaps (a failed append burns one); readers take the next id at or above.
      this.#cursor = { segment: s.id + 1, offset: 0 };
    }
  }

  /**
   * Moves the cursor past segment `id` (fully delivered and just sealed) and starts deleting
   * it; the cursor is persisted by the next mark. Settles when it is deleted (never rejects);
   * the append that rolled the segment waits for that only when it needs the space. Unlinking
   * a segment of tens of MiB while the disk is busy was measured at 20-125 ms, which the
   * append (and every request queued behind it) waited before its own write (issue 14: ack
   * p99 0.6 s at 4,000 events/s). The gauges count the space as free at once.
   */
  pass(id: number): Promise<void> {
    this.#cursor = { segment: id + 1, offset: 0 };
    const p = this.#deleteBelow(this.#cursor.segment).finally(() => this.#deleting.delete(p));
    this.#deleting.add(p);
    return p;
  }

  /**
   * Accounts for records a reader skipped as damaged (they leave the undelivered count);
   * false when this damage was met and counted before.
   */
  skip(d: SkippedDamage, from: number, to: number, path: string): boolean {
    if (to <= this.#skippedUpTo) return false;
    this.#skippedUpTo = to;
    const stats = this.#deps.stats;
    stats.corruptRecords++;
    stats.corruptBytes += d.bytes;
    const start = Math.max(from, this.#deliveredOrdinal);
    if (to > start) {
      stats.events -= to - start;
      this.#skipped.push({ from: start, to });
    }
    this.#deps.log.error(
      "disk buffer record corrupt after open: skipped to the end of its segment",
      {
        path,
        segment: d.segment,
        offset: d.offset,
        bytes: d.bytes,
        records: d.records,
        reason: d.reason,
      },
    );
    return true;
  }

  async #persist(): Promise<void> {
    const c = this.#cursor;
    if (c.segment === this.#persisted.segment && c.offset === this.#persisted.offset) return;
    const dir = this.#deps.dir;
    const t0 = performance.now();
    this.#lastPersistAt = t0;
    const ordinal = this.#deliveredOrdinal;
    try {
      await writeCursor(dir, c);
    } catch (err) {
      throw new DiskBufferError("io", "cursor", join(dir, CURSOR_FILE), "write failed", {
        cause: err,
      });
    }
    if (this.#deps.fsync) {
      this.#deps.stats.fsync.observe("cursor", (performance.now() - t0) / 1000);
    }
    this.#persisted = c;
    this.#persistedOrdinal = ordinal;
    await this.#deleteBelow(c.segment);
    this.#updateOldest();
    // A fully delivered active segment is deleted by the next append: wake blocked appenders.
    this.#deps.changes.notify();
  }

  /** Deletes segments below `id` (all delivered); a failed delete is retried on open. */
  async #deleteBelow(id: number): Promise<void> {
    const { segments, stats } = this.#deps;
    const gone = segments.removeSealedBelow(id);
    if (gone.length === 0) return;
    // Counted at once: the files are off the list, whether or not their removal finished.
    for (const s of gone) stats.bytes -= s.size;
    stats.segments = segments.length;
    for (const s of gone) {
      const path = segmentPath(this.#deps.dir, s.id);
      try {
        await this.#deps.beforeRemove?.(path);
        await Deno.remove(path);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) {
          this.#deps.log.warn("disk buffer cannot delete a delivered segment", {
            path,
            error: String(err),
          });
        }
      }
    }
    this.#deps.changes.notify();
  }

  /** Reads when the record at the cursor was appended, for the age gauge. */
  #updateOldest(): void {
    const stats = this.#deps.stats;
    if (stats.events <= 0) {
      stats.oldestUndeliveredAt = undefined;
      return;
    }
    const c = this.#cursor;
    const s = this.#deps.segments.find((x) => x.id >= c.segment);
    if (s === undefined) return;
    const off = s.id === c.segment ? c.offset : 0;
    if (s.size < off + APPENDED_AT_BYTES) return;
    // Synchronous, as reads are (see segment_reader.ts): 24 bytes from the page cache.
    try {
      const f = Deno.openSync(segmentPath(this.#deps.dir, s.id), { read: true });
      try {
        const buf = new Uint8Array(APPENDED_AT_BYTES);
        f.seekSync(off, Deno.SeekMode.Start);
        let n = 0;
        while (n < buf.length) {
          const r = f.readSync(buf.subarray(n));
          if (r === null || r === 0) return;
          n += r;
        }
        stats.oldestUndeliveredAt = frameAppendedAt(buf, 0);
      } finally {
        f.close();
      }
    } catch {
      // The gauge keeps its last value; reading goes on regardless.
    }
  }
}
