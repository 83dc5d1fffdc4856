/**
 * The JetStream side of the NATS source's start: one attempt to connect, make sure the
 * stream and the durable pull consumer exist (creating them when missing, leaving existing
 * ones as they are), and get the consumer. The source retries attempts with backoff.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  jetstream,
  JetStreamApiCodes,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { Logger } from "../core/log.ts";
import {
  closeNats,
  connectNats,
  ensureStream,
  isApiError,
  type NatsSecurity,
  type NatsStreamSettings,
} from "../core/nats_connect.ts";
import { errorText } from "../core/errors.ts";

/**
 * The consumer's ack wait, ms: how long JetStream waits for an ack before redelivering.
 *
 * @example
 * ```ts
 * natsConsumerConfig("auditpipe", "audit.events").ack_wait; // NATS_ACK_WAIT in ns
 * natsConsumerConfig("auditpipe", "audit.events", { ackWait: 5_000 }).ack_wait; // 5e9
 * ```
 */
export const NATS_ACK_WAIT = 30_000;
/**
 * The consumer's bound on delivered, unacknowledged messages.
 *
 * @example
 * ```ts
 * natsConsumerConfig("auditpipe", "audit.events").max_ack_pending; // NATS_MAX_ACK_PENDING
 * ```
 */
export const NATS_MAX_ACK_PENDING = 10_000;

/**
 * The durable pull consumer a source creates when it is missing; `ackWait` in ms.
 *
 * @example
 * ```ts
 * await jsm.consumers.add("AUDIT", natsConsumerConfig("auditpipe", "audit.events"));
 * ```
 */
export function natsConsumerConfig(
  durable: string,
  subject: string,
  opts: { ackWait?: number; maxAckPending?: number } = {},
): Partial<ConsumerConfig> {
  return {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: subject,
    ack_wait: (opts.ackWait ?? NATS_ACK_WAIT) * 1_000_000, // nanoseconds
    max_ack_pending: opts.maxAckPending ?? NATS_MAX_ACK_PENDING,
  };
}

/**
 * Where a NATS source consumes from and how it connects.
 *
 * @example
 * ```ts
 * const target: ConsumerTarget = { servers: ["nats://127.0.0.1:4222"], stream: "AUDIT",
 *   subject: "audit.events", consumer: "auditpipe" };
 * ```
 */
export interface ConsumerTarget {
  readonly servers: string[];
  readonly stream: string;
  readonly subject: string;
  readonly consumer: string;
  /** Timeout of the connection attempt, ms. */
  readonly connectTimeout?: number;
  readonly security?: NatsSecurity;
  /** How the stream is created when missing; default one replica. */
  readonly streamSettings?: NatsStreamSettings;
  /** The ack wait a consumer is created with, ms; default {@linkcode NATS_ACK_WAIT}. */
  readonly ackWait?: number;
  /** The unacknowledged messages a consumer is created with, at most. */
  readonly maxAckPending?: number;
}

/**
 * A connection and the durable consumer on it, with the consumer's ack wait in ms (an
 * existing consumer may have another than the one we would create).
 *
 * @example
 * ```ts
 * const { nc, consumer, ackWaitMs } = await openConsumer(target, log);
 * ```
 */
export interface OpenConsumer {
  readonly nc: NatsConnection;
  readonly consumer: Consumer;
  readonly ackWaitMs: number;
}

/**
 * One attempt to connect and get the consumer; on failure the connection is closed and the
 * error thrown.
 *
 * @example
 * ```ts
 * const open = await openConsumer(target, log);
 * for await (const m of await open.consumer.fetch({ max_messages: 1 })) m.ack();
 * ```
 */
export async function openConsumer(target: ConsumerTarget, log: Logger): Promise<OpenConsumer> {
  const nc = await connectNats({
    servers: target.servers,
    name: `auditpipe-source-${target.consumer}`,
    log,
    timeout: target.connectTimeout,
    security: target.security,
  });
  try {
    const jsm = await jetstreamManager(nc);
    await ensureStream(jsm, target.stream, target.subject, log, target.streamSettings);
    const info = await ensureConsumer(jsm, target, log);
    const consumer = await jetstream(nc).consumers.get(target.stream, target.consumer);
    const ackWaitMs = info.config.ack_wait ? info.config.ack_wait / 1_000_000 : NATS_ACK_WAIT;
    return { nc, consumer, ackWaitMs };
  } catch (err) {
    await closeNats(nc);
    throw err;
  }
}

/** Makes sure the durable consumer exists (an existing one is left as it is). */
async function ensureConsumer(
  jsm: JetStreamManager,
  target: ConsumerTarget,
  log: Logger,
): Promise<ConsumerInfo> {
  const { stream, consumer, subject } = target;
  const want = natsConsumerConfig(consumer, subject, target);
  try {
    const info = await jsm.consumers.info(stream, consumer);
    if (info.config.ack_policy !== AckPolicy.Explicit) {
      log.warn("the consumer does not use explicit acks; failed chunks may be lost", {
        ackPolicy: info.config.ack_policy,
      });
    }
    if (info.config.ack_wait !== want.ack_wait) {
      log.warn("the consumer has another ack wait than the config's ackWait; using it as it is", {
        ackWaitMs: (info.config.ack_wait ?? 0) / 1_000_000,
        wantAckWaitMs: want.ack_wait! / 1_000_000,
      });
    }
    return info;
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
  }
  try {
    const info = await jsm.consumers.add(stream, want);
    log.info("created durable JetStream consumer", {
      subject,
      ackWaitMs: want.ack_wait! / 1_000_000,
      maxAckPending: want.max_ack_pending,
    });
    return info;
  } catch (err) {
    // Another instance may have created it in between; if it is there now, fine.
    try {
      return await jsm.consumers.info(stream, consumer);
    } catch {
      throw new Error(`cannot create consumer ${consumer} on ${stream}: ${errorText(err)}`, {
        cause: err,
      });
    }
  }
}
