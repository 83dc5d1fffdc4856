/**
 * Fan-in through a JetStream cluster that loses a server: three nats-server processes on
 * loopback, a stream with three replicas, two node daemons publishing and a collector
 * consuming, all given every server's URL; the server one node publishes through is killed
 * with SIGKILL mid-stream and started again later.
 */
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { assert, assertEquals } from "./helpers/assert.ts";
import { type Daemon, startDaemon } from "./helpers/daemon.ts";
import { numberedEvents } from "./helpers/events.ts";
import { needs } from "./helpers/external.ts";
import { type ClusterMember, startNatsCluster } from "./helpers/nats_cluster.ts";
import {
  duplicates,
  natsCollectorConfig,
  natsNodeConfig,
  sendLists,
  writtenKeys,
} from "./helpers/nats_fleet.ts";
import { waitFor } from "./helpers/wait.ts";

const key = (e: Record<string, unknown>) => `${e.auditID}/${e.stage}`;

/**
 * `ask()`, asked again while it fails: a JetStream API request times out while its group
 * elects a leader (after a step-down, a kill or a restart), which is no failure of the test.
 */
async function settled<T>(what: string, ask: () => Promise<T>): Promise<T> {
  let value: T | undefined;
  let last = "";
  await waitFor(what, async () => {
    try {
      value = await ask();
      return true;
    } catch (err) {
      last = String(err);
      return false;
    }
  }, { timeoutMs: 60_000, intervalMs: 200, detail: () => last });
  return value!;
}

Deno.test(
  needs(
    "nats-server",
    "a JetStream cluster loses a server to SIGKILL mid-stream: every event the nodes answered 200 for is written by the collector, stored once, and the daemons reconnect by themselves",
  ),
  async () => {
    const cluster = await startNatsCluster(3);
    const daemons: Daemon[] = [];
    const nc = await connect({ servers: [...cluster.urls] });
    try {
      const collector = await startDaemon((dir) =>
        natsCollectorConfig(dir, cluster.urls, { replicas: 3, ackWait: "5s", maxAckPending: 400 })
      );
      daemons.push(collector);
      await collector.waitLog((r) => r.msg === "consuming from JetStream", 60_000);
      const a = await startDaemon(() => natsNodeConfig("node-a", cluster.urls, 3));
      daemons.push(a);
      const b = await startDaemon(() => natsNodeConfig("node-b", cluster.urls, 3));
      daemons.push(b);
      const ports = [await a.webhookPort(), await b.webhookPort()];

      const jsm = await jetstreamManager(nc);
      const stream = await settled("the stream's info", () => jsm.streams.info("AUDIT"));
      assertEquals(stream.config.num_replicas, 3);
      // The server node-a publishes through: killing it makes node-a reconnect elsewhere.
      let victim: ClusterMember | undefined;
      await waitFor("node-a's connection to show on a server", async () => {
        for (const m of cluster.members) {
          if ((await m.clients()).includes("auditpipe-sink-node-a")) victim = m;
        }
        return victim !== undefined;
      }, { intervalMs: 100 });
      // And make it the stream's leader, so that the kill also forces an election of the
      // stream's Raft group (step-downs pick a new leader at random among the others).
      let leader = stream.cluster?.leader;
      for (let i = 0; i < 20 && leader !== victim!.name; i++) {
        await nc.request("$JS.API.STREAM.LEADER.STEPDOWN.AUDIT", undefined, { timeout: 5_000 })
          .catch(() => {});
        await waitFor("a stream leader after the step-down", async () => {
          leader = (await jsm.streams.info("AUDIT").catch(() => null))?.cluster?.leader;
          return leader !== undefined;
        }, { intervalMs: 100 });
      }
      const roles = `stream leader ${leader}, victim ${victim!.name}`;

      const events = [numberedEvents("node-a", 0, 600), numberedEvents("node-b", 0, 600)];
      let outage: Promise<void> = Promise.resolve();
      let killedAt = 0;
      const onA = (lists: number) => {
        if (lists === 10) {
          killedAt = Date.now();
          outage = victim!.kill("SIGKILL");
        }
        if (lists === 20) outage = outage.then(() => victim!.start());
      };
      const sent = await Promise.all([
        sendLists(ports[0], events[0], 20, { onAccepted: onA }),
        sendLists(ports[1], events[1], 20),
      ]);
      await outage;
      assertEquals(sent.map((s) => s.accepted), [30, 30]);
      assert(killedAt > 0 && victim!.running, "the victim was killed and restarted");
      await cluster.ready();

      const want = new Set(events.flat().map(key));
      let keys: string[] = [];
      await waitFor("the collector to write every event the nodes answered 200 for", async () => {
        keys = await writtenKeys(`${collector.dir}/out.log`);
        const got = new Set(keys);
        return [...want].every((k) => got.has(k));
      }, {
        timeoutMs: 120_000,
        intervalMs: 200,
        detail: () => `${new Set(keys).size} of ${want.size} written`,
      });
      assertEquals(keys.filter((k) => !want.has(k)), []);

      // Every re-sent event (a list posted again after a 503, a publish retried after a lost
      // PubAck) was dropped by its Nats-Msg-Id: the stream holds each event once.
      const state = (await settled("the stream's info", () => jsm.streams.info("AUDIT"))).state;
      assertEquals(state.messages, want.size);
      // The collector acks after writing; an ack lost in the failover makes JetStream
      // deliver that message again after the ack wait, and at-least-once writes it again.
      // Such duplicates are bounded by what the consumer may hold unacked at once
      // (max_ack_pending): one failover can lose at most those acks. JetStream's own count of
      // redeliveries is printed but is no bound: a new consumer leader can start from a
      // delivered sequence older than the old leader's (seen: 40 duplicates, 0 counted).
      const consumer = await settled(
        "the consumer's info",
        () => jsm.consumers.info("AUDIT", "collectors"),
      );
      // Each delivery, a redelivery too, takes a consumer sequence; each message one stream one.
      const redelivered = consumer.delivered.consumer_seq - consumer.delivered.stream_seq;
      const dup = duplicates(keys);
      console.log(
        `cluster failover (${roles}): refused lists ${
          JSON.stringify(sent.map((s) => s.refused))
        }, ` +
          `stream ${state.messages} messages, collector wrote ${keys.length} lines, ` +
          `${dup} duplicate(s), ${redelivered} redelivery(ies)`,
      );
      const maxAckPending = consumer.config.max_ack_pending ?? 0;
      assert(
        dup <= maxAckPending,
        `${dup} duplicates, more than the ${maxAckPending} messages the consumer may hold unacked`,
      );

      // node-a lost its server and found another by itself; nothing restarted the daemons.
      const msgs = a.logs.map((r) => r.msg);
      assert(msgs.includes("NATS disconnected; reconnecting"), JSON.stringify(a.logs));
      assert(msgs.includes("NATS reconnected"), JSON.stringify(a.logs));
      for (const d of daemons) assertEquals((await d.stop()).code, 0);
    } finally {
      await nc.close();
      for (const d of daemons) await d.stop("SIGKILL").catch(() => {});
      await cluster.stop();
      for (const d of daemons) await Deno.remove(d.dir, { recursive: true }).catch(() => {});
    }
  },
);
