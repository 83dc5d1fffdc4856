/**
 * Checking a whole segment: how many intact records it holds, how many of them lie before a
 * cursor offset, and where damage starts. Used on open (which then cuts the damage off) and
 * by `auditpipe buffer inspect` (which only reports it).
 *
 * @module
 */
import { SegmentReader } from "./segment_reader.ts";

/** Bytes scanned between turns given to the event loop. */
const YIELD_BYTES = 8 * 1024 * 1024;

/** Damage found in a segment: everything from `offset` on. */
export interface Damage {
  readonly segment: number;
  readonly offset: number;
  /** Bytes from `offset` to the end of the file. */
  readonly bytes: number;
  readonly reason: string;
}

/** What a segment holds. */
export interface SegmentScan {
  readonly id: number;
  /** The file's size as found. */
  readonly size: number;
  /** Where the last intact record ends (`size` when there is no damage). */
  readonly goodEnd: number;
  readonly records: number;
  /** Intact records that start at or after `from` (the cursor's offset in this segment). */
  readonly undelivered: number;
  /** Bytes of those records. */
  readonly undeliveredBytes: number;
  /** When the first undelivered record was appended (ms since the epoch). */
  readonly firstUndeliveredAt?: number;
  readonly damage?: Damage;
}

/**
 * Scans segment `id` at `path`, counting records from `from` on as undelivered.
 *
 * @example
 * ```ts
 * const s = await scanSegment("/buf/00000000000000000001.seg", 1, 0);
 * if (s.damage) console.log(`damaged at ${s.damage.offset}: ${s.damage.reason}`);
 * ```
 */
export async function scanSegment(path: string, id: number, from: number): Promise<SegmentScan> {
  const file = await Deno.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    const reader = new SegmentReader(file, 0, size);
    let records = 0, undelivered = 0, undeliveredBytes = 0;
    let firstUndeliveredAt: number | undefined;
    let yieldAt = YIELD_BYTES;
    for (;;) {
      // Reads are synchronous: let the rest of the process run between stretches of a scan.
      if (reader.position >= yieldAt) {
        yieldAt = reader.position + YIELD_BYTES;
        await new Promise((r) => setTimeout(r, 0));
      }
      const it = reader.nextSync();
      if (it === undefined) break;
      if (it.kind === "corrupt") {
        return {
          id,
          size,
          goodEnd: it.offset,
          records,
          undelivered,
          undeliveredBytes,
          firstUndeliveredAt,
          damage: { segment: id, offset: it.offset, bytes: size - it.offset, reason: it.reason },
        };
      }
      records++;
      if (it.offset >= from) {
        undelivered++;
        undeliveredBytes += it.end - it.offset;
        firstUndeliveredAt ??= it.record.appendedAt;
      }
    }
    return {
      id,
      size,
      goodEnd: size,
      records,
      undelivered,
      undeliveredBytes,
      firstUndeliveredAt,
    };
  } finally {
    file.close();
  }
}
