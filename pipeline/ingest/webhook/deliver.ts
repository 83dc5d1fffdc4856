/**
 * Handing a request's events to the pipeline and answering once the sinks have them.
 *
 * @module
 */
import { createMiddleware } from "hono/factory";
import { DecodeError } from "../../core/decode.ts";
import type { Chunk } from "../../core/envelope.ts";
import type { Logger } from "../../core/log.ts";
import { RateLimitedLog } from "../../core/log.ts";
import type { SourceStats } from "../../core/stats.ts";
import { release } from "../body.ts";
import type { Dispatch } from "../source.ts";
import { BufferFullError, RefusingAck } from "../../diskbuffer/full.ts";
import type { DeadLetters } from "./dead_letters.ts";
import type { WebhookEnv } from "./env.ts";

/**
 * The 503 answer's message when a `blocking-strict` sink failed.
 *
 * @example
 * ```ts
 * return c.json({ error: NOT_DELIVERED }, 503);
 * ```
 */
export const NOT_DELIVERED = "not delivered: a blocking-strict sink failed; see auditpipe's log";

/**
 * The 429 answer's message when a sink's disk buffer is full (`whenFull: block`).
 *
 * @example
 * ```ts
 * return c.json({ error: BUFFER_FULL }, 429);
 * ```
 */
export const BUFFER_FULL = "not stored: a sink's disk buffer is full; send again later";

/** What {@linkcode deliver} needs. */
export interface DeliverDeps {
  readonly source: string;
  readonly log: Logger;
  readonly stats: SourceStats;
  /** The pipeline's entry, set once the source runs. */
  readonly dispatch: () => Dispatch;
  /** Adds the source's annotations, if any. */
  readonly annotate: (chunk: Chunk) => Chunk;
  readonly deadLetters: DeadLetters;
}

/**
 * The end of the chain: hands `c.var.parts` on piece by piece (each piece before the next is
 * parsed), counting and dead-lettering invalid items, then waits for one ack over all of
 * them. Answers 200 `{"accepted":N,"rejected":M}`; 503 with `Retry-After: 1` when a
 * `blocking-strict` sink failed (the sink's writer logs its error; the client is not told it);
 * 429 with `Retry-After: 1` (counted as `buffer_full`) when a sink's disk buffer was full in
 * `block` mode (the ack is a {@linkcode RefusingAck}, so the disk lane refuses instead of
 * making the request wait; events it did append may arrive twice once the client retries); 400
 * with the counts when the list turned out not to be JSON part-way (what came before was
 * handed on).
 *
 * @example
 * ```ts
 * app.post("/audit", decodeEventList(stats), deliver({ source, log, stats, dispatch, annotate, deadLetters }));
 * ```
 */
export function deliver(deps: DeliverDeps) {
  const { stats } = deps;
  const invalid = new RateLimitedLog(deps.log, "rejected invalid events");
  const handler = createMiddleware<WebhookEnv>(async function deliver(c) {
    const parts = c.get("parts");
    const ack = new RefusingAck();
    let accepted = 0;
    let rejected = 0;
    let broken: DecodeError | null = null;
    try {
      for (let part; (part = parts.next()) !== null;) {
        if (part.rejected.length) {
          rejected += part.rejected.length;
          stats.reject("invalid_event", part.rejected.length);
          invalid.add(part.rejected.length, {
            source: deps.source,
            first: { index: part.rejected[0].index, reason: part.rejected[0].reason },
          });
          deps.deadLetters.write(part.rejected);
        }
        if (part.envelopes.length === 0) continue;
        accepted += part.envelopes.length;
        stats.events += part.envelopes.length;
        ack.hold();
        await deps.dispatch()(deps.annotate({ items: part.envelopes, ack }));
      }
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      broken = err;
      stats.reject("invalid_body");
    }
    // Every piece was copied out of the body: its megabytes go now, not at the next collection.
    if (parts.copied && !broken) release(c.get("body"));
    ack.release();
    const failure = await ack.settled;
    if (failure instanceof BufferFullError) {
      stats.reject("buffer_full");
      c.header("Retry-After", "1");
      return c.json({ error: BUFFER_FULL }, 429);
    }
    if (failure) {
      // The sink's writer logged its error; the client learns only that it should retry.
      c.header("Retry-After", "1");
      return c.json({ error: NOT_DELIVERED }, 503);
    }
    if (broken) return c.json({ error: broken.message, accepted, rejected }, 400);
    return c.json({ accepted, rejected }, 200);
  });
  return Object.assign(handler, {
    /** Writes the pending rate-limited log lines now. */
    flush() {
      invalid.flush();
    },
  });
}
