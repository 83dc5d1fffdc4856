/**
 * The end of a sink branch: hands batches to a {@linkcode Sink}, counts what was written or
 * dropped, and settles the acks the batch carries according to the branch's mode.
 *
 * @module
 */
import { type Sink, SinkError, type WriteResult } from "../../backends/sink.ts";
import type { Clock } from "../core/clock.ts";
import type { Batch } from "../core/envelope.ts";
import { type Logger, RateLimitedLog } from "../core/log.ts";
import type { Mode } from "../config/schema.ts";
import type { SinkStats } from "../core/stats.ts";
import { toError } from "../core/errors.ts";

/** What the sink writer needs besides the sink. */
export interface SinkWriterDeps {
  readonly mode: Mode;
  /** Concurrent writes; batches may complete out of order when above 1. */
  readonly maxInFlight?: number;
  readonly stats: SinkStats;
  readonly log: Logger;
  readonly clock: Clock;
  /** Writes wait for this first: a reloaded sink starts after its predecessor closed. */
  readonly after?: Promise<unknown>;
}

/**
 * Counts the events a sink reported leaving out of a batch (`WriteResult.dropped`) as drops by
 * their reason, and logs them rate-limited; `count` returns how many there were.
 *
 * @example
 * ```ts
 * const dropped = droppedCounter(stats, log);
 * stats.wrote(batch.items.length - dropped.count(await sink.write(batch.items)), seconds);
 * dropped.flush(); // at close
 * ```
 */
export function droppedCounter(
  stats: SinkStats,
  log: Logger,
): { count(result: WriteResult | void): number; flush(): void } {
  const partial = new RateLimitedLog(log, "sink left events out of a batch", 1000, "error");
  return {
    count(result) {
      if (!result || result.dropped.length === 0) return 0;
      for (const d of result.dropped) {
        stats.drop(d.reason, 1);
        partial.add(1, { reason: d.reason, index: d.index, error: d.error });
      }
      return result.dropped.length;
    },
    flush: () => partial.flush(),
  };
}

/**
 * A WritableStream of batches into `sink`. A failed batch is counted as dropped; in
 * `blocking-strict` mode it also fails the acks, so sources tell their senders (503) or
 * retry (tail). Events a sink reports it left out of a batch it wrote (a
 * {@linkcode WriteResult}, e.g. one event over the log's size limit) are counted as dropped
 * by their reason and logged, the rest as written, and the acks are released in every mode:
 * such a drop is final, and a replay would only write the others again. The stream closes
 * the sink when it closes.
 *
 * @example
 * ```ts
 * await batches.pipeTo(sinkWriter(sink, { mode: "blocking", stats, log, clock }));
 * ```
 */
export function sinkWriter(sink: Sink, deps: SinkWriterDeps): WritableStream<Batch> {
  const { stats, clock, mode } = deps;
  const maxInFlight = Math.max(1, deps.maxInFlight ?? 1);
  const failures = new RateLimitedLog(deps.log, "sink write failed; events dropped", 1000, "error");
  const inFlight = new Set<Promise<void>>();
  const left = droppedCounter(stats, deps.log);

  const writeOne = async (batch: Batch): Promise<void> => {
    const start = clock.now();
    try {
      const dropped = left.count(await sink.write(batch.items));
      stats.wrote(batch.items.length - dropped, (clock.now() - start) / 1000);
      for (const ack of batch.acks) ack.release();
      stats.ledger.take(batch);
    } catch (err) {
      const reason = err instanceof SinkError ? err.reason : "write_error";
      stats.failed(err, clock.now());
      stats.drop(reason, batch.items.length);
      failures.add(batch.items.length, { reason, error: err });
      for (const ack of batch.acks) {
        if (mode === "blocking-strict") {
          ack.fail(toError(err));
        } else ack.release();
      }
      stats.ledger.take(batch);
    }
  };

  return new WritableStream<Batch>({
    async start() {
      await deps.after?.catch(() => {});
    },
    async write(batch) {
      if (maxInFlight === 1) return writeOne(batch);
      while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
      const p = writeOne(batch).finally(() => inFlight.delete(p));
      inFlight.add(p);
    },
    async close() {
      await Promise.all(inFlight);
      failures.flush();
      left.flush();
      await sink.close();
    },
    async abort() {
      await Promise.allSettled(inFlight);
      failures.flush();
      left.flush();
      await sink.close();
    },
  });
}
