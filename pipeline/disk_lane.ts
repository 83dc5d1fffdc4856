/**
 * The disk buffer of a sink branch: chunks go in through {@linkcode DiskLane.appender}
 * (their acks settle once the events are fsynced, not once the sink has them), records come
 * out through {@linkcode DiskLane.records} into the branch's batcher, and
 * {@linkcode DiskLane.deliverer} writes batches to the sink, retrying a failed batch until it
 * is written (the events stay on disk meanwhile), then marks it delivered.
 *
 * Accounting: events on disk and not yet marked delivered are held by the branch (a ledger
 * probe). Events found on disk at open came from an earlier run: they count as received
 * then, so `received = written + dropped + held` holds across restarts. A branch that closes
 * with events still on disk hands them over: they stay held until the next branch on the
 * same sink opens the buffer.
 *
 * Duplicates after a crash are bounded by the batches written but not yet marked: at most
 * one batch (the deliverer writes one at a time), plus what was marked since the cursor was
 * last written (it is written at most every {@linkcode CURSOR_EVERY_MS}, and at least every
 * {@linkcode CURSOR_MAX_RECORDS} records), plus whatever a failed cursor write lost.
 *
 * @module
 */
import type { Sink } from "../backends/sink.ts";
import type { Batch, Chunk } from "./core/envelope.ts";
import type { Clock } from "./core/clock.ts";
import type { SinkStats } from "./core/stats.ts";
import { type Logger, RateLimitedLog } from "./core/log.ts";
import { type Ack, NO_ACK } from "./core/ack.ts";
import { abortableSleep, Backoff } from "./core/retry.ts";
import { toError } from "./core/errors.ts";
import { type BufferRecord, DiskBuffer, type StoredRecord } from "./diskbuffer/store.ts";
import { DiskEnvelope, toRecord } from "./diskbuffer/envelopes.ts";
import { DiskBufferError } from "./diskbuffer/errors.ts";
import { BufferFullError, RefusingAck } from "./diskbuffer/full.ts";
import type { DiskBufferStats } from "./diskbuffer/stats.ts";
import { droppedCounter } from "./stages/sink_writer.ts";

export { DiskEnvelope } from "./diskbuffer/envelopes.ts";

/** How a branch's disk buffer is set up (a sink's `buffer` key, type `disk`). */
export interface DiskLaneOptions {
  readonly path: string;
  readonly maxBytes: number;
  readonly whenFull: "block" | "dropNewest";
  readonly fsync: boolean;
}

/** What a disk lane needs from its branch. */
export interface DiskLaneDeps {
  readonly stats: SinkStats;
  readonly log: Logger;
  readonly clock: Clock;
  /** The buffer is opened only after this settles: a replaced branch closes it first. */
  readonly after?: Promise<unknown>;
  /** Aborted at the shutdown deadline: retries and draining end, events stay on disk. */
  readonly signal?: AbortSignal;
  /** First delay before a failed batch is written again, ms (default 1000). */
  readonly retryDelayMs?: number;
}

/** Appends started and not yet resolved at most: enough for one fsync to serve many chunks. */
const MAX_APPENDS = 64;
/** Records read ahead of the batcher. */
const READ_AHEAD = 1024;
/** How often a closing lane looks whether everything was delivered, ms. */
const DRAIN_POLL_MS = 50;
/**
 * The delivery cursor is written at most this often, ms: each write is a file, two fsyncs and
 * a rename (at 18 writes a second, 3-4% of a busy daemon's time). A crash repeats what was
 * marked since the last write.
 *
 * @example
 * ```ts
 * const window = batchSize + CURSOR_MAX_RECORDS; // duplicates per crash, at most
 * console.log(CURSOR_EVERY_MS); // 250
 * ```
 */
export const CURSOR_EVERY_MS = 250;
/**
 * The most records marked delivered and not yet in the written cursor: a mark beyond that
 * waits for its cursor write, so the duplicate window stays bounded however fast the sink is.
 *
 * @example
 * ```ts
 * const window = batchSize + CURSOR_MAX_RECORDS; // duplicates per crash, at most
 * ```
 */
export const CURSOR_MAX_RECORDS = 10_000;

/** Each sink's disk buffer counters, for the metrics endpoint. */
const bufferStats = new WeakMap<SinkStats, () => DiskBufferStats | undefined>();

/**
 * The counters of the disk buffer of the sink counted by `stats`, or undefined when it has
 * none (or it is not open yet).
 *
 * @example
 * ```ts
 * const disk = diskBufferStatsOf(stats.sink("remote"));
 * if (disk) console.log(disk.bytes, disk.events);
 * ```
 */
export function diskBufferStatsOf(stats: SinkStats): DiskBufferStats | undefined {
  return bufferStats.get(stats)?.();
}

/** Events handed over by a closed lane, per sink, until the next lane opens the buffer. */
const handovers = new WeakMap<SinkStats, { count: number; unprobe: () => void }>();

/**
 * A sink branch's disk buffer and the stages around it.
 *
 * @example
 * ```ts
 * const lane = new DiskLane({ path: "/var/lib/auditpipe/remote", maxBytes: 1 << 30, whenFull: "block", fsync: true }, deps);
 * chunks.pipeTo(lane.appender());
 * await lane.records().pipeThrough(batcher(cfg, { clock })).pipeTo(lane.deliverer(sink));
 * ```
 */
export class DiskLane {
  readonly #opts: DiskLaneOptions;
  readonly #deps: DiskLaneDeps;
  readonly #stop = new AbortController();
  #store: Promise<DiskBuffer> | undefined;
  #opened: DiskBuffer | undefined;
  #lastOpenAttempt = -Infinity;
  #unprobe: (() => void) | undefined;
  #failing = false;
  #appendsDone: Promise<void> = Promise.resolve();
  /** Events taken from their chunks and not yet on disk (or dropped): held by the branch. */
  #appending = 0;
  #closed = false;
  readonly #unprobeAppending: () => void;
  /** Settled by the first open: once it holds the folder's lock, or with why it failed. */
  readonly #firstLock = Promise.withResolvers<void>();
  #opens = 0;
  #lockClaimed = false;
  readonly #fullLog: RateLimitedLog;
  readonly #refusedLog: RateLimitedLog;
  readonly #errorLog: RateLimitedLog;
  readonly #sendLog: RateLimitedLog;

  constructor(opts: DiskLaneOptions, deps: DiskLaneDeps) {
    this.#opts = opts;
    this.#deps = deps;
    this.#fullLog = new RateLimitedLog(deps.log, "disk buffer full; events dropped");
    this.#refusedLog = new RateLimitedLog(
      deps.log,
      "disk buffer full; requests refused (the client sends them again)",
    );
    this.#errorLog = new RateLimitedLog(
      deps.log,
      "disk buffer append failed; events refused",
      1000,
      "error",
    );
    this.#sendLog = new RateLimitedLog(
      deps.log,
      "sink write failed; events stay in the disk buffer and are sent again",
      1000,
      "error",
    );
    this.#unprobeAppending = deps.stats.ledger.probe(() => this.#appending);
    deps.signal?.addEventListener("abort", () => this.#stop.abort(), { once: true });
    this.#firstLock.promise.catch(() => {});
    this.#store = this.#open();
    this.#store.catch(() => {});
  }

  /**
   * Resolves once the first open holds the buffer folder's lock (before it reads the
   * backlog); rejects with why that open failed, e.g. a `BufferInUseError` (another daemon
   * holds the folder). The caller reports that failure: the lane does not log it.
   */
  locked(): Promise<void> {
    this.#lockClaimed = true;
    return this.#firstLock.promise;
  }

  /** The buffer's counters, once it is open. */
  get stats(): DiskBufferStats | undefined {
    return this.#opened?.stats;
  }

  async #open(): Promise<DiskBuffer> {
    this.#lastOpenAttempt = performance.now();
    const first = this.#opens++ === 0;
    let locked = false;
    await this.#deps.after?.catch(() => {});
    try {
      const store = await DiskBuffer.open({
        path: this.#opts.path,
        maxBytes: this.#opts.maxBytes,
        fsync: this.#opts.fsync,
        cursorEveryMs: CURSOR_EVERY_MS,
        cursorMaxRecords: CURSOR_MAX_RECORDS,
        logger: this.#deps.log,
        onLocked: () => {
          locked = true;
          this.#firstLock.resolve();
        },
      });
      const { stats } = this.#deps;
      const prior = handovers.get(stats);
      handovers.delete(stats);
      prior?.unprobe();
      const recovered = store.recovery.events;
      stats.received += Math.max(0, recovered - (prior?.count ?? 0));
      if (recovered > 0 && !prior) {
        this.#deps.log.info("disk buffer holds events from an earlier run; delivering them", {
          path: this.#opts.path,
          events: recovered,
        });
      }
      this.#unprobe = stats.ledger.probe(() => store.stats.events);
      this.#opened = store;
      // Until now a predecessor's buffer (closed, its counts final) stood for this sink.
      bufferStats.set(stats, () => store.stats);
      return store;
    } catch (err) {
      this.#firstLock.reject(err);
      if (!(first && !locked && this.#lockClaimed)) {
        this.#deps.log.error("disk buffer cannot be opened", {
          path: this.#opts.path,
          error: err,
        });
      }
      throw err;
    }
  }

  /** The open buffer; a failed open is tried again at most once a second. */
  #get(): Promise<DiskBuffer> {
    if (this.#opened) return Promise.resolve(this.#opened);
    if (performance.now() - this.#lastOpenAttempt >= 1000) {
      this.#store = this.#open();
      this.#store.catch(() => {});
    }
    return this.#store!;
  }

  /**
   * Where the branch's chunks go: each one's events are appended, and its ack settles when
   * they are fsynced. Appends run concurrently (up to a limit) so one fsync serves many.
   */
  appender(): WritableStream<Chunk> {
    const inFlight = new Set<Promise<void>>();
    return new WritableStream<Chunk>({
      write: async (chunk) => {
        while (inFlight.size >= MAX_APPENDS) await Promise.race(inFlight);
        const p = this.#append(chunk).finally(() => inFlight.delete(p));
        inFlight.add(p);
      },
      close: async () => {
        this.#appendsDone = Promise.all(inFlight).then(() => {});
        await this.#appendsDone;
        this.#fullLog.flush();
        this.#refusedLog.flush();
        this.#errorLog.flush();
      },
      abort: async () => {
        await Promise.allSettled(inFlight);
      },
    });
  }

  /** Groups of records no larger than a quarter of `maxBytes`, so each fits on its own. */
  #groups(records: BufferRecord[]): BufferRecord[][] {
    const limit = this.#opts.maxBytes / 4;
    const groups: BufferRecord[][] = [];
    let cur: BufferRecord[] = [];
    let size = 0;
    for (const r of records) {
      const n = (r.item ?? r.bytes).length + r.auditID.length + r.stage.length + 80;
      if (cur.length && size + n > limit) {
        groups.push(cur);
        cur = [];
        size = 0;
      }
      cur.push(r);
      size += n;
    }
    if (cur.length) groups.push(cur);
    return groups;
  }

  #append(chunk: Chunk): Promise<void> {
    const { stats } = this.#deps;
    const { ack } = chunk;
    const n = chunk.items.length;
    let groups: BufferRecord[][];
    try {
      groups = this.#groups(chunk.items.map(toRecord));
    } catch (err) {
      this.#failed(ack, n, err);
      return Promise.resolve();
    } finally {
      // The records keep what is written, not the envelopes: parsed events (several times
      // their bytes) kept through the fsync outlived young collections and cost the daemon
      // more in garbage collection than the whole disk write. Counted as appending meanwhile.
      stats.ledger.take(chunk);
    }
    this.#appending += n;
    return this.#appendRecords(groups, ack);
  }

  async #appendRecords(groups: BufferRecord[][], ack: Ack): Promise<void> {
    const refuse = ack instanceof RefusingAck;
    const outcomes = await Promise.all(groups.map(async (g) => {
      try {
        return await this.#appendGroup(g, refuse);
      } catch (err) {
        this.#deps.stats.drop("write_error", g.length);
        this.#errorLog.add(g.length, { path: this.#opts.path, error: err });
        return toError(err);
      } finally {
        this.#appending -= g.length;
        if (this.#appending === 0 && this.#closed) this.#unprobeAppending();
      }
    }));
    const failure = outcomes.find((o) => o instanceof Error);
    if (failure) ack.fail(failure);
    else ack.release();
  }

  /** Drops `n` events that could not be appended at all, and fails their ack. */
  #failed(ack: Ack, n: number, err: unknown): void {
    this.#deps.stats.drop("write_error", n);
    this.#errorLog.add(n, { path: this.#opts.path, error: err });
    ack.fail(toError(err));
  }

  /**
   * Appends one group; resolves with the error that refused it (counted), else null. When
   * the buffer is full in `block` mode, waits for room, unless `refuse` (the source answers
   * its client "come back later"): then the group is refused with a {@linkcode BufferFullError}.
   */
  async #appendGroup(records: BufferRecord[], refuse: boolean): Promise<Error | null> {
    const { stats } = this.#deps;
    for (;;) {
      let store: DiskBuffer;
      try {
        store = await this.#get();
        const r = await store.append(records);
        if (r === "appended") return null;
      } catch (err) {
        const reason = err instanceof DiskBufferError && err.code === "too_large"
          ? "too_large"
          : "write_error";
        stats.drop(reason, records.length);
        this.#errorLog.add(records.length, { path: this.#opts.path, reason, error: err });
        return toError(err);
      }
      if (this.#opts.whenFull === "dropNewest") {
        stats.drop("buffer_full", records.length);
        this.#fullLog.add(records.length, {
          path: this.#opts.path,
          maxBytes: this.#opts.maxBytes,
          bytes: store.stats.bytes,
        });
        return null;
      }
      if (refuse) {
        // Not acknowledged, so not lost: the client is told to send them again.
        stats.drop("buffer_full", records.length);
        this.#refusedLog.add(records.length, {
          path: this.#opts.path,
          maxBytes: this.#opts.maxBytes,
          bytes: store.stats.bytes,
        });
        return new BufferFullError(this.#opts.path, this.#opts.maxBytes);
      }
      // `block`: the source waits (the fan-out waits on this branch) until space is freed.
      if (this.#deps.signal?.aborted) {
        stats.drop("shutdown", records.length);
        return new Error(`disk buffer ${this.#opts.path} full at shutdown`);
      }
      await Promise.race([store.whenSpace(), this.#aborted()]);
    }
  }

  #aborted(): Promise<void> {
    const s = this.#deps.signal;
    if (!s) return new Promise<void>(() => {});
    if (s.aborted) return Promise.resolve();
    return new Promise<void>((r) => s.addEventListener("abort", () => r(), { once: true }));
  }

  /**
   * Undelivered records, oldest first, following appends; ends when the lane stops (the
   * branch closed and everything was delivered, delivery is failing, or shutdown's deadline).
   */
  records(): ReadableStream<Chunk> {
    let it: AsyncGenerator<StoredRecord[], void, undefined> | undefined;
    const signal = this.#stop.signal;
    return new ReadableStream<Chunk>({
      pull: async (c) => {
        for (;;) {
          if (signal.aborted) {
            c.close();
            return;
          }
          if (!it) {
            try {
              it = (await this.#get()).readBatches({
                follow: true,
                signal,
                // The store logged it with segment and offset; the sink's ledger counts it.
                onDamage: (d) => this.#deps.stats.drop("corrupt", d.records),
              });
            } catch {
              await abortableSleep(this.#deps.clock, 1000, signal);
              continue;
            }
          }
          try {
            // A batch is what one commit handed over, or what one read of the file held.
            const next = await it.next();
            if (next.done) {
              c.close();
              return;
            }
            c.enqueue({ items: next.value.map((r) => new DiskEnvelope(r)), ack: NO_ACK });
            return;
          } catch (err) {
            // Read again from the cursor: records after it may be sent twice, none is lost.
            this.#deps.log.error("disk buffer read failed; reading again from the cursor", {
              path: this.#opts.path,
              error: err,
            });
            it = undefined;
            await abortableSleep(this.#deps.clock, 1000, signal);
          }
        }
      },
    }, { highWaterMark: READ_AHEAD, size: (c) => c.items.length });
  }

  /**
   * Writes batches of records to `sink`. A batch that fails is written again after a
   * backoff until it succeeds (its events stay on disk, held), or until the lane stops;
   * a written batch is marked delivered.
   */
  deliverer(sink: Sink): WritableStream<Batch> {
    const { stats, clock, log } = this.#deps;
    const left = droppedCounter(stats, log);
    const finish = async () => {
      left.flush();
      this.#sendLog.flush();
      await sink.close();
      await this.#close();
    };
    return new WritableStream<Batch>({
      start: async () => {
        await this.#deps.after?.catch(() => {});
      },
      write: async (batch) => {
        const backoff = new Backoff({
          initialBackoff: this.#deps.retryDelayMs ?? 1000,
          maxBackoff: 30_000,
        });
        const last = batch.items.at(-1);
        if (!(last instanceof DiskEnvelope)) return;
        for (;;) {
          const start = clock.now();
          try {
            const dropped = left.count(await sink.write(batch.items));
            const marked = this.#opened!.markDelivered(last.record);
            stats.wrote(batch.items.length - dropped, (clock.now() - start) / 1000);
            this.#failing = false;
            await marked.catch((err) =>
              log.error("disk buffer cursor not saved; these events may be sent again", {
                path: this.#opts.path,
                error: err,
              })
            );
            return;
          } catch (err) {
            this.#failing = true;
            stats.failed(err, clock.now());
            this.#sendLog.add(batch.items.length, { error: err });
            if (this.#stop.signal.aborted) return;
            stats.retries++;
            if (!await abortableSleep(clock, backoff.next(), this.#stop.signal)) return;
          }
        }
      },
      close: finish,
      abort: finish,
    });
  }

  /**
   * Ends the lane once the branch's input has closed: waits for appends, then keeps
   * delivering until the buffer is empty, delivery fails, or shutdown's deadline; events
   * left on disk are delivered by the next run (or the branch that replaces this one).
   */
  async drain(): Promise<void> {
    await this.#appendsDone;
    const signal = this.#stop.signal;
    while (!signal.aborted && !this.#failing && (this.#opened?.stats.events ?? 0) > 0) {
      await abortableSleep(this.#deps.clock, DRAIN_POLL_MS, signal);
    }
    this.#stop.abort();
  }

  async #close(): Promise<void> {
    this.#stop.abort();
    this.#closed = true;
    // Appends still running unprobe it when they end.
    if (this.#appending === 0) this.#unprobeAppending();
    const store = this.#opened;
    if (!store) return;
    await store.close();
    this.#unprobe?.();
    const left = store.stats.events;
    if (left > 0) {
      const { stats } = this.#deps;
      handovers.set(stats, { count: left, unprobe: stats.ledger.probe(() => left) });
      this.#deps.log.info("disk buffer closed with events not yet delivered", {
        path: this.#opts.path,
        events: left,
      });
    }
  }
}
