/**
 * The NATS sink: each event is one JetStream message on `subject`, its data the event's
 * top-level JSON (the original bytes when unchanged), its `Nats-Msg-Id`
 * `<auditID>/<stage>/<digest of the bytes>`, so that JetStream's duplicate window drops what a
 * retry or a re-delivered upstream chunk sends again, but never two different events that share
 * an audit ID. Many nodes publish; a `nats` source elsewhere consumes (fan-in).
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { jsonBytes } from "../pipeline/core/encode.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import { RateLimitedLog } from "../pipeline/core/log.ts";
import {
  type DroppedEvent,
  type Sink,
  type SinkContext,
  SinkError,
  type WriteResult,
} from "./sink.ts";
import {
  closeNats,
  connectNats,
  ensureStream,
  type NatsSecurity,
  type NatsStreamSettings,
} from "../pipeline/core/nats_connect.ts";
import { RetryError, withRetry } from "../pipeline/core/retry.ts";
import { JetStreamPublisher } from "./nats_publish.ts";
import { errorText } from "../pipeline/core/errors.ts";

/**
 * The NATS sink's settings.
 *
 * @example
 * ```ts
 * const cfg = { type: "nats", servers: ["nats://127.0.0.1:4222"], subject: "audit.events",
 *   stream: "AUDIT", mode: "blocking" } as NatsSinkConfig;
 * ```
 */
export interface NatsSinkConfig {
  /** Server URLs, tried in order. */
  readonly servers: readonly string[];
  /** The subject each event is published on. */
  readonly subject: string;
  /** The stream to create over `subject` when it has none; unset: publish only. */
  readonly stream?: string;
  /** How that stream is created (replicas, limits, duplicate window); default one replica. */
  readonly streamSettings?: NatsStreamSettings;
}

/**
 * Test seams and tuning of {@linkcode createNatsSink}; the config has no keys for these.
 *
 * @example
 * ```ts
 * const sink = await createNatsSink(cfg, ctx, { publishTimeout: 500 });
 * ```
 */
export interface NatsSinkOptions {
  /** TLS and credentials for the connection. */
  readonly security?: NatsSecurity;
  /** First delay before a retry, ms; default {@linkcode NATS_INITIAL_BACKOFF}. */
  readonly initialBackoff?: number;
  /** Attempts per batch, the first included; default {@linkcode NATS_MAX_ATTEMPTS}. */
  readonly maxAttempts?: number;
  /** How long one publish waits for its PubAck, ms; default {@linkcode NATS_PUBLISH_TIMEOUT}. */
  readonly publishTimeout?: number;
  /** Publishes awaiting their PubAck at once, at most; default {@linkcode NATS_MAX_OUTSTANDING}. */
  readonly maxOutstanding?: number;
  /** Timeout of the first connection, ms. */
  readonly connectTimeout?: number;
  /** Uniform [0, 1) source for the backoff jitter; default `Math.random`. */
  readonly random?: () => number;
}

/**
 * First retry delay, ms. kube-apiserver's webhook schedule (10 s) suits a remote HTTP
 * collector; a PubAck from a nearby NATS server fails fast and recovers fast.
 *
 * @example
 * ```ts
 * await createNatsSink(cfg, ctx, { initialBackoff: NATS_INITIAL_BACKOFF });
 * ```
 */
export const NATS_INITIAL_BACKOFF = 100;
/**
 * Attempts per batch: 100 ms, 150 ms, 225 ms, 338 ms between them (plus jitter).
 *
 * @example
 * ```ts
 * await createNatsSink(cfg, ctx, { maxAttempts: NATS_MAX_ATTEMPTS });
 * ```
 */
export const NATS_MAX_ATTEMPTS = 5;
/**
 * The JetStream client's default PubAck wait, ms.
 *
 * @example
 * ```ts
 * await createNatsSink(cfg, ctx, { publishTimeout: NATS_PUBLISH_TIMEOUT });
 * ```
 */
export const NATS_PUBLISH_TIMEOUT = 5_000;
/**
 * Publishes in flight per batch: enough to fill the pipe, bounded so memory is too.
 *
 * @example
 * ```ts
 * await createNatsSink(cfg, ctx, { maxOutstanding: NATS_MAX_OUTSTANDING });
 * ```
 */
export const NATS_MAX_OUTSTANDING = 256;

/**
 * The `Nats-Msg-Id` of an event: its audit ID and stage, and a digest of its bytes. A re-sent
 * event is then a duplicate to JetStream and dropped, while two different events never are:
 * the audit ID alone is not enough, since kube-apiserver takes it from the client's
 * `Audit-ID` header as given, and a client reusing one must not make events disappear.
 *
 * @example
 * ```ts
 * natsMsgId(envelope); // "d4652481-193e-42f6-9b78-f8651cab5dfe/ResponseComplete/9f2c…"
 * ```
 */
export function natsMsgId(envelope: Envelope): string {
  const digest = createHash("sha256").update(jsonBytes(envelope)).digest("hex").slice(0, 32);
  return `${envelope.event.auditID}/${envelope.event.stage}/${digest}`;
}

/**
 * Creates a NATS sink: connects (rejecting within a few seconds, naming the servers, when
 * none is reachable) and, when `cfg.stream` is set, makes sure that stream exists (created
 * with subjects `[cfg.subject]` if missing, never modified if present).
 *
 * `write` publishes every event of the batch concurrently (at most `maxOutstanding` awaiting
 * their PubAck) and resolves once every one is acknowledged by JetStream. Failed publishes
 * are retried (only those; the msg-id would make the others duplicates anyway) on a short
 * backoff, each retry counted in `ctx.stats.retries`; after the last attempt it rejects with
 * a {@linkcode SinkError} `retries_exhausted`, and with `shutdown` as soon as `ctx.signal`
 * aborts. An event larger than the server's `max_payload` is never retried: the write
 * resolves with it as dropped `too_large`, the others published. `close` drains the
 * connection.
 *
 * @example
 * ```ts
 * const sink = await createNatsSink(cfg, ctx);
 * await sink.write(batch.items);
 * await sink.close();
 * ```
 */
export async function createNatsSink(
  cfg: NatsSinkConfig,
  ctx: SinkContext,
  opts: NatsSinkOptions = {},
): Promise<Sink> {
  const log = ctx.log.with({ sink: ctx.name });
  let nc: NatsConnection;
  try {
    nc = await connectNats({
      servers: cfg.servers,
      name: `auditpipe-sink-${ctx.name}`,
      log,
      timeout: opts.connectTimeout,
      security: opts.security,
    });
  } catch (err) {
    throw new Error(`nats sink ${ctx.name}: ${errorText(err)}`, { cause: err });
  }
  if (cfg.stream !== undefined) {
    try {
      await ensureStream(
        await jetstreamManager(nc),
        cfg.stream,
        cfg.subject,
        log,
        cfg.streamSettings,
      );
    } catch (err) {
      await closeNats(nc);
      throw new Error(
        `nats sink ${ctx.name}: JetStream stream ${cfg.stream} at ${cfg.servers.join(", ")}: ` +
          errorText(err),
        { cause: err },
      );
    }
  }
  const publishTimeout = opts.publishTimeout ?? NATS_PUBLISH_TIMEOUT;
  const js = new JetStreamPublisher(nc, publishTimeout);
  const maxOutstanding = opts.maxOutstanding ?? NATS_MAX_OUTSTANDING;
  const maxAttempts = opts.maxAttempts ?? NATS_MAX_ATTEMPTS;
  const failures = new RateLimitedLog(log, "nats publish attempt failed", 1000, "warn");

  return {
    async write(items: readonly Envelope[]): Promise<WriteResult | void> {
      if (items.length === 0) return;
      // Which events JetStream has acknowledged (ACKED) or the client refused as larger
      // than max_payload (TOO_LARGE), across attempts of this batch.
      const acked = new Uint8Array(items.length);
      const tooLarge = new Map<number, Error>();
      try {
        await withRetry(
          () =>
            abortable(
              publishAll(js, cfg.subject, items, acked, tooLarge, maxOutstanding),
              ctx.signal,
            ),
          {
            maxAttempts,
            initialBackoff: opts.initialBackoff ?? NATS_INITIAL_BACKOFF,
            random: opts.random,
            clock: ctx.clock,
            signal: ctx.signal,
            onRetry: (attempt, err, delayMs) => {
              ctx.stats.retries++;
              failures.add(1, {
                events: items.length,
                attempt,
                maxAttempts,
                retryInMs: delayMs,
                error: errorText(err),
              });
            },
          },
        );
      } catch (e) {
        const aborted = ctx.signal.aborted || (e instanceof RetryError && e.aborted);
        const attempts = e instanceof RetryError ? e.attempts : 1;
        const last = e instanceof RetryError ? e.cause : e;
        const missing = acked.length - acked.reduce((n, a) => n + a, 0) - tooLarge.size;
        if (!aborted) {
          failures.add(1, { events: items.length, attempt: attempts, error: errorText(last) });
        }
        throw new SinkError(
          `nats sink ${ctx.name}: ${missing} of ${items.length} event${
            items.length === 1 ? "" : "s"
          } not acknowledged by JetStream on ${cfg.subject}, ${aborted ? "aborted" : "failed"} ` +
            `after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${errorText(last)}`,
          aborted ? "shutdown" : "retries_exhausted",
          { cause: last },
        );
      }
      if (tooLarge.size === 0) return;
      const dropped: DroppedEvent[] = [...tooLarge].sort(([a], [b]) => a - b).map((
        [index, error],
      ) => ({
        index,
        reason: "too_large",
        error: new Error(`nats sink ${ctx.name}: ${error.message}`, { cause: error }),
      }));
      return { dropped };
    },
    async close(): Promise<void> {
      failures.flush();
      await closeNats(nc);
      js.close();
    },
  };
}

/** The client's refusal of a message over the server's `max_payload`: no retry can help. */
function isTooLarge(err: unknown): err is Error {
  return err instanceof Error && err.name === "InvalidArgumentError" &&
    err.message.includes("max_payload");
}

/**
 * Publishes every event not yet in `acked` or `tooLarge`, at most `max` awaiting their
 * PubAck at once, and marks each one acknowledged, or too large with its error. Rejects with
 * the first other failure once the publishes it started have settled (so none is left
 * unobserved), without starting more.
 */
async function publishAll(
  js: JetStreamPublisher,
  subject: string,
  items: readonly Envelope[],
  acked: Uint8Array,
  tooLarge: Map<number, Error>,
  max: number,
): Promise<void> {
  // A count and one waiter, not Promise.race over the set in flight: race attaches a
  // reaction to each of the `max` pending promises on every publish.
  let active = 0;
  let wake: (() => void) | null = null;
  const settled = () => {
    active--;
    const w = wake;
    wake = null;
    w?.();
  };
  const room = () => new Promise<void>((r) => wake = r);
  let failure: { err: unknown } | null = null;
  for (let i = 0; i < items.length && failure === null; i++) {
    if (acked[i] || tooLarge.has(i)) continue;
    active++;
    js.publish(subject, jsonBytes(items[i]), natsMsgId(items[i])).then(
      () => {
        acked[i] = 1;
        settled();
      },
      (err) => {
        if (isTooLarge(err)) tooLarge.set(i, err);
        else failure ??= { err };
        settled();
      },
    );
    while (active >= max) await room();
  }
  while (active > 0) await room();
  // (TS narrowed `failure` to null at the loop and cannot see the callbacks set it.)
  const f = failure as { err: unknown } | null;
  if (f !== null) throw f.err;
}

/** `p`, or a rejection with the signal's reason as soon as `signal` aborts. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
