/**
 * Compaction before a `batch`-mode buffer: an event waiting there is kept as its JSON bytes
 * only, and parsed again only if something asks for it. A parsed event takes two to three
 * times its JSON size in memory; a full buffer of 10,000 events should cost about what they
 * would take on disk.
 *
 * The bytes of a request body or a read are views into it. Where a chunk keeps most of such
 * a buffer, the views stay and the buffer is the storage: copying would hold the events
 * twice until the collector frees the original. Where it keeps little (a policy dropped
 * most), the kept bytes move into one exactly sized buffer per chunk, so a few events do not
 * pin a whole body and 64 events cost one allocation rather than 64. (A webhook body comes as
 * pieces of 64 events, each copied into its own buffer: see `body_parts.ts`.)
 *
 * @module
 */
import type { Chunk, Envelope } from "../core/envelope.ts";
import type { Event } from "../core/event.ts";
import { jsonBytes } from "../core/encode.ts";
import { asEvent } from "../core/event.ts";
import { type Ledger, ledgered, NO_LEDGER } from "../core/ledger.ts";

const decoder = new TextDecoder();

/**
 * The share of a buffer a chunk must keep for its views to stay. At 3/4, views cost at most
 * 4/3 of the bytes they keep, under the 1.5x the buffer is allowed.
 *
 * @example
 * ```ts
 * const keepsViews = keptBytes >= KEEP_VIEWS_AT * buffer.byteLength;
 * ```
 */
export const KEEP_VIEWS_AT = 0.75;

/**
 * An envelope holding only bytes; its event is parsed on first use.
 *
 * @example
 * ```ts
 * const env = new CompactEnvelope({ item: bytes });
 * env.event.auditID; // parses once
 * ```
 */
export class CompactEnvelope implements Envelope {
  raw?: Uint8Array;
  item?: Uint8Array;
  #event: Event | undefined;

  constructor(bytes: { raw?: Uint8Array; item?: Uint8Array }) {
    this.raw = bytes.raw;
    this.item = bytes.item;
  }

  /** The event, parsed from the bytes the first time it is asked for. */
  get event(): Event {
    return this.#event ??= asEvent(JSON.parse(decoder.decode(this.item ?? this.raw!)));
  }
}

/** The bytes an envelope is kept as: its `EventList` item if it has one, else its document. */
function keptBytes(env: Envelope): { bytes: Uint8Array; item: boolean } {
  if (env.item !== undefined && env.raw === undefined) return { bytes: env.item, item: true };
  return { bytes: jsonBytes(env), item: false };
}

const isView = (b: Uint8Array) => b.byteLength !== b.buffer.byteLength;

/**
 * The envelopes of one chunk, holding only their bytes: views into a buffer the chunk keeps
 * at least {@linkcode KEEP_VIEWS_AT} of, and copies (into one new buffer for the chunk) of
 * the rest.
 *
 * @example
 * ```ts
 * const small = compactEnvelopes(chunk.items);
 * ```
 */
export function compactEnvelopes(items: readonly Envelope[]): Envelope[] {
  const kept = items.map((env) => env instanceof CompactEnvelope ? null : keptBytes(env));
  const share = new Map<ArrayBufferLike, number>();
  for (const k of kept) {
    if (k && isView(k.bytes)) {
      share.set(k.bytes.buffer, (share.get(k.bytes.buffer) ?? 0) + k.bytes.byteLength);
    }
  }
  const copied = (b: Uint8Array) =>
    isView(b) && share.get(b.buffer)! < KEEP_VIEWS_AT * b.buffer.byteLength;
  let size = 0;
  for (const k of kept) if (k && copied(k.bytes)) size += k.bytes.byteLength;
  const slab = size > 0 ? new Uint8Array(size) : null;
  let offset = 0;
  return items.map((env, i) => {
    const k = kept[i];
    if (k === null) return env;
    let bytes = k.bytes;
    if (slab !== null && copied(bytes)) {
      slab.set(bytes, offset);
      bytes = slab.subarray(offset, offset += bytes.byteLength);
    }
    return new CompactEnvelope(k.item ? { item: bytes } : { raw: bytes });
  });
}

/**
 * One envelope, compacted on its own (see {@linkcode compactEnvelopes}).
 *
 * @example
 * ```ts
 * const small = compactEnvelope(env);
 * ```
 */
export function compactEnvelope(env: Envelope): Envelope {
  return compactEnvelopes([env])[0];
}

/**
 * A TransformStream compacting every chunk.
 *
 * @example
 * ```ts
 * chunks.pipeThrough(compactStage()).pipeThrough(buffer);
 * ```
 */
export function compactStage(ledger: Ledger = NO_LEDGER): TransformStream<Chunk, Chunk> {
  return new TransformStream(ledgered(ledger, {
    transform(chunk: Chunk, controller: TransformStreamDefaultController<Chunk>) {
      controller.enqueue({ items: compactEnvelopes(chunk.items), ack: chunk.ack });
    },
  }));
}
