/**
 * Two collector daemons sharing one durable JetStream consumer: the work splits between
 * them, each event is written once overall, and a collector that dies holding messages it
 * has not acknowledged hands them to the other after the consumer's ack wait.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { assert, assertEquals } from "./helpers/assert.ts";
import { type Daemon, startDaemon } from "./helpers/daemon.ts";
import { numberedEvents } from "./helpers/events.ts";
import { needs } from "./helpers/external.ts";
import { startNatsServer } from "./helpers/nats.ts";
import { duplicates, natsCollectorConfig, writtenKeys } from "./helpers/nats_fleet.ts";
import { waitFor } from "./helpers/wait.ts";

const key = (e: Record<string, unknown>) => `${e.auditID}/${e.stage}`;

/** Publishes `events` as a node's sink would (top-level JSON, msg id), in lists of 50. */
async function publish(nc: NatsConnection, events: Record<string, unknown>[]): Promise<void> {
  const js = jetstream(nc);
  const enc = new TextEncoder();
  for (let i = 0; i < events.length; i += 50) {
    await Promise.all(
      events.slice(i, i + 50).map((e) =>
        js.publish(
          "audit.events",
          enc.encode(JSON.stringify({ kind: "Event", apiVersion: "audit.k8s.io/v1", ...e })),
          { msgID: key(e) },
        )
      ),
    );
    // A steady flow, as from a fleet, rather than one backlog the first fetch takes.
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test(
  needs(
    "nats-server",
    "two collectors on one durable consumer both write, each event once overall, and a killed collector's unacknowledged messages go to the other after the ack wait",
  ),
  async () => {
    const nats = await startNatsServer();
    const nc = await connect({ servers: nats.url });
    const collectors: Daemon[] = [];
    try {
      const ackWaitMs = 3_000;
      for (let i = 0; i < 2; i++) {
        const c = await startDaemon((dir) =>
          natsCollectorConfig(dir, [nats.url], { ackWait: `${ackWaitMs}ms` })
        );
        collectors.push(c);
        await c.waitLog((r) => r.msg === "consuming from JetStream", 60_000);
      }
      const [c1, c2] = collectors;
      const out = (c: Daemon) => writtenKeys(`${c.dir}/out.log`);
      const jsm = await jetstreamManager(nc);
      const consumer = () => jsm.consumers.info("AUDIT", "collectors");

      // Both running: the work splits, nothing is written twice.
      const first = numberedEvents("first", 0, 2_000);
      await publish(nc, first);
      let split: string[][] = [];
      await waitFor("both collectors together to write the first 2,000 events", async () => {
        split = [await out(c1), await out(c2)];
        return split[0].length + split[1].length >= first.length;
      }, { timeoutMs: 60_000, intervalMs: 100, detail: () => `${split.map((s) => s.length)}` });
      await waitFor("every message acknowledged", async () => {
        const ci = await consumer();
        return ci.num_ack_pending === 0 && ci.num_pending === 0;
      }, { intervalMs: 100 });
      split = [await out(c1), await out(c2)];
      assertEquals(duplicates(split.flat()), 0);
      assertEquals(new Set(split.flat()), new Set(first.map(key)));
      assert(split[0].length > 0 && split[1].length > 0, `split ${split.map((s) => s.length)}`);

      // c1 freezes holding messages (a fetch it has open, a chunk it is writing): they stay
      // unacknowledged while c2 takes the rest; then c1 dies.
      const second = numberedEvents("second", 0, 2_000);
      let stopped = false;
      const publishing = publish(nc, second.slice(0, 1_000)).then(() => {
        c1.process.kill("SIGSTOP");
        stopped = true;
        return publish(nc, second.slice(1_000));
      });
      await publishing;
      assert(stopped);
      // Once c2 has written and acknowledged all it got (the counts stay put for a while),
      // what is still unacknowledged is what c1 holds.
      let held = 0;
      let last = "";
      let steady = 0;
      await waitFor("c2 to write all it can, leaving only what c1 holds", async () => {
        const ci = await consumer();
        held = ci.num_ack_pending;
        const now = `${ci.num_pending}/${held}/${(await out(c2)).length}`;
        steady = now === last ? steady + 1 : 0;
        last = now;
        return ci.num_pending === 0 && held > 0 && steady >= 5;
      }, { timeoutMs: 60_000, intervalMs: 100, detail: () => `pending/unacked/c2 ${last}` });
      const c1Wrote = await out(c1);
      c1.process.kill("SIGKILL");
      const killedAt = Date.now();
      await c1.exited();

      const want = new Set([...first, ...second].map(key));
      let all: string[] = [];
      await waitFor("c2 to write what c1 held", async () => {
        all = [...c1Wrote, ...await out(c2)];
        return [...want].every((k) => new Set(all).has(k));
      }, {
        timeoutMs: 60_000,
        intervalMs: 100,
        detail: () => `${new Set(all).size} of ${want.size}`,
      });
      const handedOverAfter = Date.now() - killedAt;
      const ci = await consumer();
      // Each delivery, a redelivery too, takes a consumer sequence; each message one stream one.
      const redelivered = ci.delivered.consumer_seq - ci.delivered.stream_seq;
      const dup = duplicates(all);
      console.log(
        `c1 wrote ${c1Wrote.length}, c2 ${all.length - c1Wrote.length}; c1 held ${held} ` +
          `unacknowledged when killed, written by c2 ${handedOverAfter} ms later ` +
          `(ack wait ${ackWaitMs} ms); ${redelivered} redelivered, ${dup} duplicate(s) ` +
          `(events c1 wrote before it froze whose acks had not left)`,
      );
      assert(redelivered >= held, `${redelivered} redelivered, ${held} held`);
      // At least once: a duplicate can only be an event c1 wrote but had not acknowledged.
      const c1Set = new Set(c1Wrote);
      const seen = new Set<string>();
      for (const k of all) {
        if (seen.has(k)) assert(c1Set.has(k), `${k} written twice, not by c1`);
        seen.add(k);
      }
      assert(dup <= held, `${dup} duplicates, more than the ${held} messages c1 held`);
      assertEquals(all.filter((k) => !want.has(k)), []);
      assertEquals((await c2.stop()).code, 0);
    } finally {
      await nc.close();
      for (const c of collectors) await c.stop("SIGKILL").catch(() => {});
      await nats.stop();
      for (const c of collectors) await Deno.remove(c.dir, { recursive: true }).catch(() => {});
    }
  },
);
