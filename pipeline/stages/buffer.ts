/**
 * The bounded buffer of a `batch`-mode branch: a queue of up to `size` events between the
 * stages that take events in and the batcher that sends them out.
 *
 * The queue is a ReadableStream's own queue, fed by a WritableStream that waits while it is
 * full. (Piping into a TransformStream whose readable side is not being read moves one chunk
 * at a time under Deno 2.9, so an identity TransformStream cannot serve as a buffer.)
 *
 * @module
 */
import type { Chunk } from "../core/envelope.ts";

/**
 * A buffer of up to `events` events (by chunk sizes; a chunk that arrives while there is
 * room is taken whole, so it may end up to one chunk over).
 *
 * @example
 * ```ts
 * const buffer = bufferStage(10_000);
 * chunks.pipeThrough(buffer).pipeThrough(batcher(cfg, deps));
 * ```
 */
export function bufferStage(events: number): ReadableWritablePair<Chunk, Chunk> {
  let controller!: ReadableStreamDefaultController<Chunk>;
  let wake: (() => void) | null = null;
  const readable = new ReadableStream<Chunk>({
    start(c) {
      controller = c;
    },
    pull() {
      wake?.();
      wake = null;
    },
    cancel() {
      wake?.();
      wake = null;
    },
  }, { highWaterMark: events, size: (c) => c.items.length });
  const writable = new WritableStream<Chunk>({
    async write(chunk) {
      controller.enqueue(chunk);
      while ((controller.desiredSize ?? 1) <= 0) await new Promise<void>((r) => wake = r);
    },
    close() {
      controller.close();
    },
    abort(reason) {
      controller.error(reason);
    },
  });
  return { readable, writable };
}
