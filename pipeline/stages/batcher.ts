/**
 * kube-apiserver's buffered backend batching (spec sec. 8): events leave in batches of at
 * most `maxSize`, a batch closing when it is full or `maxWait` after its first event,
 * whichever comes first. The bounded buffer in front of it is not here: it is
 * `bufferStage` (stages/buffer.ts), bounded by the fan-out counting what the branch holds.
 *
 * @module
 */
import type { Ack } from "../core/ack.ts";
import type { Batch, Chunk, Envelope } from "../core/envelope.ts";
import type { Clock } from "../core/clock.ts";
import type { BatchConfig } from "../config/schema.ts";
import { type Ledger, NO_LEDGER } from "../core/ledger.ts";
import { asError } from "../core/errors.ts";

/** What {@linkcode batcher} needs besides its config. */
export interface BatcherDeps {
  /** Time for the `maxWait` timer; tests pass a `FakeClock`. */
  clock: Clock;
  /** Where the branch counts what it holds: the batcher reports its pending events. */
  ledger?: Ledger;
}

/** The batch settings the batcher reads. */
export type BatcherConfig = Pick<BatchConfig, "maxSize" | "maxWait">;

/**
 * The batching stage.
 *
 * Backpressure: the readable side has no queue of its own (high-water mark 0), so
 * `transform()` runs only while the reader (throttle, sink writer) is waiting for a batch.
 * Events are therefore gathered just in time, as Go's worker collects from its buffer after
 * delivering the previous batch, and a stalled reader stops the batcher after at most one
 * batch: everything else waits in the bounded entry queue upstream, where overflow is
 * counted. Two cases enqueue more than one batch: a chunk holding more than `maxSize` events
 * is cut into all its batches at once (no more memory than the chunk itself), and the timer
 * may close the batch it started while the reader is busy (one batch, at most `maxSize`).
 *
 * Acks: the batch that takes a chunk's first event takes the chunk's hold; each further
 * batch that takes events of the same chunk gets a new hold, taken before the previous batch
 * is emitted. A batch lists each ack once. An empty chunk is released and not forwarded.
 * If the stream is cancelled or aborted, the acks of events still pending here fail, since
 * those events will not be written.
 *
 * On close (shutdown) the pending events leave at once, without waiting for the timer.
 *
 * @example
 * ```ts
 * const batches = chunks.pipeThrough(batcher({ maxSize: 400, maxWait: 30_000 }, { clock }));
 * for await (const batch of batches) await sink.write(batch.items);
 * ```
 */
export function batcher(
  cfg: BatcherConfig,
  deps: BatcherDeps,
): TransformStream<Chunk, Batch> {
  const maxSize = Math.max(1, Math.floor(cfg.maxSize));
  const useTimer = maxSize > 1;
  let pending: Envelope[] = [];
  let pendingAcks: Ack[] = [];
  let timer: AbortController | null = null;
  let out: TransformStreamDefaultController<Batch> | null = null;
  let finished = false;
  const ledger = deps.ledger ?? NO_LEDGER;
  const unprobe = ledger.probe(() => pending.length);

  const stopTimer = () => {
    timer?.abort();
    timer = null;
  };

  /** Emits the pending batch, if any. */
  const emit = () => {
    stopTimer();
    if (pending.length === 0) return;
    const batch: Batch = { items: pending, acks: pendingAcks };
    pending = [];
    pendingAcks = [];
    ledger.put(batch);
    out!.enqueue(batch);
  };

  const startTimer = () => {
    const t = new AbortController();
    timer = t;
    deps.clock.sleep(cfg.maxWait, t.signal).then(() => {
      // A stale timer (its batch already left) was aborted; only ours may emit.
      if (timer !== t || finished) return;
      timer = null;
      try {
        emit();
      } catch {
        // The readable side was cancelled meanwhile; cancel() has failed the acks.
      }
    }, () => {/* aborted: its batch left by size or at close */});
  };

  /** Attaches one hold of `ack` to the pending batch. */
  const attach = (ack: Ack) => {
    // A batch lists each ack once. The same ack can arrive again only if a source sent it
    // with two chunks; then this batch already holds it and the extra hold ends here.
    if (pendingAcks.includes(ack)) ack.release();
    else pendingAcks.push(ack);
  };

  return new TransformStream<Chunk, Batch>({
    start(controller) {
      out = controller;
    },
    transform(chunk) {
      ledger.take(chunk);
      const { items, ack } = chunk;
      if (items.length === 0) {
        ack.release();
        return;
      }
      let needAck = true;
      for (let i = 0; i < items.length; i++) {
        if (pending.length === 0 && useTimer) startTimer();
        pending.push(items[i]);
        if (needAck) {
          attach(ack);
          needAck = false;
        }
        if (pending.length >= maxSize) {
          if (i < items.length - 1) {
            // The next batch carries this chunk too: hold before this one can be written.
            ack.hold(1);
            needAck = true;
          }
          emit();
        }
      }
    },
    flush() {
      finished = true;
      emit();
      unprobe();
    },
    cancel(reason) {
      finished = true;
      stopTimer();
      const err = asError(reason, "batcher cancelled");
      for (const ack of pendingAcks) ack.fail(err);
      pending = [];
      pendingAcks = [];
      unprobe();
    },
  });
}
