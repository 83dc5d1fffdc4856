/**
 * The NATS source: consumes a JetStream stream through a durable pull consumer, so that
 * many nodes publishing with the `nats` sink fan in here, and several auditpipe instances
 * may share the consumer to split the work.
 *
 * Delivery is at least once: a message is acknowledged only when its chunk's ack settles
 * successfully; a failed chunk is nak'ed and JetStream delivers it again after a delay; a
 * chunk still unsettled when the process dies is delivered again after the consumer's
 * ack wait. Messages that are not audit events are terminated, never redelivered.
 *
 * A chunk is what one pull brought: a first fetch that waits (up to
 * {@linkcode NATS_FETCH_EXPIRES}) for one message, and a second one for as many as the
 * consumer then has ready, up to the batch; so events do not wait for a batch to fill.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Consumer, JsMsg } from "@nats-io/jetstream";
import { Ack, type AckOutcome } from "../core/ack.ts";
import type { Chunk, Envelope } from "../core/envelope.ts";
import { DecodeError, decodeLine } from "../core/decode.ts";
import type { SourceConfig } from "../config/schema.ts";
import { type Logger, RateLimitedLog } from "../core/log.ts";
import type { SourceStats } from "../core/stats.ts";
import { closeNats, type NatsSecurity } from "../core/nats_connect.ts";
import { abortableSleep, Backoff, withRetry } from "../core/retry.ts";
import { errorText } from "../core/errors.ts";
import { systemClock } from "../core/clock.ts";
import { type PullStream, pullStream } from "./pull_stream.ts";
import { type OpenConsumer, openConsumer } from "./nats_consumer.ts";
import { ConsumerLag } from "./nats_lag.ts";

export { NATS_ACK_WAIT, NATS_MAX_ACK_PENDING, natsConsumerConfig } from "./nats_consumer.ts";
export { NATS_LAG_INTERVAL } from "./nats_lag.ts";

/**
 * The config of a NATS source.
 *
 * @example
 * ```ts
 * const cfg: NatsSourceConfig = { type: "nats", servers: ["nats://127.0.0.1:4222"],
 *   stream: "AUDIT", subject: "audit.events", consumer: "auditpipe" };
 * ```
 */
export type NatsSourceConfig = Extract<SourceConfig, { type: "nats" }>;

/**
 * What a NATS source needs from the daemon; the optional knobs exist for tests and tuning.
 *
 * @example
 * ```ts
 * const deps: NatsSourceDeps = { name: "fanin", log, stats, signal: ac.signal };
 * ```
 */
export interface NatsSourceDeps {
  readonly name: string;
  readonly log: Logger;
  readonly stats: SourceStats;
  /** Aborting stops fetching, settles what is outstanding (bounded), drains, closes. */
  readonly signal: AbortSignal;
  /** Messages per chunk (one pull), at most; default 256. */
  readonly batch?: number;
  /** Chunks handed downstream whose acks have not settled, at most; default 4. */
  readonly maxUnsettled?: number;
  /** How long closing waits for outstanding acks, ms; default 10000. */
  readonly drainTimeout?: number;
  /** Delay before JetStream redelivers a nak'ed message, ms; default 1000. */
  readonly nakDelay?: number;
  /** How long one fetch waits for messages, ms (at least 1000); default 1000. */
  readonly fetchExpires?: number;
  /** Timeout of each connection attempt, ms. */
  readonly connectTimeout?: number;
  /** TLS and credentials for the connection. */
  readonly security?: NatsSecurity;
  /** How often the consumer's lag is read for `stats.nats`, ms; default 5000. */
  readonly lagInterval?: number;
}

/**
 * The stream a NATS source returns, and when it has fully stopped.
 *
 * @example
 * ```ts
 * ac.abort();
 * await stream.finished; // every message acked or nak'ed, connection drained
 * ```
 */
export type NatsStream = PullStream;

/**
 * How long one fetch waits for messages, ms: the client's minimum, so that idle polling is
 * one request a second and stopping waits at most this long for a fetch to end.
 *
 * @example
 * ```ts
 * natsSource(cfg, { ...deps, fetchExpires: NATS_FETCH_EXPIRES });
 * ```
 */
export const NATS_FETCH_EXPIRES = 1_000;
const DEFAULT_BATCH = 256;
const DEFAULT_MAX_UNSETTLED = 4;
const DEFAULT_DRAIN_TIMEOUT = 10_000;
const DEFAULT_NAK_DELAY = 1_000;
/** A fetch that outlives its expiry by this much is stopped (heartbeats lost while disconnected). */
const FETCH_GRACE = 5_000;
/** Backoff after a failed start or fetch: 0.5 s doubling up to 30 s, with jitter. */
const RETRY_MIN = 500;
const RETRY_MAX = 30_000;
const RETRY_FACTOR = 2;

/**
 * Consumes `cfg.stream` through the durable pull consumer `cfg.consumer`, one chunk of up
 * to `batch` messages per pull. Creates the stream (subjects `[cfg.subject]`) and the consumer when missing and
 * leaves existing ones as they are. Until it is connected it retries with backoff, logging
 * why; afterwards the client reconnects by itself.
 *
 * The stream is pull-based: a fetch runs only when downstream asks, and at most
 * `maxUnsettled` chunks may be awaiting their ack. The source never releases an ack itself;
 * it awaits `chunk.ack.settled` and then acks (success) or naks (failure) every message of
 * the chunk. While a chunk is unsettled its messages are kept from redelivery by progress
 * acks, so a sink retrying for long does not cause duplicates.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * const stream = natsSource(
 *   { type: "nats", servers: ["nats://127.0.0.1:4222"], stream: "AUDIT",
 *     subject: "audit.events", consumer: "auditpipe" },
 *   { name: "fanin", log, stats: new SourceStats("fanin"), signal: ac.signal },
 * );
 * for await (const chunk of stream) dispatch(chunk);
 * await stream.finished;
 * ```
 */
export function natsSource(cfg: NatsSourceConfig, deps: NatsSourceDeps): NatsStream {
  return new NatsReader(cfg, deps).stream;
}

/** What a fetch brought, and the error it ended with, if any. */
interface Fetched {
  readonly msgs: JsMsg[];
  readonly error?: unknown;
}

/** The messages of one chunk, until its ack settles. */
interface Pending {
  readonly msgs: JsMsg[];
  readonly done: Promise<void>;
}

class NatsReader {
  readonly stream: NatsStream;
  readonly #cfg: NatsSourceConfig;
  readonly #log: Logger;
  readonly #stats: SourceStats;
  readonly #batch: number;
  readonly #maxUnsettled: number;
  readonly #drainTimeout: number;
  readonly #nakDelay: number;
  readonly #fetchExpires: number;
  readonly #connectTimeout: number | undefined;
  readonly #security: NatsSecurity | undefined;
  readonly #invalidLog: RateLimitedLog;
  readonly #failedLog: RateLimitedLog;
  readonly #errorLog: RateLimitedLog;
  /** Keeps `stats.nats` (the consumer's lag) up to date, off the data path. */
  readonly #lag: ConsumerLag;
  /** Delays after fetches that failed without bringing anything. */
  readonly #fetchRetry = new Backoff({
    initialBackoff: RETRY_MIN,
    maxBackoff: RETRY_MAX,
    factor: RETRY_FACTOR,
  });

  #nc: NatsConnection | null = null;
  #consumer: Consumer | null = null;
  readonly #setup: Promise<boolean>;
  readonly #pending = new Set<Pending>();
  #roomWaiter: (() => void) | null = null;
  /** The next chunk's fetch, started while downstream works on the last one. */
  #ahead: Promise<Fetched> | null = null;
  /** What that fetch brought, until a chunk takes it (kept from redelivery meanwhile). */
  #aheadMsgs: JsMsg[] = [];
  #progressTimer: ReturnType<typeof setInterval> | undefined;
  readonly #stop = new AbortController();

  constructor(cfg: NatsSourceConfig, deps: NatsSourceDeps) {
    this.#cfg = cfg;
    this.#log = deps.log.with({ source: deps.name, stream: cfg.stream, consumer: cfg.consumer });
    this.#stats = deps.stats;
    this.#batch = Math.max(1, deps.batch ?? DEFAULT_BATCH);
    this.#maxUnsettled = Math.max(1, deps.maxUnsettled ?? DEFAULT_MAX_UNSETTLED);
    this.#drainTimeout = deps.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT;
    this.#nakDelay = deps.nakDelay ?? DEFAULT_NAK_DELAY;
    this.#fetchExpires = Math.max(1_000, deps.fetchExpires ?? NATS_FETCH_EXPIRES);
    this.#connectTimeout = deps.connectTimeout;
    this.#security = deps.security;
    this.#invalidLog = new RateLimitedLog(this.#log, "invalid NATS messages terminated");
    this.#failedLog = new RateLimitedLog(
      this.#log,
      "a sink failed a chunk; its messages are nak'ed for redelivery",
    );
    this.#errorLog = new RateLimitedLog(this.#log, "NATS fetch failed; retrying", 1000, "error");
    this.#lag = new ConsumerLag(deps.stats.nats, this.#log, deps.lagInterval);
    this.#stop.signal.addEventListener("abort", () => this.#roomWaiter?.(), { once: true });
    this.#setup = this.#connect();
    this.stream = pullStream({
      signal: deps.signal,
      stop: this.#stop,
      next: () => this.#next(),
      finish: () => this.#finish(),
    });
  }

  get #stopping(): boolean {
    return this.#stop.signal.aborted;
  }

  // ---- connecting ----

  /** Connects and ensures stream and consumer, retrying until it works or we stop. */
  async #connect(): Promise<boolean> {
    let open: OpenConsumer;
    try {
      open = await withRetry(() =>
        openConsumer({
          servers: this.#cfg.servers,
          stream: this.#cfg.stream,
          subject: this.#cfg.subject,
          consumer: this.#cfg.consumer,
          streamSettings: this.#cfg.streamSettings,
          ackWait: this.#cfg.ackWait,
          maxAckPending: this.#cfg.maxAckPending,
          connectTimeout: this.#connectTimeout,
          security: this.#security,
        }, this.#log), {
        maxAttempts: 0,
        initialBackoff: RETRY_MIN,
        maxBackoff: RETRY_MAX,
        factor: RETRY_FACTOR,
        clock: systemClock,
        signal: this.#stop.signal,
        onRetry: (_attempt, err, delay) =>
          this.#log.error("NATS source cannot start; retrying", {
            servers: this.#cfg.servers,
            retryInMs: Math.round(delay),
            error: errorText(err),
          }),
      });
    } catch {
      return false; // only stopping ends the retrying
    }
    if (this.#stopping) {
      await closeNats(open.nc);
      return false;
    }
    this.#nc = open.nc;
    this.#consumer = open.consumer;
    this.#stats.ready = true;
    this.#startProgress(open.ackWaitMs);
    this.#lag.start(open.consumer);
    this.#log.info("consuming from JetStream", { servers: this.#cfg.servers });
    return true;
  }

  // ---- reading ----

  /** One pull's step: a chunk of what one fetch brought, or null to step again. */
  async #next(): Promise<Chunk | null> {
    if (!await this.#setup) return null;
    await this.#room();
    if (this.#stopping) return null;
    const fetching = this.#ahead ?? this.#fetchSafely();
    this.#ahead = null;
    const { msgs, error } = await fetching;
    this.#aheadMsgs = [];
    if (error !== undefined) {
      this.#errorLog.add(1, { error: errorText(error), received: msgs.length });
    }
    if (this.#stopping) {
      // Never handed downstream: give them back at once for another instance to take.
      for (const m of msgs) safe(() => m.nak());
      return null;
    }
    if (msgs.length === 0) {
      if (error !== undefined) {
        await abortableSleep(systemClock, this.#fetchRetry.next(), this.#stop.signal);
      }
      return null;
    }
    this.#fetchRetry.reset();
    this.#lag.delivered(msgs);
    const chunk = this.#chunk(msgs);
    // Fetching is two round trips to the server; started now, the next chunk's overlaps
    // the work downstream does on this one instead of following it. Only while another
    // chunk would have room, so that no more messages are out than before.
    if (this.#pending.size < this.#maxUnsettled) this.#prefetch();
    return chunk;
  }

  #prefetch(): void {
    this.#ahead = this.#fetchSafely().then((f) => {
      this.#aheadMsgs = f.msgs;
      return f;
    });
  }

  async #fetchSafely(): Promise<Fetched> {
    try {
      return await this.#fetchChunk();
    } catch (err) {
      return { msgs: [], error: err };
    }
  }

  /**
   * The messages of one chunk, in two fetches. A fetch lasts until it has all it asked for
   * or its expiry, so asking for a full batch when fewer are there would hold every event
   * for the whole expiry. So the first fetch waits for one message, whose delivery info says
   * how many more the consumer has right now, and the second asks for just those (up to the
   * batch). Redeliveries are not in that count: after one, the second fetch asks for a full
   * batch, waiting out its expiry if fewer come (only after a failure).
   */
  async #fetchChunk(): Promise<Fetched> {
    const first = await this.#fetch(1);
    if (first.msgs.length === 0 || first.error !== undefined || this.#stopping) return first;
    const info = first.msgs[0].info;
    const more = Math.min(this.#batch - 1, info.deliveryCount > 1 ? Infinity : info.pending);
    if (more <= 0) return first;
    const rest = await this.#fetch(more);
    return { msgs: [...first.msgs, ...rest.msgs], error: rest.error };
  }

  /** One fetch of up to `n` messages; `error` set when it ended badly (messages kept). */
  async #fetch(n: number): Promise<Fetched> {
    const iter = await this.#consumer!.fetch({ max_messages: n, expires: this.#fetchExpires });
    // Heartbeat monitoring pauses while disconnected; never let a fetch hang past its time.
    const guard = setTimeout(() => iter.stop(), this.#fetchExpires + FETCH_GRACE);
    // Stopping ends a fetch at once (one fetched ahead would otherwise hold it to expiry).
    const onStop = () => iter.stop();
    this.#stop.signal.addEventListener("abort", onStop, { once: true });
    if (this.#stopping) iter.stop();
    const msgs: JsMsg[] = [];
    try {
      for await (const m of iter) msgs.push(m);
      return { msgs };
    } catch (err) {
      return { msgs, error: err };
    } finally {
      clearTimeout(guard);
      this.#stop.signal.removeEventListener("abort", onStop);
    }
  }

  /** Decodes `msgs` into one chunk; null when none held an event. */
  #chunk(msgs: JsMsg[]): Chunk | null {
    const items: Envelope[] = [];
    const carried: JsMsg[] = [];
    const lines = payloads(msgs);
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i];
      let envelopes: Envelope[];
      try {
        const decoded = decodeLine(lines[i]);
        envelopes = decoded.envelopes;
        if (decoded.rejected.length > 0) {
          this.#stats.reject("invalid_event", decoded.rejected.length);
          this.#invalidLog.add(decoded.rejected.length, {
            seq: m.seq,
            subject: m.subject,
            reason: `item ${decoded.rejected[0].index}: ${decoded.rejected[0].reason}`,
          });
        }
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        this.#stats.reject("invalid_event");
        this.#invalidLog.add(1, { seq: m.seq, subject: m.subject, reason: err.message });
        // Poison: redelivering it would fail the same way forever. (No reason text: servers
        // before 2.10 do not recognise a +TERM that carries one.)
        safe(() => m.term());
        continue;
      }
      if (envelopes.length === 0) {
        safe(() => m.ack()); // an empty EventList: nothing to wait for
        continue;
      }
      for (const e of envelopes) items.push(e);
      carried.push(m);
    }
    if (items.length === 0) return null;
    const ack = new Ack();
    const pending: Pending = {
      msgs: carried,
      done: ack.settled.then((outcome) => this.#settle(pending, outcome)),
    };
    this.#pending.add(pending);
    this.#stats.events += items.length;
    return { items, ack };
  }

  #settle(p: Pending, outcome: AckOutcome): void {
    if (!this.#pending.delete(p)) return; // already given back at a timed-out close
    if (outcome === null) {
      for (const m of p.msgs) safe(() => m.ack());
    } else {
      this.#failedLog.add(p.msgs.length, { delayMs: this.#nakDelay, error: outcome.message });
      for (const m of p.msgs) safe(() => m.nak(this.#nakDelay));
    }
    this.#roomWaiter?.();
  }

  /** Waits until fewer than `maxUnsettled` chunks await their ack, or we stop. */
  async #room(): Promise<void> {
    while (this.#pending.size >= this.#maxUnsettled && !this.#stopping) {
      await new Promise<void>((r) => this.#roomWaiter = r);
      this.#roomWaiter = null;
    }
  }

  /**
   * Tells JetStream, every third of the ack wait, that unsettled messages are still being
   * worked on, so a sink that retries for long does not get them redelivered meanwhile.
   */
  #startProgress(ackWaitMs: number): void {
    this.#progressTimer = setInterval(() => {
      for (const p of this.#pending) for (const m of p.msgs) safe(() => m.working());
      for (const m of this.#aheadMsgs) safe(() => m.working());
    }, Math.max(100, ackWaitMs / 3));
    Deno.unrefTimer(this.#progressTimer);
  }

  // ---- stopping ----

  /** After the last fetch: settles what is outstanding (bounded), drains, closes. */
  async #finish(): Promise<void> {
    await this.#setup;
    if (this.#ahead !== null) {
      // Fetched ahead but never handed downstream: give them back for another instance.
      for (const m of (await this.#ahead).msgs) safe(() => m.nak());
      this.#ahead = null;
      this.#aheadMsgs = [];
    }
    await this.#drainAcks();
    clearInterval(this.#progressTimer);
    this.#lag.stop();
    this.#invalidLog.flush();
    this.#failedLog.flush();
    this.#errorLog.flush();
    // Draining sends the acks and naks still buffered before the connection closes.
    if (this.#nc !== null) await closeNats(this.#nc);
    this.#stats.ready = false;
  }

  /** Waits (bounded) for outstanding chunks to settle; gives back what is still out. */
  async #drainAcks(): Promise<void> {
    if (this.#pending.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<boolean>((r) =>
      timer = setTimeout(() => r(false), this.#drainTimeout)
    );
    const all = Promise.all([...this.#pending].map((p) => p.done)).then(() => true);
    const settled = await Promise.race([all, timedOut]);
    clearTimeout(timer);
    if (settled) return;
    let messages = 0;
    for (const p of this.#pending) {
      messages += p.msgs.length;
      // Redelivered now rather than after the ack wait; a sink may still write them later,
      // which at-least-once allows.
      for (const m of p.msgs) safe(() => m.nak());
    }
    this.#log.warn("acks still outstanding at close; their messages are nak'ed", {
      chunks: this.#pending.size,
      messages,
    });
    this.#pending.clear();
  }
}

const BLANK = new Set([0x20, 0x09, 0x0d, 0x0a]);

/**
 * The messages' data as lines, without trailing line ends (a publisher may add one), copied
 * into one plain buffer for the chunk. The client hands each as a Node `Buffer` viewing its
 * read buffer, and a Buffer's `slice()` shares memory: kept as they are, held events would pin
 * whole reads of the socket (and go through Buffer's slower methods downstream). One buffer
 * per chunk rather than per message: an ArrayBuffer is costly to create and to collect, and
 * the chunk's events are written and released together.
 */
function payloads(msgs: readonly JsMsg[]): Uint8Array[] {
  const views = msgs.map((m) => {
    const d = m.data;
    let end = d.length;
    while (end > 0 && BLANK.has(d[end - 1])) end--;
    return new Uint8Array(d.buffer, d.byteOffset, end);
  });
  const all = new Uint8Array(views.reduce((n, v) => n + v.length, 0));
  let offset = 0;
  return views.map((v) => {
    all.set(v, offset);
    return all.subarray(offset, offset += v.length);
  });
}

/** Runs an ack-type call that may throw when the connection has closed; the server redelivers. */
function safe(fn: () => void): void {
  try {
    fn();
  } catch { /* connection closed: JetStream redelivers after the ack wait */ }
}
