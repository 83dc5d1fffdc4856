/**
 * The segment files a disk buffer holds, in id order, as the parts of the store (commits,
 * readers, delivery) share them: commits add segments, delivery removes the ones passed,
 * readers look them up.
 *
 * @module
 */

/** One segment file as the store knows it. */
export interface Segment {
  readonly id: number;
  /** Bytes of whole, committed records. */
  size: number;
  /** No more appends go to it. */
  sealed: boolean;
  /** The ordinal after its last record (ordinals count undelivered records since open). */
  endOrdinal: number;
}

/**
 * The store's segments, oldest first. Ids may have gaps (a failed append burns one), so
 * lookups take the first id at or above the one wanted.
 *
 * @example
 * ```ts
 * const list = new SegmentList([{ id: 1, size: 0, sealed: false, endOrdinal: 0 }]);
 * list.find((s) => s.id >= 1); // the segment with id 1
 * list.removeSealedBelow(2); // [] (segment 1 is not sealed)
 * ```
 */
export class SegmentList {
  #list: Segment[];

  constructor(initial: Segment[]) {
    this.#list = initial;
  }

  /** How many segments there are. */
  get length(): number {
    return this.#list.length;
  }

  /** The first segment that matches, oldest first. */
  find(pred: (s: Segment) => boolean): Segment | undefined {
    return this.#list.find(pred);
  }

  /** Whether `s` is still held (not deleted since it was looked up). */
  includes(s: Segment): boolean {
    return this.#list.includes(s);
  }

  /** Adds a segment made by a commit (its id is above every other). */
  push(s: Segment): void {
    this.#list.push(s);
  }

  /** Takes out the sealed segments below `id` and returns them (their files are not touched). */
  removeSealedBelow(id: number): Segment[] {
    const gone = this.#list.filter((s) => s.id < id && s.sealed);
    if (gone.length > 0) this.#list = this.#list.filter((s) => !gone.includes(s));
    return gone;
  }
}
