/**
 * A disk probe for benchmarks that depend on fsync: a worker thread writes 16 KiB to its own
 * file and `fdatasync`s it every 10 ms, synchronously, so what it measures is the disk (and
 * the file system's journal), not an event loop's wait. Shown beside a daemon's numbers, it
 * tells a slow commit of the daemon's own from a disk that stalled for everyone (the
 * benchmarks run on a shared virtual disk).
 *
 * @example
 * ```ts
 * const probe = new FsyncProbe(`${dir}/probe.dat`);
 * probe.take(); // discard what came before
 * // ... the phase ...
 * const ms = await probe.take(); // fsync latencies since, ms
 * probe.stop();
 * ```
 *
 * @module
 */

/** Writes and fsyncs in a worker; `take` returns the latencies since the last `take`. */
export class FsyncProbe {
  readonly #worker: Worker;
  #waiting: ((ms: number[]) => void)[] = [];

  constructor(path: string, intervalMs = 10) {
    this.#worker = new Worker(new URL("./fsync_probe_worker.ts", import.meta.url), {
      type: "module",
    });
    this.#worker.onmessage = (e: MessageEvent<number[]>) => this.#waiting.shift()?.(e.data);
    this.#worker.postMessage({ path, intervalMs });
  }

  /** The fsync latencies (ms) measured since the last call. */
  take(): Promise<number[]> {
    const { promise, resolve } = Promise.withResolvers<number[]>();
    this.#waiting.push(resolve);
    this.#worker.postMessage("take");
    return promise;
  }

  /** Ends the worker (its file stays, in the caller's folder). */
  stop(): void {
    this.#worker.terminate();
  }
}
