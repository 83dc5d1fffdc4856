/**
 * What a disk lane stores and reads back: a pipeline event as a buffer record (framed from its
 * original bytes, or from its `EventList` item without a copy), and a stored record as an
 * event again, carrying where it is for `markDelivered`.
 *
 * @module
 */
import type { Envelope } from "../core/envelope.ts";
import { jsonBytes, topLevelFromItem } from "../core/encode.ts";
import { CompactEnvelope } from "../stages/compact.ts";
import type { BufferRecord } from "./frame.ts";
import type { StoredRecord } from "./records.ts";

/**
 * An event read back from the buffer, with where it is, for `markDelivered`.
 *
 * @example
 * ```ts
 * for await (const batch of buf.readBatches({ follow: true })) {
 *   const chunk = { items: batch.map((r) => new DiskEnvelope(r)), ack: NO_ACK };
 * }
 * ```
 */
export class DiskEnvelope extends CompactEnvelope {
  constructor(readonly record: StoredRecord) {
    // A record handed over from memory may still be the item it came as: the sink writes
    // that without a copy of its own.
    super(record.item !== undefined ? { item: record.item } : { raw: record.bytes });
  }
}

/** An event as a record; one that came as an `EventList` item is framed from the item. */
class EnvelopeRecord implements BufferRecord {
  readonly auditID: string;
  readonly stage: string;
  readonly levelChanged: boolean;
  readonly item: Uint8Array | undefined;
  /** Not the envelope: its parsed event need not live until delivery. */
  #bytes: Uint8Array | undefined;

  constructor(env: Envelope) {
    this.auditID = String(env.event.auditID ?? "");
    this.stage = String(env.event.stage ?? "");
    // An envelope without original bytes was made by a stage (policy level, annotation,
    // truncation).
    this.levelChanged = env.raw === undefined && env.item === undefined;
    // `{}` has no members to follow the type prefix: such an item goes as its document.
    this.item = env.raw === undefined && env.item !== undefined && env.item.length > 2
      ? env.item
      : undefined;
    if (this.item === undefined) this.#bytes = jsonBytes(env);
  }

  /** For an item, made only when asked for (see `item`). */
  get bytes(): Uint8Array {
    return this.#bytes ??= topLevelFromItem(this.item!);
  }
}

/**
 * The record an event is stored as in a disk buffer.
 *
 * @example
 * ```ts
 * await buf.append(chunk.items.map(toRecord));
 * ```
 */
export function toRecord(env: Envelope): BufferRecord {
  return new EnvelopeRecord(env);
}
