/**
 * JetStream publishing for the NATS sink, cheaper per message than the client's
 * `js.publish`: every publish replies to one wildcard subscription of ours, and one timer
 * expires the PubAcks that do not come. `js.publish` makes each publish a full request: a
 * timer of its own, a mux entry, and an `Error` built (with its stack) when the request is
 * settled, even a successful one; that was a fifth of a node daemon's CPU.
 *
 * @module
 */
import {
  createInbox,
  headers,
  type Msg,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";

/** A publish awaiting its PubAck. */
interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly subject: string;
  /** When it times out (`performance.now()` ms: monotonic, so the oldest expire first). */
  readonly until: number;
}

const decoder = new TextDecoder();

/**
 * Publishes messages to JetStream and resolves each once its PubAck says it is stored.
 *
 * @example
 * ```ts
 * const pub = new JetStreamPublisher(nc, 5_000);
 * await pub.publish("audit.events", bytes, "d4652481-…/ResponseComplete/9f2c…");
 * pub.close();
 * ```
 */
export class JetStreamPublisher {
  readonly #nc: NatsConnection;
  readonly #timeout: number;
  readonly #prefix: string;
  readonly #sub: Subscription;
  /** In publish order, so that the oldest come first when expiring. */
  readonly #waiting = new Map<string, Waiter>();
  readonly #timer: ReturnType<typeof setInterval>;
  #next = 0;
  #closed = false;

  /** `timeoutMs`: how long a publish waits for its PubAck. */
  constructor(nc: NatsConnection, timeoutMs: number) {
    this.#nc = nc;
    this.#timeout = timeoutMs;
    this.#prefix = `${createInbox()}.`;
    this.#sub = nc.subscribe(`${this.#prefix}*`, {
      callback: (err, msg) => err ? this.#rejectAll(err) : this.#reply(msg),
    });
    // Expiry lags by at most a quarter of the timeout; a PubAck that slow is rare.
    this.#timer = setInterval(() => this.#expire(), Math.max(10, timeoutMs / 4));
    Deno.unrefTimer(this.#timer);
    nc.closed().then(() => this.close());
  }

  /**
   * Publishes `data` on `subject` with `Nats-Msg-Id` `msgId`; resolves once JetStream has
   * stored it (or dropped it as a duplicate of one it stored). Rejects with the client's
   * error when it refuses the message (larger than `max_payload`, connection closed), with
   * JetStream's error, when no stream takes the subject, or after the timeout.
   */
  publish(subject: string, data: Uint8Array, msgId: string): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the NATS publisher is closed"));
    const token = (this.#next++).toString(36);
    const h = headers();
    h.set("Nats-Msg-Id", msgId);
    return new Promise<void>((resolve, reject) => {
      this.#waiting.set(token, {
        resolve,
        reject,
        subject,
        until: performance.now() + this.#timeout,
      });
      try {
        this.#nc.publish(subject, data, { reply: this.#prefix + token, headers: h });
      } catch (err) {
        this.#waiting.delete(token);
        reject(err);
      }
    });
  }

  /** Stops: what still awaits its PubAck is rejected. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#rejectAll(new Error("the NATS connection closed before the PubAck came"));
    try {
      this.#sub.unsubscribe();
    } catch { /* connection closed already */ }
  }

  #reply(msg: Msg): void {
    const token = msg.subject.slice(this.#prefix.length);
    const w = this.#waiting.get(token);
    if (w === undefined) return; // expired meanwhile
    this.#waiting.delete(token);
    if (msg.data.length === 0) {
      const code = msg.headers?.code ?? 0;
      w.reject(
        new Error(
          code === 503
            ? `no JetStream stream takes subject ${w.subject} (no responders)`
            : `unexpected reply to a JetStream publish on ${w.subject}: status ${code}`,
        ),
      );
      return;
    }
    const text = decoder.decode(msg.data);
    // A PubAck is `{"stream":…,"seq":…}`; parsing is only worth it for the error's text.
    if (!text.includes('"error"')) {
      w.resolve();
      return;
    }
    let description = text;
    try {
      const e = (JSON.parse(text) as { error?: { description?: string; err_code?: number } })
        .error;
      // `"error"` was only a stream's name, say: a PubAck all the same.
      if (e === undefined || e === null) return w.resolve();
      description = `${e.description ?? "error"} (err_code ${e.err_code ?? "?"})`;
    } catch { /* not JSON: keep the text */ }
    w.reject(new Error(`JetStream refused the message on ${w.subject}: ${description}`));
  }

  #expire(): void {
    const now = performance.now();
    for (const [token, w] of this.#waiting) {
      if (w.until > now) break; // the rest were published later
      this.#waiting.delete(token);
      w.reject(
        new Error(`timeout: no PubAck for a message on ${w.subject} within ${this.#timeout} ms`),
      );
    }
  }

  #rejectAll(err: Error): void {
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const w of waiting) w.reject(err);
  }
}
