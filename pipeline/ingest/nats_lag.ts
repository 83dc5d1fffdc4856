/**
 * The lag of a NATS source's durable consumer, for `/metrics`: how many messages the stream
 * holds that no collector has taken yet, how many are out unacknowledged, how many of those
 * were redelivered, and when JetStream stored the newest message this source fetched.
 *
 * Read off the data path: one consumer info request every few seconds (never two at once),
 * plus the delivery info each fetched chunk carries anyway. A collector that has stopped
 * fetching (its sinks stalled) still has its backlog measured by the info requests; one that
 * is fetching gets a fresher `pending` from each chunk. A failing info request is logged
 * (rate-limited) and leaves the last values: it never touches consumption.
 *
 * @module
 */
import type { Consumer, ConsumerInfo, JsMsg } from "@nats-io/jetstream";
import type { NatsConsumerStats } from "../core/stats.ts";
import { type Logger, RateLimitedLog } from "../core/log.ts";
import { errorText } from "../core/errors.ts";

/**
 * How often the consumer's info is requested, ms: often enough for a scrape every 15 s to
 * see fresh numbers, rare enough to cost JetStream nothing even with many collectors.
 *
 * @example
 * ```ts
 * new ConsumerLag(stats.nats, log, NATS_LAG_INTERVAL);
 * ```
 */
export const NATS_LAG_INTERVAL = 5_000;

/** Failed info requests are logged at most once a minute (one every interval otherwise). */
const FAILED_LOG_INTERVAL = 60_000;

/**
 * Keeps `stats` up to date with the consumer's lag once {@linkcode ConsumerLag.start}ed.
 *
 * @example
 * ```ts
 * const lag = new ConsumerLag(stats.nats, log);
 * lag.start(consumer);
 * for await (const m of await consumer.fetch({ max_messages: 10 })) msgs.push(m);
 * lag.delivered(msgs);
 * lag.stop();
 * ```
 */
export class ConsumerLag {
  readonly #stats: NatsConsumerStats;
  readonly #intervalMs: number;
  readonly #failedLog: RateLimitedLog;
  #consumer: Consumer | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;
  #reading = false;
  #stopped = false;

  constructor(stats: NatsConsumerStats, log: Logger, intervalMs: number = NATS_LAG_INTERVAL) {
    this.#stats = stats;
    this.#intervalMs = Math.max(100, intervalMs);
    this.#failedLog = new RateLimitedLog(
      log,
      "cannot read the NATS consumer's lag; its metrics keep the last values",
      FAILED_LOG_INTERVAL,
    );
  }

  /** Reads the consumer's info now and then every interval, until stopped. */
  start(consumer: Consumer): void {
    if (this.#stopped) return;
    this.#consumer = consumer;
    void this.#read();
    this.#timer = setInterval(() => void this.#read(), this.#intervalMs);
    Deno.unrefTimer(this.#timer);
  }

  /** Takes `pending` and the newest store time from a fetched chunk's delivery info. */
  delivered(msgs: readonly JsMsg[]): void {
    if (msgs.length === 0) return;
    const info = msgs[msgs.length - 1].info;
    this.#stats.pending = info.pending;
    // Only the chunk's last message is parsed (messages come in stream order); a redelivered
    // one is older than what came before it, so the newest time stays.
    this.#stats.lastDeliveredTimestamp = Math.max(
      this.#stats.lastDeliveredTimestamp,
      info.timestampNanos / 1e9,
    );
  }

  /** Stops the requests; the values stay as last read. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#failedLog.flush();
  }

  async #read(): Promise<void> {
    // A slow answer (the server unreachable: up to the API timeout) is not asked again on top.
    if (this.#reading || this.#stopped || this.#consumer === null) return;
    this.#reading = true;
    let info: ConsumerInfo;
    try {
      info = await this.#consumer.info(false);
    } catch (err) {
      if (!this.#stopped) this.#failedLog.add(1, { error: errorText(err) });
      return;
    } finally {
      this.#reading = false;
    }
    this.#stats.pending = info.num_pending;
    this.#stats.ackPending = info.num_ack_pending;
    this.#stats.redelivered = info.num_redelivered;
  }
}
