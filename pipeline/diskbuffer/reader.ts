/**
 * Reading a disk buffer back: undelivered records in order from the cursor, in batches,
 * through one fixed buffer per open segment; a following reader waits for commits and, once
 * caught up, takes the records the hot tail hands it. Damage found after open skips the rest
 * of its segment (see {@linkcode Delivery.skip}).
 *
 * @module
 */
import { DiskBufferError } from "./errors.ts";
import { segmentPath } from "./layout.ts";
import { SegmentReader } from "./segment_reader.ts";
import { type HotTail, READ_BATCH } from "./hot_tail.ts";
import type { Delivery } from "./delivery.ts";
import type { SegmentList } from "./segments.ts";
import type { ChangeSignal } from "./changes.ts";
import type { SkippedDamage, StoredRecord } from "./records.ts";

/**
 * How a disk buffer's `read` and `readBatches` read.
 *
 * @example
 * ```ts
 * const opts: ReadOptions = { follow: true, signal: AbortSignal.timeout(5000) };
 * for await (const r of buf.read(opts)) console.log(r.auditID);
 * ```
 */
export interface ReadOptions {
  /** Wait for appends at the end instead of ending. */
  readonly follow?: boolean;
  readonly signal?: AbortSignal;
  /** Called for damage found after open (records skipped); see `readBatches`. */
  readonly onDamage?: (damage: SkippedDamage) => void;
}

/** What a reader works on, shared with the rest of the store. */
export interface BatchReaderDeps {
  readonly dir: string;
  readonly segments: SegmentList;
  /** Where reading starts, and where skipped damage is accounted. */
  readonly delivery: Delivery;
  readonly hotTail: HotTail;
  /** Notified on commits, deletions and close. */
  readonly changes: ChangeSignal;
  /** Whether the store closed (readers then end). */
  readonly isClosed: () => boolean;
}

/**
 * Reads a store's undelivered records back.
 *
 * @example
 * ```ts
 * const reader = new BatchReader({ dir, segments, delivery, hotTail, changes, isClosed });
 * for await (const batch of reader.batches({ follow: true })) console.log(batch.length);
 * ```
 */
export class BatchReader {
  readonly #deps: BatchReaderDeps;

  constructor(deps: BatchReaderDeps) {
    this.#deps = deps;
  }

  /** Streams batches from the cursor; see `DiskBuffer.readBatches`. */
  async *batches(opts: ReadOptions): AsyncGenerator<StoredRecord[], void, undefined> {
    const { dir, segments, delivery, hotTail, changes, isClosed } = this.#deps;
    let seg = delivery.cursor.segment;
    let off = delivery.cursor.offset;
    let ordinal = delivery.deliveredOrdinal;
    const follower = opts.follow ? hotTail.follow() : undefined;
    let open: { id: number; path: string; file: Deno.FsFile; reader: SegmentReader } | undefined;
    const closeFile = () => {
      open?.file.close();
      open = undefined;
    };
    try {
      for (;;) {
        if (isClosed() || opts.signal?.aborted) return;
        const handed = follower?.take();
        if (handed !== undefined) {
          const last = handed[handed.length - 1];
          seg = last.segment;
          off = last.end;
          ordinal = last.ordinal + 1;
          yield handed;
          continue;
        }
        if (follower && follower.seq === hotTail.seq) {
          if (!(await changes.wait(opts.signal))) return;
          continue;
        }
        if (follower) follower.seq = -1;
        const s = segments.find((x) => x.id >= seg);
        if (s !== undefined && s.id !== seg) {
          seg = s.id;
          off = 0;
        }
        if (s !== undefined && off >= s.size && s.sealed) {
          seg = s.id + 1;
          off = 0;
          continue;
        }
        if (s === undefined || off >= s.size) {
          if (!follower) return;
          // Everything committed is read: the next commits are handed over.
          follower.seq = hotTail.seq;
          continue;
        }
        if (open?.id !== s.id) {
          closeFile();
          const path = segmentPath(dir, s.id);
          let file: Deno.FsFile;
          try {
            file = Deno.openSync(path, { read: true });
          } catch (err) {
            if (err instanceof Deno.errors.NotFound && !segments.includes(s)) continue;
            throw new DiskBufferError("io", "read", path, "cannot open segment", { cause: err });
          }
          open = { id: s.id, path, file, reader: new SegmentReader(file, off, s.size) };
        } else {
          open.reader.reset(off, s.size);
        }
        const batch: StoredRecord[] = [];
        while (batch.length < READ_BATCH) {
          let it;
          try {
            it = open.reader.nextSync();
          } catch (err) {
            throw new DiskBufferError("io", "read", open.path, "read failed", { cause: err });
          }
          if (it === undefined) break;
          if (it.kind === "record") {
            const r = it.record;
            batch.push({
              auditID: r.auditID,
              stage: r.stage,
              levelChanged: r.levelChanged,
              bytes: r.bytes,
              appendedAt: r.appendedAt,
              segment: s.id,
              offset: it.offset,
              end: it.end,
              ordinal: ordinal++,
            });
            off = it.end;
            continue;
          }
          // Read synchronously with the size: both change only together, in a commit.
          const damage: SkippedDamage = {
            segment: s.id,
            offset: it.offset,
            bytes: s.size - it.offset,
            reason: it.reason,
            records: Math.max(0, s.endOrdinal - ordinal),
          };
          if (delivery.skip(damage, ordinal, s.endOrdinal, open.path)) {
            opts.onDamage?.(damage);
          }
          off = s.size;
          ordinal = Math.max(ordinal, s.endOrdinal);
          break;
        }
        if (batch.length > 0) yield batch;
      }
    } finally {
      if (follower) hotTail.unfollow(follower);
      closeFile();
    }
  }
}
