/**
 * Test harness for fleets on NATS: node daemons (webhook → NATS sink) and collector daemons
 * (NATS source → log sink), a sender that posts as kube-apiserver does (retrying a list until
 * it is answered 200), and reading what collectors wrote.
 *
 * @module
 */
import { postEvents } from "./daemon.ts";

/**
 * A node's config: webhook source → NATS sink in `blocking-strict` mode, so that a 200 means
 * JetStream acknowledged every event of the list (a failed publish answers 503 and the sender
 * posts again), the stream created with `replicas`.
 *
 * @example
 * ```ts
 * const node = await startDaemon(() => natsNodeConfig("node-a", cluster.urls, 3));
 * ```
 */
export function natsNodeConfig(name: string, servers: readonly string[], replicas = 1): string {
  return `sources:
  - type: webhook
    listen: 127.0.0.1:0
sinks:
  - type: nats
    name: ${name}
    servers: [${servers.join(", ")}]
    subject: audit.events
    stream: AUDIT
    streamSettings: {replicas: ${replicas}}
    mode: blocking-strict
    batch: {maxSize: 100, maxWait: 50ms}
shutdownTimeout: 10s
`;
}

/**
 * A collector's config: NATS source on the durable consumer `collectors` → log sink
 * `<dir>/out.log` (`blocking-strict`: a failed write naks the messages).
 *
 * @example
 * ```ts
 * const c = await startDaemon((dir) => natsCollectorConfig(dir, cluster.urls, { ackWait: "5s" }));
 * ```
 */
export function natsCollectorConfig(
  dir: string,
  servers: readonly string[],
  opts: { replicas?: number; ackWait?: string; maxAckPending?: number } = {},
): string {
  return `sources:
  - type: nats
    servers: [${servers.join(", ")}]
    stream: AUDIT
    subject: audit.events
    consumer: collectors
    ackWait: ${opts.ackWait ?? "30s"}
    maxAckPending: ${opts.maxAckPending ?? 10000}
    streamSettings: {replicas: ${opts.replicas ?? 1}}
sinks:
  - type: log
    path: ${dir}/out.log
    mode: blocking-strict
server:
  listen: 127.0.0.1:0
shutdownTimeout: 10s
`;
}

/**
 * What {@linkcode sendLists} did: lists answered 200, and answers that were not (each list
 * was posted again until it was).
 *
 * @example
 * ```ts
 * const { accepted, refused } = await sendLists(port, events, 20);
 * ```
 */
export interface Sent {
  accepted: number;
  /** Non-200 answers and failed requests, by status (or `error`). */
  readonly refused: Record<string, number>;
}

/**
 * Posts `events` to the webhook on `port` in lists of `size`, one at a time; a list answered
 * other than 200 (or not at all) is posted again after `retryMs`, as kube-apiserver does,
 * until `deadlineMs` has passed. `onAccepted` runs after each accepted list.
 *
 * @example
 * ```ts
 * await sendLists(port, events, 20, { onAccepted: (n) => n === 10 && kill() });
 * ```
 */
export async function sendLists(
  port: number,
  events: readonly Record<string, unknown>[],
  size: number,
  opts: { onAccepted?: (lists: number) => void; retryMs?: number; deadlineMs?: number } = {},
): Promise<Sent> {
  const sent: Sent = { accepted: 0, refused: {} };
  const until = Date.now() + (opts.deadlineMs ?? 120_000);
  for (let i = 0; i < events.length; i += size) {
    const list = events.slice(i, i + size);
    for (;;) {
      let status: string;
      try {
        const res = await postEvents(port, [...list]);
        await res.body?.cancel();
        status = String(res.status);
      } catch {
        status = "error";
      }
      if (status === "200") break;
      sent.refused[status] = (sent.refused[status] ?? 0) + 1;
      if (Date.now() > until) {
        throw new Error(
          `list ${i / size} still not accepted by :${port} at the deadline; refused ${
            JSON.stringify(sent.refused)
          }`,
        );
      }
      await new Promise((r) => setTimeout(r, opts.retryMs ?? 200));
    }
    sent.accepted++;
    opts.onAccepted?.(sent.accepted);
  }
  return sent;
}

/**
 * The `auditID/stage` of each whole line of the log file at `path` (none when it is missing).
 *
 * @example
 * ```ts
 * const keys = await writtenKeys(`${collector.dir}/out.log`);
 * ```
 */
export async function writtenKeys(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.slice(0, text.lastIndexOf("\n") + 1).split("\n").filter((l) => l !== "").map(
    (l) => {
      const e = JSON.parse(l);
      return `${e.auditID}/${e.stage}`;
    },
  );
}

/**
 * How many of `keys` repeat one seen before.
 *
 * @example
 * ```ts
 * duplicates(["a", "b", "a"]); // 1
 * ```
 */
export function duplicates(keys: readonly string[]): number {
  return keys.length - new Set(keys).size;
}
