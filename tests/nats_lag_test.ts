/**
 * The NATS source's consumer lag on /metrics: a collector whose sink is stalled shows the
 * stream's backlog, then none once it has caught up; a failing info request changes nothing
 * but a (rate-limited) log line.
 */
import { connect } from "@nats-io/transport-node";
import type { Consumer, ConsumerInfo, JsMsg } from "@nats-io/jetstream";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { assert, assertEquals } from "./helpers/assert.ts";
import { startDaemon } from "./helpers/daemon.ts";
import { numberedEvents } from "./helpers/events.ts";
import { needs } from "./helpers/external.ts";
import { scrapeMetrics } from "./helpers/metrics.ts";
import { startNatsServer } from "./helpers/nats.ts";
import { startReceiver } from "./helpers/receiver.ts";
import { waitFor } from "./helpers/wait.ts";
import { ConsumerLag } from "../pipeline/ingest/nats_lag.ts";
import { createLogger } from "../pipeline/core/log.ts";
import { SourceStats } from "../pipeline/core/stats.ts";

const EVENTS = 600;
const MAX_ACK_PENDING = 300;
/** Catching up fetches chunks the consumer's maxAckPending cuts short; slow on a loaded machine. */
const CATCH_UP_MS = 60_000;

Deno.test(
  needs(
    "nats-server",
    "nats source: a stalled collector shows the stream's backlog, its unacked and redelivered messages on /metrics, and 0 once it has caught up",
  ),
  async () => {
    const nats = await startNatsServer();
    const recv = await startReceiver();
    const release = recv.stall();
    // The first write fails, so its chunk is nak'ed and redelivered; the rest wait.
    const stalled = recv.respond;
    recv.respond = (n) => n === 1 ? 500 : stalled(n);
    let d: Awaited<ReturnType<typeof startDaemon>> | null = null;
    try {
      // The backlog is there before the collector starts, as after a collector outage.
      const nc = await connect({ servers: nats.url });
      await (await jetstreamManager(nc)).streams.add({ name: "AUDIT", subjects: ["audit.events"] });
      const js = jetstream(nc);
      const published = Date.now() / 1000;
      for (const e of numberedEvents("lag", 0, EVENTS)) {
        await js.publish("audit.events", JSON.stringify({ kind: "Event", ...e }));
      }
      await nc.drain();

      d = await startDaemon((dir) => {
        Deno.writeTextFileSync(`${dir}/siem.kubeconfig`, recv.kubeconfig());
        return `
sources:
  - type: nats
    name: fanin
    servers: [${nats.url}]
    stream: AUDIT
    subject: audit.events
    consumer: collector
    maxAckPending: ${MAX_ACK_PENDING}
sinks:
  - type: webhook
    name: siem
    kubeconfig: siem.kubeconfig
    mode: blocking-strict
    retry: {maxAttempts: 1}
server:
  listen: 127.0.0.1:0
`;
      });
      const ops = await d.opsPort();
      const metric = (m: Map<string, number>, name: string) =>
        m.get(`auditpipe_nats_consumer_${name}{source="fanin"}`) ?? NaN;
      let seen = new Map<string, number>();
      const state = () =>
        ["pending_messages", "ack_pending_messages", "redelivered_messages"]
          .map((n) => `${n}=${metric(seen, n)}`).join(" ") + `, received ${recv.received.length}`;

      // The sink holds a chunk: the consumer hands out at most maxAckPending, and the rest
      // waits in the stream.
      await waitFor("the backlog on /metrics", async () => {
        seen = await scrapeMetrics(ops);
        return metric(seen, "pending_messages") >= EVENTS - MAX_ACK_PENDING &&
          metric(seen, "ack_pending_messages") > 0 && metric(seen, "redelivered_messages") > 0;
      }, { intervalMs: 200, detail: state });
      assert(metric(seen, "ack_pending_messages") <= MAX_ACK_PENDING, state());
      assert(
        metric(seen, "redelivered_messages") <= metric(seen, "ack_pending_messages"),
        state(),
      );
      const stored = metric(seen, "last_delivered_timestamp_seconds");
      assert(stored >= published - 1 && stored <= Date.now() / 1000 + 1, `stored at ${stored}`);

      release();
      await waitFor("every event delivered and the backlog gone from /metrics", async () => {
        seen = await scrapeMetrics(ops);
        return recv.received.length >= EVENTS && metric(seen, "pending_messages") === 0 &&
          metric(seen, "ack_pending_messages") === 0 && metric(seen, "redelivered_messages") === 0;
      }, { intervalMs: 200, timeoutMs: CATCH_UP_MS, detail: state });
      assertEquals(new Set(recv.received).size, EVENTS);
      const stopped = d;
      d = null;
      assertEquals((await stopped.stop()).code, 0);
      await Deno.remove(stopped.dir, { recursive: true });
    } finally {
      release();
      if (d !== null) {
        await d.stop().catch(() => {});
        await Deno.remove(d.dir, { recursive: true });
      }
      await recv.close();
      await nats.stop();
    }
  },
);

/** A consumer whose info answers `next()`'s outcome; counts the requests. */
function fakeConsumer(next: () => Promise<Partial<ConsumerInfo>>): Consumer & { asked: number } {
  const c = {
    asked: 0,
    info: () => {
      c.asked++;
      return next();
    },
  };
  return c as unknown as Consumer & { asked: number };
}

Deno.test("nats lag: a failing consumer info request keeps the last values, is logged rate-limited, and fetched chunks still update pending", async () => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger("info", (l) => lines.push(JSON.parse(l)));
  const stats = new SourceStats("fanin");
  let fail = false;
  const consumer = fakeConsumer(() =>
    fail
      ? Promise.reject(new Error("timeout"))
      : Promise.resolve({ num_pending: 40, num_ack_pending: 7, num_redelivered: 2 })
  );
  const lag = new ConsumerLag(stats.nats, log, 100);
  try {
    lag.start(consumer);
    await waitFor("the first reading", () => stats.nats.pending === 40);
    assertEquals({ ...stats.nats }, {
      pending: 40,
      ackPending: 7,
      redelivered: 2,
      lastDeliveredTimestamp: 0,
    });
    fail = true;
    const before = consumer.asked;
    await waitFor("three failed readings", () => consumer.asked >= before + 3);
    assertEquals(stats.nats.ackPending, 7);
    assertEquals(stats.nats.redelivered, 2);
    // A chunk's delivery info still counts: consumption is not tied to the info requests.
    const msg = { info: { pending: 12, timestampNanos: 1_700_000_000_500_000_000 } };
    lag.delivered([msg as unknown as JsMsg]);
    assertEquals(stats.nats.pending, 12);
    assert(Math.abs(stats.nats.lastDeliveredTimestamp - 1_700_000_000.5) < 1e-3);
  } finally {
    lag.stop();
  }
  const failed = lines.filter((l) => String(l.msg).startsWith("cannot read the NATS consumer"));
  // The first failure at once, the rest of the minute's when it stopped.
  assertEquals(failed.length, 2, JSON.stringify(failed));
  assertEquals(failed[1].error, "timeout");
  assert(Number(failed[1].total) >= 3, `total ${failed[1].total}`);
});
