/**
 * Looking into a disk buffer without changing it (for `auditpipe buffer inspect`, also while a
 * daemon runs on it): its segments, record counts, cursor and damage, and its undelivered
 * records up to the first damage in each segment.
 *
 * @module
 */
import { type Cursor, readCursor } from "./cursor.ts";
import type { DecodedRecord } from "./frame.ts";
import { listSegments, segmentPath } from "./layout.ts";
import { type Damage, scanSegment, type SegmentScan } from "./scan.ts";
import { SegmentReader } from "./segment_reader.ts";

/** One segment as found. */
export interface SegmentReport extends SegmentScan {
  /** Wholly before the cursor: delivered, its deletion still to come. */
  readonly delivered: boolean;
}

/** A buffer as found. */
export interface BufferReport {
  readonly path: string;
  /** The persisted cursor; undefined when there is none (nothing delivered yet) or it is invalid. */
  readonly cursor?: Cursor;
  /** Why the cursor file could not be read. */
  readonly cursorInvalid?: string;
  readonly segments: readonly SegmentReport[];
  readonly damage: readonly Damage[];
  readonly bytes: number;
  readonly records: number;
  readonly undelivered: number;
  readonly undeliveredBytes: number;
  /** When the oldest undelivered record was appended (ms since the epoch). */
  readonly oldestUndeliveredAt?: number;
}

/**
 * Scans the buffer in `path`, changing nothing.
 *
 * @example
 * ```ts
 * const r = await inspectBuffer("/var/lib/auditpipe/remote");
 * console.log(r.undelivered, r.damage);
 * ```
 */
export async function inspectBuffer(path: string): Promise<BufferReport> {
  const read = await readCursor(path);
  const cursor = read.kind === "ok" ? read.cursor : undefined;
  const c = cursor ?? { segment: 0, offset: 0 };
  const segments: SegmentReport[] = [];
  for (const id of await listSegments(path)) {
    let scan: SegmentScan;
    try {
      scan = await scanSegment(segmentPath(path, id), id, id === c.segment ? c.offset : 0);
    } catch (err) {
      // Deleted by a running daemon between listing and reading.
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    const delivered = id < c.segment;
    segments.push({
      ...scan,
      delivered,
      undelivered: delivered ? 0 : scan.undelivered,
      undeliveredBytes: delivered ? 0 : scan.undeliveredBytes,
      firstUndeliveredAt: delivered ? undefined : scan.firstUndeliveredAt,
    });
  }
  const sum = (f: (s: SegmentReport) => number) => segments.reduce((n, s) => n + f(s), 0);
  return {
    path,
    cursor,
    cursorInvalid: read.kind === "invalid" ? read.reason : undefined,
    segments,
    damage: segments.flatMap((s) => s.damage ? [s.damage] : []),
    bytes: sum((s) => s.size),
    records: sum((s) => s.records),
    undelivered: sum((s) => s.undelivered),
    undeliveredBytes: sum((s) => s.undeliveredBytes),
    oldestUndeliveredAt: segments.find((s) => s.firstUndeliveredAt !== undefined)
      ?.firstUndeliveredAt,
  };
}

/**
 * The undelivered records of a buffer as `report` found it, in order, read one at a time.
 *
 * @example
 * ```ts
 * for await (const r of undeliveredRecords(await inspectBuffer(dir))) console.log(r.auditID);
 * ```
 */
export async function* undeliveredRecords(
  report: BufferReport,
): AsyncGenerator<DecodedRecord, void, undefined> {
  const c = report.cursor ?? { segment: 0, offset: 0 };
  for (const s of report.segments) {
    if (s.delivered) continue;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(segmentPath(report.path, s.id), { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    try {
      const reader = new SegmentReader(file, s.id === c.segment ? c.offset : 0, s.goodEnd);
      for (let it = await reader.next(); it?.kind === "record"; it = await reader.next()) {
        yield it.record;
      }
    } finally {
      file.close();
    }
  }
}
