/**
 * Step 4 of kube-apiserver's truncating backend (spec sec. 7): a batch whose events add up to
 * more than `maxBatchSize` bytes goes out as several batches, each within the limit except
 * an event that alone exceeds it, which goes by itself.
 *
 * @module
 */
import type { Batch, Envelope } from "../core/envelope.ts";
import { jsonSize } from "../core/encode.ts";
import type { TruncateConfig } from "../config/schema.ts";
import type { SizeOf } from "./truncate.ts";
import { type Ledger, ledgered, NO_LEDGER } from "../core/ledger.ts";

/** What {@linkcode splitBatches} needs besides its config. */
export interface SplitDeps {
  /** Size of an envelope as its sink writes it; defaults to {@linkcode jsonSize}. */
  size?: SizeOf;
  /** Where the branch counts what it holds. */
  ledger?: Ledger;
}

/**
 * Groups `items` in order as kube-apiserver's truncate does: when the pending group is not
 * empty and adding the next event would pass `maxBatchSize`, the pending group is closed
 * first. Returns one group per outgoing batch (none for no items).
 *
 * @example
 * ```ts
 * splitItems([a, b, c], 1000, () => 400); // [[a, b], [c]]
 * ```
 */
export function splitItems(
  items: readonly Envelope[],
  maxBatchSize: number,
  size: SizeOf = jsonSize,
): Envelope[][] {
  const groups: Envelope[][] = [];
  let pending: Envelope[] = [];
  let pendingBytes = 0;
  for (const env of items) {
    let n: number;
    try {
      n = size(env);
    } catch {
      // Measured after truncation already, so this is rare; an event we cannot measure is
      // treated as too big to share a batch rather than lost here.
      n = Infinity;
    }
    if (pending.length > 0 && pendingBytes + n > maxBatchSize) {
      groups.push(pending);
      pending = [];
      pendingBytes = 0;
    }
    pending.push(env);
    pendingBytes += n;
  }
  if (pending.length > 0) groups.push(pending);
  return groups;
}

/**
 * The batch-splitting stage. A batch that fits passes as it is. A batch split in k parts
 * takes k-1 more holds on each of its acks before any part is emitted, so every part carries
 * one hold of each and the source is not answered until the last part is written. An empty
 * batch is not forwarded and its acks are released. When `cfg.enabled` is false the stage
 * passes batches through untouched.
 *
 * The k parts of one batch are enqueued together: they hold no more memory than the batch
 * did, and the next batch is not taken until the reader has drained them.
 *
 * @example
 * ```ts
 * const batches = chunks
 *   .pipeThrough(batcher(sink.batch, { clock }))
 *   .pipeThrough(splitBatches(sink.truncate, {}))
 *   .pipeThrough(throttle(sink.batch.throttle, { clock, stats }));
 * ```
 */
export function splitBatches(
  cfg: TruncateConfig,
  deps: SplitDeps = {},
): TransformStream<Batch, Batch> {
  if (!cfg.enabled) return new TransformStream<Batch, Batch>();
  const size = deps.size ?? jsonSize;
  return new TransformStream<Batch, Batch>(ledgered(deps.ledger ?? NO_LEDGER, {
    transform(batch: Batch, controller: TransformStreamDefaultController<Batch>) {
      if (batch.items.length === 0) {
        for (const ack of batch.acks) ack.release();
        return;
      }
      const groups = splitItems(batch.items, cfg.maxBatchSize, size);
      if (groups.length === 1) {
        controller.enqueue(batch);
        return;
      }
      // Hold first: a part written and released before the others exist must not settle
      // the ack.
      for (const ack of batch.acks) ack.hold(groups.length - 1);
      for (const items of groups) controller.enqueue({ items, acks: batch.acks.slice() });
    },
  }));
}
