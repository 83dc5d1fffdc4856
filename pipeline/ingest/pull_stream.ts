/**
 * The shape the tail and NATS sources share: a pull-based stream of chunks (the source reads
 * only when downstream asks, one chunk per pull), stopped by the daemon's signal or a
 * cancel, and a `finished` promise that resolves once the source has settled what it handed
 * out and let go of its files or connection.
 *
 * @module
 */
import type { Chunk } from "../core/envelope.ts";
import { toError } from "../core/errors.ts";

/**
 * A stream of chunks and when its source has fully stopped.
 *
 * @example
 * ```ts
 * ac.abort();
 * await stream.finished; // acks settled, checkpoint written or connection drained
 * ```
 */
export interface PullStream extends ReadableStream<Chunk> {
  /** Resolves once the source stopped and {@linkcode PullSteps.finish} ended. */
  readonly finished: Promise<void>;
}

/**
 * What a pull-based source does; {@linkcode pullStream} runs it.
 *
 * @example
 * ```ts
 * const steps: PullSteps = {
 *   signal: deps.signal,
 *   stop,
 *   next: async () => (await readSome()) ?? null,
 *   finish: async () => { await drainAcks(); await close(); },
 * };
 * ```
 */
export interface PullSteps {
  /** The daemon's signal: aborting it stops reading, closes the stream, then finishes. */
  readonly signal: AbortSignal;
  /** Aborted when stopping begins, so that `next` ends its waits at once. */
  readonly stop: AbortController;
  /**
   * One step of reading, called again and again while not stopping until it gives a chunk:
   * the chunk to hand on, or null to be called again. Waiting (for data, for room, after
   * an error) happens inside, and ends when `stop` aborts. It must not throw.
   */
  next(): Promise<Chunk | null>;
  /** After the last step ended and the stream closed: settle acks, persist, release. */
  finish(): Promise<void>;
}

/**
 * A ReadableStream (high water mark 0: nothing is read ahead) over `steps`. A chunk the
 * stream can no longer take (cancelled meanwhile) has its ack failed, so that it never
 * counts as delivered. Stopping runs once: abort `stop`, wait for the step in progress,
 * close the stream (on abort; a cancel closed it already), `finish`, resolve `finished`.
 *
 * @example
 * ```ts
 * const stream = pullStream({ signal, stop: new AbortController(), next, finish });
 * for await (const chunk of stream) dispatch(chunk);
 * await stream.finished;
 * ```
 */
export function pullStream(steps: PullSteps): PullStream {
  const { signal, stop } = steps;
  const finished = Promise.withResolvers<void>();
  let controller!: ReadableStreamDefaultController<Chunk>;
  let pulling: Promise<void> | null = null;
  let finishing: Promise<void> | null = null;

  const pullOnce = async (c: ReadableStreamDefaultController<Chunk>): Promise<void> => {
    while (!stop.signal.aborted) {
      const chunk = await steps.next();
      if (chunk === null) continue;
      try {
        c.enqueue(chunk);
      } catch (err) {
        // Cancelled meanwhile: nobody will settle it, and it must not count as delivered.
        chunk.ack.fail(toError(err));
      }
      return;
    }
  };

  const shutdown = (closeStream: boolean): Promise<void> =>
    finishing ??= (async () => {
      stop.abort();
      signal.removeEventListener("abort", onAbort);
      if (pulling) await pulling.catch(() => {});
      if (closeStream) {
        try {
          controller.close();
        } catch { /* already closed or cancelled */ }
      }
      try {
        await steps.finish();
      } finally {
        finished.resolve();
      }
    })();
  const onAbort = () => {
    void shutdown(true);
  };

  const rs = new ReadableStream<Chunk>({
    start: (c) => {
      controller = c;
    },
    pull: async (c) => {
      const run = pullOnce(c);
      pulling = run;
      try {
        await run;
      } finally {
        pulling = null;
      }
    },
    cancel: () => shutdown(false),
  }, { highWaterMark: 0 });
  const stream: PullStream = Object.assign(rs, { finished: finished.promise });
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return stream;
}
