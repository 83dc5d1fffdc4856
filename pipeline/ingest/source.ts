/**
 * The interface every ingest source implements, and the adapter for sources that are a
 * ReadableStream of chunks (tail, stdin, NATS).
 *
 * @module
 */
import type { Chunk } from "../core/envelope.ts";

/** Hands a chunk to the sinks; resolves when blocking sinks have taken it. */
export type Dispatch = (chunk: Chunk) => Promise<void>;

/**
 * A producer of chunks.
 *
 * @example
 * ```ts
 * const ended = source.run((chunk) => fanout.dispatch(chunk));
 * await source.stop();
 * await ended;
 * ```
 */
export interface Source {
  readonly name: string;
  /** Starts intake; resolves when the source ended by itself (EOF) or after `stop()`. */
  run(dispatch: Dispatch): Promise<void>;
  /** Stops intake; afterwards no chunk is dispatched. */
  stop(): Promise<void>;
  /** Sources that bind a socket: resolves once bound, so a failure to bind is told apart. */
  readonly listening?: Promise<void>;
}

/**
 * A source the pipeline runs: it also says what it is, in one line, for the startup log,
 * `--check` and reload logs (`apiserver: webhook(http://127.0.0.1:8080/audit) → annotate(...)`).
 *
 * @example
 * ```ts
 * log.info("source configured", { source: source.name, describe: source.describe() });
 * ```
 */
export interface DescribedSource extends Source {
  describe(): string;
}

/**
 * Gives `source` a `describe()` returning `description` (made from its config, so `--check`
 * can print the same line without building it).
 *
 * @example
 * ```ts
 * const src = describedSource(webhookSource(cfg, deps), describeSource(resolved));
 * src.describe(); // "webhook: webhook(http://127.0.0.1:8080/audit, 1024 in flight)"
 * ```
 */
export function describedSource<S extends Source>(
  source: S,
  description: string,
): S & DescribedSource {
  return Object.assign(source, { describe: () => description });
}

/** A stream of chunks that may say when it has fully shut down (tail: checkpoint written). */
export type ChunkStream = ReadableStream<Chunk> & { readonly finished?: Promise<void> };

/**
 * A source over a ReadableStream of chunks, pulled only as fast as the sinks take them.
 * `stop()` aborts the signal given to `open`: the stream closes itself after what it has
 * read, every chunk it produced is still dispatched (so its ack settles and the tail can
 * checkpoint it), and `stop()` resolves once the stream's `finished` has.
 *
 * @example
 * ```ts
 * const src = streamSource("stdin", (signal) => stdinSource(cfg, { ...deps, signal }));
 * ```
 */
export function streamSource(
  name: string,
  open: (signal: AbortSignal) => ChunkStream,
): Source {
  const ctl = new AbortController();
  let running: Promise<void> | null = null;
  let finished: Promise<void> | undefined;
  return {
    name,
    run(dispatch) {
      const stream = open(ctl.signal);
      finished = stream.finished;
      running = stream.pipeTo(new WritableStream({ write: (chunk) => dispatch(chunk) }));
      return running;
    },
    async stop() {
      ctl.abort(new Error("source stopped"));
      await running?.catch(() => {});
      await finished?.catch(() => {});
    },
  };
}
