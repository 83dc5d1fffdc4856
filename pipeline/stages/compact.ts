/**
 * Compaction before a `batch`-mode buffer: an event waiting there is kept as its JSON bytes
 * only, and parsed again only if something asks for it. A parsed event takes two to three
 * times its JSON size in memory; a full buffer of 10,000 events should cost about what they
 * would take on disk.
 *
 * @module
 */
import type { Chunk, Envelope } from "../envelope.ts";
import type { Event } from "../event.ts";
import { jsonBytes } from "../encode.ts";
import { asEvent } from "../event.ts";

const decoder = new TextDecoder();

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

/**
 * A copy of `env` that holds only its bytes, copied out of whatever larger buffer (a
 * request body, a read) they were cut from so that buffer can be freed.
 *
 * @example
 * ```ts
 * const small = compactEnvelope(env);
 * ```
 */
export function compactEnvelope(env: Envelope): Envelope {
  if (env instanceof CompactEnvelope) return env;
  if (env.item !== undefined && env.raw === undefined) {
    return new CompactEnvelope({ item: env.item.slice() });
  }
  const raw = jsonBytes(env);
  // Bytes of a read or a body are views into it; a serialized event owns its buffer.
  return new CompactEnvelope({ raw: raw.byteLength === raw.buffer.byteLength ? raw : raw.slice() });
}

/**
 * A TransformStream compacting every envelope of every chunk.
 *
 * @example
 * ```ts
 * chunks.pipeThrough(compactStage()).pipeThrough(buffer);
 * ```
 */
export function compactStage(): TransformStream<Chunk, Chunk> {
  return new TransformStream({
    transform(chunk, controller) {
      controller.enqueue({ items: chunk.items.map(compactEnvelope), ack: chunk.ack });
    },
  });
}
