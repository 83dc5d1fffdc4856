/**
 * kube-apiserver's truncating backend, per event (spec sec. 7 steps 1-3): an event larger
 * than `maxEventSize` loses its request and response objects and gains the
 * `audit.k8s.io/truncated` annotation; one still too large, or too large below level
 * `Request`, is dropped and counted as `too_large`. Splitting batches by `maxBatchSize`
 * (step 4) is {@linkcode splitBatches} in `split.ts`.
 *
 * @module
 */
import type { Chunk, Envelope } from "../core/envelope.ts";
import type { Event } from "../core/event.ts";
import { levelRank } from "../core/event.ts";
import { jsonSize } from "../core/encode.ts";
import type { Logger } from "../core/log.ts";
import { RateLimitedLog } from "../core/log.ts";
import type { SinkStats } from "../core/stats.ts";
import { ledgered } from "../core/ledger.ts";
import type { TruncateConfig } from "../config/schema.ts";

/** The annotation kube-apiserver sets on an event whose objects it removed. */
export const TRUNCATED_ANNOTATION = "audit.k8s.io/truncated";

/** Value of {@linkcode TRUNCATED_ANNOTATION}. */
export const TRUNCATED_VALUE = "true";

/** Rank of level `Request`: below it an event has no objects to remove. */
const REQUEST_RANK = levelRank("Request");

/**
 * Measures what a sink writes for one envelope, in bytes. Throwing means the event cannot be
 * encoded, and it is dropped as kube-apiserver drops an event it cannot encode.
 */
export type SizeOf = (env: Envelope) => number;

/** What {@linkcode truncateEvents} needs besides its config. */
export interface TruncateDeps {
  /** Where drops are counted (`too_large`). */
  stats: SinkStats;
  /** Where drops are reported, at most once a second. */
  log: Logger;
  /**
   * Size of an envelope as its sink writes it; defaults to {@linkcode jsonSize} (top-level
   * JSON plus newline). Legacy-format sinks pass the length of their line.
   */
  size?: SizeOf;
}

/**
 * Compares strings by UTF-8 bytes, the order Go's `encoding/json` writes map keys in.
 * UTF-8 byte order is code-point order; JS `<` compares UTF-16 code units, which puts
 * characters above U+FFFF before U+E000..U+FFFF, so it cannot be used as is.
 */
function compareBytewise(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/**
 * The event kube-apiserver would write after truncating: a shallow copy without
 * `requestObject` and `responseObject`, with the annotations copied, the truncation
 * annotation added and the keys sorted as Go writes a map. The received event is not
 * touched: envelopes are shared between sink branches.
 *
 * @example
 * ```ts
 * const small = truncatedEvent(envelope.event);
 * // small.annotations["audit.k8s.io/truncated"] === "true"; small.requestObject === undefined
 * ```
 */
export function truncatedEvent(event: Event): Event {
  const { requestObject: _req, responseObject: _resp, ...rest } = event;
  const merged: Record<string, string> = { ...(event.annotations ?? {}) };
  merged[TRUNCATED_ANNOTATION] = TRUNCATED_VALUE;
  const annotations: Record<string, string> = {};
  for (const key of Object.keys(merged).sort(compareBytewise)) annotations[key] = merged[key];
  // Spreading keeps `annotations` where the event had it; a new key lands last, where Go's
  // struct order puts it.
  return { ...rest, annotations };
}

/**
 * Applies steps 1-3 of kube-apiserver's truncate to one envelope: the envelope itself when it
 * fits, a new envelope (new event, no `raw`) when stripping the objects makes it fit, or
 * `null` when it must be dropped.
 *
 * @example
 * ```ts
 * const out = truncateEnvelope(env, 102400, jsonSize);
 * if (out === null) stats.drop("too_large", 1);
 * ```
 */
export function truncateEnvelope(
  env: Envelope,
  maxEventSize: number,
  size: SizeOf = jsonSize,
): Envelope | null {
  try {
    if (size(env) <= maxEventSize) return env;
    if (levelRank(env.event.level) < REQUEST_RANK) return null;
    const smaller: Envelope = { event: truncatedEvent(env.event) };
    return size(smaller) <= maxEventSize ? smaller : null;
  } catch {
    return null;
  }
}

/**
 * The per-event truncate stage. Chunks whose events all fit pass as they are; a chunk that
 * changes is forwarded as a new chunk with the same ack. A chunk whose events are all dropped
 * is not forwarded and its ack hold is released, since this branch is done with it.
 * Synchronous per chunk, so backpressure passes straight through. When `cfg.enabled` is false
 * the stage passes chunks through untouched.
 *
 * @example
 * ```ts
 * const out = chunks
 *   .pipeThrough(truncateEvents(sink.truncate, { stats, log }))
 *   .pipeThrough(batcher(sink.batch, { clock }));
 * ```
 */
export function truncateEvents(
  cfg: TruncateConfig,
  deps: TruncateDeps,
): TransformStream<Chunk, Chunk> {
  if (!cfg.enabled) return new TransformStream<Chunk, Chunk>();
  const size = deps.size ?? jsonSize;
  const drops = new RateLimitedLog(
    deps.log,
    "events dropped: event is too large even after truncating",
  );
  return new TransformStream<Chunk, Chunk>(ledgered(deps.stats.ledger, {
    transform(chunk: Chunk, controller: TransformStreamDefaultController<Chunk>) {
      let out: Envelope[] | null = null; // allocated only once something changes
      let dropped = 0;
      let lastAuditID = "";
      const items = chunk.items;
      for (let i = 0; i < items.length; i++) {
        const env = items[i];
        const kept = truncateEnvelope(env, cfg.maxEventSize, size);
        if (kept !== env && out === null) out = items.slice(0, i);
        if (kept === null) {
          dropped++;
          lastAuditID = env.event.auditID;
        } else if (out !== null) out.push(kept);
      }
      if (dropped > 0) {
        deps.stats.drop("too_large", dropped);
        drops.add(dropped, { maxEventSize: cfg.maxEventSize, auditID: lastAuditID });
      }
      if (out === null) {
        controller.enqueue(chunk);
      } else if (out.length === 0) {
        chunk.ack.release();
      } else {
        controller.enqueue({ items: out, ack: chunk.ack });
      }
    },
    flush() {
      // Report drops counted since the last line now, and clear its timer, at shutdown.
      drops.flush();
    },
    cancel() {
      drops.flush();
    },
  }));
}
