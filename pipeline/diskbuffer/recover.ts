/**
 * What opening a disk buffer finds in its folder: the cursor (a leftover temporary cursor file
 * removed), the segments still undelivered (delivered ones whose deletion a crash interrupted
 * are deleted), each scanned by CRC with a damaged tail cut off, counted and logged.
 *
 * @module
 */
import { join } from "node:path";
import type { Logger } from "../core/log.ts";
import { DiskBufferError } from "./errors.ts";
import { type Cursor, readCursor } from "./cursor.ts";
import { CURSOR_FILE, listSegments, segmentPath } from "./layout.ts";
import { type Damage, scanSegment } from "./scan.ts";
import type { Segment } from "./segments.ts";

/** What open found and repaired. */
export interface Recovery {
  /** Damaged regions cut off, by segment and offset. */
  readonly damage: readonly Damage[];
  /** Why the cursor file was unreadable (everything is then delivered again), if it was. */
  readonly cursorInvalid?: string;
  /** Undelivered records found. */
  readonly events: number;
}

/** A folder's state after recovery, to open the store on. */
export interface Recovered {
  readonly segments: Segment[];
  readonly cursor: Cursor;
  /** The id the next new segment takes. */
  readonly nextId: number;
  readonly recovery: Recovery;
  /** Bytes of the segment files kept. */
  readonly bytes: number;
  /** When the first undelivered record was appended, if there is one. */
  readonly oldestUndeliveredAt: number | undefined;
}

/**
 * Recovers the buffer in `dir` (which exists and whose lock the caller holds).
 *
 * @throws {DiskBufferError} `io` naming the operation and file that failed.
 * @example
 * ```ts
 * const r = await recoverFolder("/var/lib/auditpipe/remote", logger);
 * console.log(r.recovery.events, r.recovery.damage.length);
 * ```
 */
export async function recoverFolder(dir: string, log: Logger): Promise<Recovered> {
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
  const ids = await io("open", dir, () => listSegments(dir, { empty: true }));
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
    if (scan.size === 0) {
      // Empty: the next segment, made ahead of a roll that did not come (commit.ts). Ids may
      // have gaps, so removing it changes nothing but the listing.
      await io("delete", path, () => Deno.remove(path));
      continue;
    }
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
  return {
    segments,
    cursor,
    nextId: Math.max(last, cursor.segment) + 1,
    recovery: { damage, cursorInvalid, events },
    bytes,
    oldestUndeliveredAt: oldest,
  };
}

/**
 * Runs one step of opening, turning what it throws into a {@linkcode DiskBufferError}.
 *
 * @example
 * ```ts
 * await io("open", dir, () => Deno.mkdir(dir, { recursive: true }));
 * ```
 */
export async function io<T>(op: string, path: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw new DiskBufferError("io", op, path, "failed", { cause: err });
  }
}
