/**
 * A full disk buffer in `block` mode, seen from a source: a source that can tell its client
 * to come back (the webhook source, with 429) hands its chunks on with a
 * {@linkcode RefusingAck}; the disk lane fails such an ack with a {@linkcode BufferFullError}
 * instead of making it wait for room. Other sources (the tail) keep waiting: they stop
 * reading until space is freed.
 *
 * @module
 */
import { Ack } from "../core/ack.ts";

/**
 * An ack whose source would rather be refused than wait for room in a full disk buffer.
 *
 * @example
 * ```ts
 * const ack = new RefusingAck();
 * await dispatch({ items, ack });
 * ack.release();
 * if ((await ack.settled) instanceof BufferFullError) answer429();
 * ```
 */
export class RefusingAck extends Ack {}

/**
 * Why a {@linkcode RefusingAck} failed: a sink's disk buffer had no room for the events
 * (`maxBytes` reached, `whenFull: block`). Nothing of the refused events was acknowledged;
 * the client should send them again later.
 *
 * @example
 * ```ts
 * ack.fail(new BufferFullError("/var/lib/auditpipe/remote", 1 << 30));
 * ```
 */
export class BufferFullError extends Error {
  override readonly name = "BufferFullError";

  constructor(readonly path: string, readonly maxBytes: number) {
    super(`disk buffer ${path} full (maxBytes ${maxBytes}); send again later`);
  }
}
