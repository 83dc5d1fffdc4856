/**
 * The hot tail: records a commit hands from memory to following readers that have caught up,
 * once they are fsynced (their bytes are on disk too). Reading them back would cost a read, a
 * CRC check and a copy per record. A reader that falls behind is detached and reads from disk
 * again until it catches up.
 *
 * @module
 */
import type { BufferRecord, SizedRecord } from "./frame.ts";
import type { StoredRecord } from "./records.ts";

/** Records in one batch of a reader at most. */
export const READ_BATCH = 512;
/**
 * A follower is handed a commit when it took the last one (its queue is empty), or when the
 * queue stays within one batch: a reader whose consumer keeps up takes each handoff before the
 * next commit. One that does not (a sink down or slow) is detached and reads from disk, so
 * the backlog stays on disk and what is read ahead is bounded as before.
 */
const HANDOFF_BYTES = 8 * 1024 * 1024;

/** The records of one commit written to one segment, in order from `startSize`. */
export interface CommittedRun {
  readonly seg: { readonly id: number };
  readonly startSize: number;
  readonly frames: readonly { readonly sized: SizedRecord; readonly appendedAt: number }[];
}

/** A record handed to a follower: the appended one, with where it is on disk. */
class HandedRecord implements StoredRecord {
  constructor(
    readonly source: BufferRecord,
    readonly appendedAt: number,
    readonly segment: number,
    readonly offset: number,
    readonly end: number,
    readonly ordinal: number,
  ) {}
  get auditID(): string {
    return this.source.auditID;
  }
  get stage(): string {
    return this.source.stage;
  }
  get levelChanged(): boolean {
    return this.source.levelChanged;
  }
  get bytes(): Uint8Array {
    return this.source.bytes;
  }
  get item(): Uint8Array | undefined {
    return this.source.item;
  }
}

/**
 * A following reader. Once it has read everything committed (`seq` is the commit count),
 * each later commit hands it its records.
 *
 * @example
 * ```ts
 * const f = tail.follow();
 * const batch = f.take(); // handed records, or undefined when none wait
 * tail.unfollow(f);
 * ```
 */
export class Follower {
  /** The commit count it has everything up to; -1 while it reads from disk. */
  seq = -1;
  queue: StoredRecord[] = [];
  bytes = 0;

  /** The next batch of handed records (up to {@linkcode READ_BATCH}), if any wait. */
  take(): StoredRecord[] | undefined {
    const all = this.queue;
    if (all.length === 0) return undefined;
    const batch = all.length <= READ_BATCH ? all : all.slice(0, READ_BATCH);
    this.queue = all.length <= READ_BATCH ? [] : all.slice(READ_BATCH);
    this.bytes -= batch[batch.length - 1].end - batch[0].offset;
    if (this.queue.length === 0) this.bytes = 0;
    return batch;
  }
}

/**
 * Counts commits and hands each one's records to the followers that had read everything
 * before it.
 *
 * @example
 * ```ts
 * const tail = new HotTail();
 * const f = tail.follow();
 * f.seq = tail.seq; // it has read everything committed
 * tail.committed([{ seg: { id: 1 }, startSize: 0, frames }], 0); // f.queue holds them
 * ```
 */
export class HotTail {
  /** Commits made since open; followers at this count are handed the next one. */
  #seq = 0;
  readonly #followers = new Set<Follower>();

  /** Commits made since open. */
  get seq(): number {
    return this.#seq;
  }

  /** A new follower, reading from disk until it catches up. */
  follow(): Follower {
    const f = new Follower();
    this.#followers.add(f);
    return f;
  }

  /** Stops handing records to `f`. */
  unfollow(f: Follower): void {
    this.#followers.delete(f);
  }

  /** A commit became visible: its records (ordinals from `firstOrdinal`) go to caught-up followers. */
  committed(runs: readonly CommittedRun[], firstOrdinal: number): void {
    this.#seq++;
    if (this.#followers.size > 0) this.#handOver(runs, firstOrdinal);
  }

  #handOver(runs: readonly CommittedRun[], firstOrdinal: number): void {
    const waiting = [...this.#followers].filter((f) => f.seq === this.#seq - 1);
    if (waiting.length === 0) return;
    const records: StoredRecord[] = [];
    let ordinal = firstOrdinal;
    let bytes = 0;
    for (const t of runs) {
      let offset = t.startSize;
      for (const { sized, appendedAt } of t.frames) {
        const end = offset + sized.size;
        records.push(new HandedRecord(sized.record, appendedAt, t.seg.id, offset, end, ordinal++));
        offset = end;
        bytes += sized.size;
      }
    }
    for (const f of waiting) {
      const keepingUp = f.queue.length === 0 || f.queue.length + records.length <= READ_BATCH;
      if (!keepingUp || f.bytes + bytes > HANDOFF_BYTES) {
        f.seq = -1; // behind: it reads these from disk once its queue is taken
        continue;
      }
      for (const r of records) f.queue.push(r);
      f.bytes += bytes;
      f.seq = this.#seq;
    }
  }
}
