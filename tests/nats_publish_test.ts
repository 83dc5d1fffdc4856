/**
 * The NATS sink's JetStream publisher (backends/nats_publish.ts): one reply subscription for
 * every publish instead of the client's request per message. What a publisher of JetStream
 * messages must keep: a publish resolves only once JetStream stored the message (or knew it
 * as a duplicate), and every other outcome rejects with an error that says why.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { assertEquals, assertRejects } from "./helpers/assert.ts";
import { startNatsServer } from "./helpers/nats.ts";
import { needs } from "./helpers/external.ts";
import { JetStreamPublisher } from "../backends/nats_publish.ts";
import { NATS_STREAM_DEFAULTS, natsStreamConfig } from "../pipeline/core/nats_connect.ts";

const enc = new TextEncoder();

/** Runs `fn` with a connection to a fresh nats-server, and stops both afterwards. */
async function withNats(fn: (nc: NatsConnection) => Promise<void>): Promise<void> {
  const srv = await startNatsServer();
  const nc = await connect({ servers: srv.url });
  try {
    await fn(nc);
  } finally {
    await nc.close();
    await srv.stop();
  }
}

Deno.test(
  needs(
    "nats-server",
    "JetStream publisher resolves once each message is stored, and a re-sent msg-id is stored once",
  ),
  async () => {
    await withNats(async (nc) => {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add(natsStreamConfig("AUDIT", "audit.events", NATS_STREAM_DEFAULTS));
      const pub = new JetStreamPublisher(nc, 5_000);
      await Promise.all(
        Array.from(
          { length: 300 },
          (_, i) => pub.publish("audit.events", enc.encode(`{"n":${i}}`), `id-${i}`),
        ),
      );
      await pub.publish("audit.events", enc.encode(`{"n":7}`), "id-7");
      assertEquals((await jsm.streams.info("AUDIT")).state.messages, 300);
      pub.close();
    });
  },
);

Deno.test(
  needs("nats-server", "JetStream publisher rejects naming the subject when no stream takes it"),
  async () => {
    await withNats(async (nc) => {
      const pub = new JetStreamPublisher(nc, 5_000);
      await assertRejects(
        () => pub.publish("nobody.listens", enc.encode("{}"), "x"),
        /no JetStream stream takes subject nobody\.listens/,
      );
      pub.close();
    });
  },
);

Deno.test(
  needs(
    "nats-server",
    "JetStream publisher rejects with a timeout when the PubAck never comes, and on close",
  ),
  async () => {
    await withNats(async (nc) => {
      // A plain subscriber that never answers: the message has a responder but no PubAck.
      nc.subscribe("silent.subject", { callback: () => {} });
      await nc.flush();
      const pub = new JetStreamPublisher(nc, 200);
      await assertRejects(
        () => pub.publish("silent.subject", enc.encode("{}"), "x"),
        /timeout: no PubAck for a message on silent\.subject within 200 ms/,
      );
      const slow = new JetStreamPublisher(nc, 600_000);
      const pending = slow.publish("silent.subject", enc.encode("{}"), "y");
      slow.close();
      await assertRejects(() => pending, /closed before the PubAck came/);
      await assertRejects(() => slow.publish("silent.subject", enc.encode("{}"), "z"), /closed/);
      pub.close();
    });
  },
);

Deno.test(
  needs("nats-server", "JetStream publisher rejects with JetStream's own reason when it refuses"),
  async () => {
    await withNats(async (nc) => {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({
        ...natsStreamConfig("SMALL", "small.events", NATS_STREAM_DEFAULTS),
        max_msg_size: 64, // headers count too
      });
      const pub = new JetStreamPublisher(nc, 5_000);
      await assertRejects(
        () => pub.publish("small.events", enc.encode(`{"n":"${"x".repeat(200)}"}`), "big"),
        /JetStream refused the message on small\.events: .*maximum.*\(err_code \d+\)/,
      );
      await pub.publish("small.events", enc.encode("{}"), "ok");
      assertEquals((await jsm.streams.info("SMALL")).state.messages, 1);
      pub.close();
    });
  },
);

Deno.test(
  needs("nats-server", "JetStream publisher resolves for a stream whose name is 'error'"),
  async () => {
    await withNats(async (nc) => {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add(natsStreamConfig("error", "audit.events", NATS_STREAM_DEFAULTS));
      const pub = new JetStreamPublisher(nc, 5_000);
      await pub.publish("audit.events", enc.encode("{}"), "id-1");
      assertEquals((await jsm.streams.info("error")).state.messages, 1);
      pub.close();
    });
  },
);
