/**
 * What travels through the pipeline: envelopes (one event and its original bytes), chunks
 * (the envelopes of one request or read, with their ack) and batches (what a sink writes).
 *
 * @module
 */
import type { Ack } from "./ack.ts";
import type { Event } from "./event.ts";

/**
 * One event on its way through the pipeline.
 *
 * Envelopes are shared between sink branches: a stage that changes an event makes a new
 * envelope with a new event object; it never changes the `event` of one it received. The new
 * envelope has no `raw`/`item`, except from the policy stage, which cuts a lowered event's
 * bytes from the original ones (`splice.ts`) so that they match the new event exactly. The other fields are caches that any branch may fill, because every branch would
 * compute the same value: `raw` (the serialization, by `jsonBytes`) and the policy results
 * (by the policy stage, under the policy's id).
 */
export interface Envelope {
  /** The parsed event. */
  readonly event: Event;
  /**
   * The event's top-level `Event` JSON document, without the line end: the bytes it arrived
   * as (a line of an audit.log), or its serialization, cached by `jsonBytes` the first time
   * a sink needs it. Set only while it matches `event` exactly.
   */
  raw?: Uint8Array;
  /**
   * The bytes the event arrived as inside an `EventList` (`{"level":...}`, no type), when it
   * came that way on one line. Sinks cut their output from these: a webhook sink sends them
   * as they are, a log sink writes the type prefix and then them. Set only while they match
   * `event`.
   */
  item?: Uint8Array;
  /**
   * The first policy result computed for this event and the id of its policy, so sinks
   * sharing a policy evaluate it once. A slot costs no allocation per event; pipelines with
   * more than one policy keep the others in `policyResults`.
   */
  policyId?: number;
  policyResult?: unknown;
  /** Results of further policies, by compiled-policy id. */
  policyResults?: Map<number, unknown>;
}

/** The envelopes of one request, read or message, and the ack their source waits on. */
export interface Chunk {
  readonly items: Envelope[];
  readonly ack: Ack;
}

/**
 * What a sink writes in one call. `acks` are released (or failed) once the sink has written
 * `items`; a chunk split over several batches holds its ack once per batch.
 */
export interface Batch {
  readonly items: Envelope[];
  readonly acks: Ack[];
}
