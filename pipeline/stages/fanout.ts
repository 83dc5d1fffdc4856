/**
 * The fan-out: hands each chunk from the sources to every sink branch. It waits for room
 * only in blocking branches; a `batch` branch takes what fits in its buffer and the rest is
 * dropped and counted, so a stalled batch sink never slows anything else. No `tee()`: its queues are unbounded.
 *
 * @module
 */
import { NO_ACK } from "../core/ack.ts";
import type { Branch } from "../branch.ts";
import type { Chunk } from "../core/envelope.ts";
import { type Logger, RateLimitedLog } from "../core/log.ts";

/**
 * Dispatches chunks to branches.
 *
 * @example
 * ```ts
 * const fanout = new FanOut(branches, log);
 * await fanout.dispatch(chunk);     // returns once every blocking branch took the chunk
 * const outcome = await chunk.ack.settled;
 * ```
 */
export class FanOut {
  readonly #blocking: Branch[];
  readonly #drops: Map<Branch, RateLimitedLog>;
  #closed = false;
  #inFlight = 0;
  #idle: (() => void) | null = null;

  constructor(readonly branches: readonly Branch[], log: Logger) {
    this.#blocking = branches.filter((b) => b.blocking);
    this.#drops = new Map(branches.map((b) => [
      b,
      new RateLimitedLog(log.with({ sink: b.spec.name }), "buffer full; events dropped"),
    ]));
  }

  /**
   * Hands `chunk` to every branch. Resolves once every blocking branch has taken it; the
   * chunk's ack settles when they have written it. Never call again for the same chunk.
   */
  async dispatch(chunk: Chunk): Promise<void> {
    if (this.#closed) throw new Error("pipeline is shutting down");
    this.#inFlight++;
    try {
      await this.#dispatch(chunk);
    } finally {
      if (--this.#inFlight === 0) this.#idle?.();
    }
  }

  async #dispatch(chunk: Chunk): Promise<void> {
    const n = chunk.items.length;
    if (n === 0) {
      chunk.ack.release();
      return;
    }
    for (const b of this.#blocking) {
      if ((b.writer.desiredSize ?? 1) <= 0) await b.writer.ready;
    }
    for (const b of this.branches) {
      const room = b.blocking ? 0 : b.room;
      b.deps.stats.received += n;
      if (b.blocking) {
        chunk.ack.hold();
        b.deps.stats.ledger.put(chunk);
        b.writer.write(chunk).catch(() => chunk.ack.fail(new Error(`sink ${b.spec.name} closed`)));
        continue;
      }
      // As kube-apiserver's buffer: what does not fit, the newest events, is dropped.
      const take = Math.min(room, n);
      if (take > 0) {
        const part = { items: take === n ? chunk.items : chunk.items.slice(0, take), ack: NO_ACK };
        b.deps.stats.ledger.put(part);
        b.writer.write(part).catch(() => {});
      }
      if (take < n) {
        b.deps.stats.drop("buffer_full", n - take);
        this.#drops.get(b)!.add(n - take, { sink: b.spec.name, buffered: b.deps.stats.buffered });
      }
    }
    chunk.ack.release();
  }

  /**
   * Stops taking chunks, waits for dispatches under way, then closes every branch's input
   * (except those in `keep`, which a newer fan-out took over) so they drain; resolves when
   * their sinks have closed.
   */
  async close(keep: ReadonlySet<Branch> = new Set()): Promise<void> {
    this.#closed = true;
    if (this.#inFlight > 0) await new Promise<void>((r) => this.#idle = r);
    const closing = this.branches.filter((b) => !keep.has(b));
    await Promise.allSettled(closing.map((b) => b.writer.close()));
    await Promise.allSettled(closing.map((b) => b.done));
    for (const d of this.#drops.values()) d.flush();
  }
}
