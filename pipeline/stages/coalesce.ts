/**
 * Group commit for blocking branches: chunks that arrive while the sink is writing are
 * written together in its next call, so a sink that fsyncs does one fsync for all the
 * requests that waited on it, not one each in turn.
 *
 * @module
 */
import type { Batch, Chunk } from "../core/envelope.ts";
import { type Ledger, NO_LEDGER } from "../core/ledger.ts";
import { toError } from "../core/errors.ts";

/**
 * Turns chunks into batches, merging whatever queued while the previous batch was being
 * written. Holds at most `maxEvents` events (a chunk is taken whole while there is room),
 * then makes writers wait, so backpressure still reaches the sources.
 *
 * @example
 * ```ts
 * chunks.pipeThrough(coalesceStage(10_000)).pipeTo(sinkWriter(sink, deps));
 * ```
 */
export function coalesceStage(
  maxEvents: number,
  ledger: Ledger = NO_LEDGER,
): ReadableWritablePair<Batch, Chunk> {
  const pending: Chunk[] = [];
  let pendingEvents = 0;
  let closed = false;
  let wakeReader: (() => void) | null = null;
  let wakeWriter: (() => void) | null = null;
  const wake = (which: "reader" | "writer") => {
    const f = which === "reader" ? wakeReader : wakeWriter;
    if (which === "reader") wakeReader = null;
    else wakeWriter = null;
    f?.();
  };

  const readable = new ReadableStream<Batch>({
    async pull(controller) {
      while (pending.length === 0 && !closed) {
        await new Promise<void>((r) => wakeReader = r);
      }
      if (pending.length === 0) {
        controller.close();
        return;
      }
      const chunks = pending.splice(0);
      pendingEvents = 0;
      wake("writer");
      const batch = {
        items: chunks.length === 1 ? chunks[0].items : chunks.flatMap((c) => c.items),
        acks: chunks.map((c) => c.ack),
      };
      for (const c of chunks) ledger.take(c);
      ledger.put(batch);
      controller.enqueue(batch);
    },
    cancel(reason) {
      const err = toError(reason);
      for (const c of pending.splice(0)) c.ack.fail(err);
      closed = true;
      wake("writer");
    },
  }, { highWaterMark: 0 });

  const writable = new WritableStream<Chunk>({
    async write(chunk) {
      while (pendingEvents > 0 && pendingEvents + chunk.items.length > maxEvents && !closed) {
        await new Promise<void>((r) => wakeWriter = r);
      }
      pending.push(chunk);
      pendingEvents += chunk.items.length;
      wake("reader");
    },
    close() {
      closed = true;
      wake("reader");
    },
    abort(reason) {
      closed = true;
      const err = toError(reason);
      for (const c of pending.splice(0)) c.ack.fail(err);
      wake("reader");
    },
  });
  return { readable, writable };
}
