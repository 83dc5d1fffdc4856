/**
 * What readers of a disk buffer get: records with where they are, and the damage they skipped.
 *
 * @module
 */
import type { DecodedRecord } from "./frame.ts";
import type { Damage } from "./scan.ts";

/**
 * A record read from the buffer, with where it is (for `markDelivered`).
 *
 * @example
 * ```ts
 * for await (const r of buf.read()) console.log(r.auditID, r.segment, r.offset, r.ordinal);
 * ```
 */
export interface StoredRecord extends DecodedRecord {
  readonly segment: number;
  readonly offset: number;
  readonly end: number;
  /** Its place among undelivered records since open; orders marks. */
  readonly ordinal: number;
}

/**
 * Damage a reader found after open: the records from `offset` to the segment's end (as it
 * was then) were skipped; `records` of them were counted as undelivered.
 *
 * @example
 * ```ts
 * buf.read({ onDamage: (d: SkippedDamage) => console.warn(d.segment, d.offset, d.records) });
 * ```
 */
export interface SkippedDamage extends Damage {
  readonly records: number;
}
