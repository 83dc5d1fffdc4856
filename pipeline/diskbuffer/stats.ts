/**
 * What a disk buffer holds and has done, in the shape the metrics endpoint will export:
 * gauges (bytes, events, segments, oldest undelivered event), counters and the fsync
 * duration histogram.
 *
 * @module
 */
import { DURATION_BUCKETS, Durations } from "../core/stats.ts";

/**
 * A disk buffer's counters, updated by the store as it works.
 *
 * @example
 * ```ts
 * const s = store.stats;
 * console.log(s.bytes, s.events, s.segments, s.oldestUndeliveredAgeSeconds(Date.now()));
 * ```
 */
export class DiskBufferStats {
  /** Bytes of all segment files (delivered records count until their segment is deleted). */
  bytes = 0;
  /** Records appended and not yet marked delivered. */
  events = 0;
  /** Segment files. */
  segments = 0;
  /** When the oldest undelivered record was appended (ms since the epoch), if any. */
  oldestUndeliveredAt: number | undefined = undefined;
  /** Records appended (acknowledged after fsync) since open. */
  appended = 0;
  /** Records marked delivered since open. */
  delivered = 0;
  /** Records refused because the buffer was full. */
  full = 0;
  /** Appends that failed on a disk error (their records were not kept). */
  appendErrors = 0;
  /** Damaged regions found and cut off (each one at least one record). */
  corruptRecords = 0;
  /** Bytes cut off with them. */
  corruptBytes = 0;
  /** fsync durations in seconds, by what was synced: `segment`, `dir` (a segment started) or `cursor`. */
  readonly fsync: Durations = new Durations(DURATION_BUCKETS);

  /** Seconds since the oldest undelivered record was appended; 0 when there is none. */
  oldestUndeliveredAgeSeconds(nowMs: number): number {
    return this.oldestUndeliveredAt === undefined
      ? 0
      : Math.max(0, (nowMs - this.oldestUndeliveredAt) / 1000);
  }
}
