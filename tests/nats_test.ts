import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { freePort, type NatsServer, startNatsServer } from "./helpers/nats.ts";
import { auditLogLines } from "./data/corpus.ts";
import { createNatsSink, natsMsgId, type NatsSinkConfig } from "../backends/nats.ts";
import { SinkError } from "../backends/sink.ts";
import {
  natsConsumerConfig,
  natsSource,
  type NatsSourceConfig,
  type NatsStream,
} from "../pipeline/ingest/nats.ts";
import { sinkSchema, sourceSchema } from "../pipeline/config/schema.ts";
import { decodeLine } from "../pipeline/core/decode.ts";
import type { Chunk, Envelope } from "../pipeline/core/envelope.ts";
import { createLogger, silentLogger } from "../pipeline/core/log.ts";
import { SinkStats, SourceStats } from "../pipeline/core/stats.ts";
import { systemClock } from "../pipeline/core/clock.ts";
import type { SinkContext } from "../backends/sink.ts";
import { needs } from "./helpers/external.ts";
import { deadline, waitFor } from "./helpers/wait.ts";

const LINES: Uint8Array[] = (() => {
  const enc = new TextEncoder();
  return auditLogLines().map((l) => enc.encode(l));
})();
const dec = new TextDecoder();

function envelopes(lines: Uint8Array[]): Envelope[] {
  return lines.flatMap((l) => decodeLine(l).envelopes);
}

function sinkConfig(url: string, stream?: string): NatsSinkConfig {
  return sinkSchema.parse({ type: "nats", servers: [url], stream }) as NatsSinkConfig;
}

function sourceConfig(url: string): NatsSourceConfig {
  return sourceSchema.parse({ type: "nats", servers: [url] }) as NatsSourceConfig;
}

function sinkContext(name: string, signal = new AbortController().signal): SinkContext {
  return { name, log: silentLogger, clock: systemClock, stats: new SinkStats(name), signal };
}

/** A running source with its reader and a way to stop it. */
interface Running {
  readonly stream: NatsStream;
  readonly reader: ReadableStreamDefaultReader<Chunk>;
  readonly stats: SourceStats;
  stop(): Promise<void>;
}

function openSource(
  url: string,
  opts: { batch?: number; nakDelay?: number; fetchExpires?: number } = {},
): Running {
  const ac = new AbortController();
  const stats = new SourceStats("fanin");
  const stream = natsSource(sourceConfig(url), {
    name: "fanin",
    log: silentLogger,
    stats,
    signal: ac.signal,
    ...opts,
  });
  const reader = stream.getReader();
  return {
    stream,
    reader,
    stats,
    async stop() {
      ac.abort();
      // Whatever the stream still holds is read off so it can close.
      await deadline(
        (async () => {
          while (!(await reader.read()).done) { /* nothing */ }
          await stream.finished;
        })(),
        "the nats source to close after its signal aborted",
      );
    },
  };
}

/** The next chunk, or null when none comes within `ms`. */
async function nextChunk(r: Running, ms = 5000): Promise<Chunk | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((res) => timer = setTimeout(() => res(null), ms));
  const read = r.reader.read().then((x) => x.done ? null : x.value);
  const got = await Promise.race([read, timeout]);
  clearTimeout(timer);
  return got;
}

/** Publishes raw payloads to the source's subject, as any publisher might. */
async function publishRaw(url: string, payloads: (Uint8Array | string)[]): Promise<void> {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "AUDIT", subjects: ["audit.events"] }).catch(() => {});
  const js = jetstream(nc);
  for (const p of payloads) await js.publish("audit.events", p);
  await nc.drain();
}

async function consumerState(nc: NatsConnection) {
  const jsm = await jetstreamManager(nc);
  return await jsm.consumers.info("AUDIT", "auditpipe");
}

/** Polls until the consumer has no unacknowledged and no undelivered messages. */
async function waitAllAcked(nc: NatsConnection): Promise<void> {
  const deadline = Date.now() + 5000;
  while (true) {
    const ci = await consumerState(nc);
    if (ci.num_ack_pending === 0 && ci.num_pending === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`still unacked: ${ci.num_ack_pending}, pending: ${ci.num_pending}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function withServer(fn: (srv: NatsServer) => Promise<void>): Promise<void> {
  const srv = await startNatsServer();
  try {
    await fn(srv);
  } finally {
    await srv.stop();
  }
}

Deno.test(
  needs(
    "nats-server",
    "nats sink publishes each event once with its original bytes and an auditID/stage msg-id, and JetStream drops a re-sent batch",
  ),
  () =>
    withServer(async (srv) => {
      const items = envelopes(LINES.slice(0, 300));
      const ctx = sinkContext("fanout");
      const sink = await createNatsSink(sinkConfig(srv.url, "AUDIT"), ctx);
      await sink.write(items);
      await sink.write(items); // as after a retry upstream
      await sink.close();
      assertEquals(ctx.stats.retries, 0);

      const nc = await connect({ servers: srv.url });
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info("AUDIT");
      assertEquals(info.config.subjects, ["audit.events"]);
      assertEquals(info.state.messages, 300);
      for (const seq of [1, 150, 300]) {
        const m = await jsm.streams.getMessage("AUDIT", { seq });
        assert(m !== null);
        assertEquals(dec.decode(m.data), dec.decode(LINES[seq - 1]));
        assertEquals(m.header.get("Nats-Msg-Id"), natsMsgId(items[seq - 1]));
      }
      await nc.drain();
    }),
);

Deno.test(
  needs("nats-server", "nats sink leaves an existing stream as it is"),
  () =>
    withServer(async (srv) => {
      const nc = await connect({ servers: srv.url });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "AUDIT", subjects: ["audit.>"], max_msgs: 1234 });
      const sink = await createNatsSink(sinkConfig(srv.url, "AUDIT"), sinkContext("s"));
      await sink.write(envelopes(LINES.slice(0, 3)));
      await sink.close();
      const info = await jsm.streams.info("AUDIT");
      assertEquals(info.config.subjects, ["audit.>"]);
      assertEquals(info.config.max_msgs, 1234);
      assertEquals(info.state.messages, 3);
      await nc.drain();
    }),
);

Deno.test("nats sink creation fails naming the server when none listens, instead of retrying on", async () => {
  const url = `nats://127.0.0.1:${freePort()}`;
  const err = await deadline(
    assertRejects(
      () => createNatsSink(sinkConfig(url, "AUDIT"), sinkContext("siem")),
      new RegExp(`nats sink siem: cannot connect to NATS at ${url.replaceAll(".", "\\.")}`),
    ),
    "the sink's creation to fail",
  );
  assert(!(err instanceof SinkError));
});

Deno.test(
  needs(
    "nats-server",
    "nats sink gives up with retries_exhausted after 5 attempts when the server is gone",
  ),
  async () => {
    const srv = await startNatsServer();
    const ctx = sinkContext("s");
    const sink = await createNatsSink(sinkConfig(srv.url, "AUDIT"), ctx, {
      publishTimeout: 200,
      random: () => 0,
    });
    await srv.stop();
    const err = await assertRejects(
      () => sink.write(envelopes(LINES.slice(0, 2))),
      /2 of 2 events not acknowledged by JetStream on audit\.events, failed after 5 attempts/,
    );
    assert(err instanceof SinkError);
    assertEquals(err.reason, "retries_exhausted");
    assertEquals(ctx.stats.retries, 4);
    await sink.close();
  },
);

Deno.test(
  needs(
    "nats-server",
    "nats sink write rejects promptly with shutdown when the sink's signal aborts",
  ),
  async () => {
    const srv = await startNatsServer();
    const ac = new AbortController();
    // An attempt that would wait ten minutes: only the abort can end the write within the
    // deadline below, however slow the machine.
    const sink = await createNatsSink(sinkConfig(srv.url, "AUDIT"), sinkContext("s", ac.signal), {
      publishTimeout: 600_000,
    });
    await srv.stop();
    const writing = sink.write(envelopes(LINES.slice(0, 2)));
    setTimeout(() => ac.abort(new Error("shutdown timeout")), 100);
    const err = await deadline(
      assertRejects(() => writing, /aborted after 1 attempt/),
      "the write to reject once the signal aborted",
    );
    assert(err instanceof SinkError);
    assertEquals(err.reason, "shutdown");
    await sink.close();
  },
);

Deno.test(
  needs(
    "nats-server",
    "nats source hands what one pull fetched on as one chunk, acks it once settled, and nothing comes again after a restart",
  ),
  () =>
    withServer(async (srv) => {
      const list = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${
        LINES.slice(10, 13).map((l) => dec.decode(l)).join(",")
      }]}`;
      await publishRaw(srv.url, [...LINES.slice(0, 10), list]);
      const src = openSource(srv.url);
      const chunk = await nextChunk(src);
      assert(chunk !== null, "no chunk");
      assertEquals(chunk.items.length, 13);
      assertEquals(dec.decode(chunk.items[0].raw!), dec.decode(LINES[0]));
      assertEquals(
        chunk.items.map((e) => e.event.auditID),
        envelopes(LINES.slice(0, 13)).map((e) => e.event.auditID),
      );
      assertEquals(src.stats.events, 13);
      assert(src.stats.ready);

      const nc = await connect({ servers: srv.url });
      assertEquals((await consumerState(nc)).num_ack_pending, 11);
      chunk.ack.release();
      await waitAllAcked(nc);
      await src.stop();
      assert(!src.stats.ready);

      const again = openSource(srv.url);
      assertEquals(await nextChunk(again, 1500), null);
      await again.stop();
      assertEquals((await consumerState(nc)).num_redelivered, 0);
      await nc.drain();
    }),
);

Deno.test(
  needs(
    "nats-server",
    "nats source naks the messages of a failed chunk so JetStream delivers them again",
  ),
  () =>
    withServer(async (srv) => {
      await publishRaw(srv.url, LINES.slice(0, 5));
      const src = openSource(srv.url, { nakDelay: 100 });
      const first = await nextChunk(src);
      assert(first !== null);
      assertEquals(first.items.length, 5);
      first.ack.fail(new Error("blocking-strict sink failed"));
      // Redeliveries may come over more than one chunk.
      const again: string[] = [];
      while (again.length < 5) {
        const chunk = await nextChunk(src);
        assert(chunk !== null, `only ${again.length} redelivered`);
        again.push(...chunk.items.map(natsMsgId));
        chunk.ack.release();
      }
      assertEquals(again.sort(), first.items.map(natsMsgId).sort());
      const nc = await connect({ servers: srv.url });
      await waitAllAcked(nc);
      await src.stop();
      await nc.drain();
    }),
);

Deno.test(
  needs("nats-server", "nats source terminates messages that are not audit events and counts them"),
  () =>
    withServer(async (srv) => {
      await publishRaw(srv.url, [
        "not json",
        LINES[0],
        '{"kind":"Pod","apiVersion":"v1"}',
        LINES[1],
        // An EventList with one bad item: the good one goes on, the bad one is counted.
        `{"kind":"EventList","items":[${dec.decode(LINES[2])},{"level":"Nope"}]}`,
      ]);
      const src = openSource(srv.url);
      const chunk = await nextChunk(src);
      assert(chunk !== null);
      assertEquals(chunk.items.length, 3);
      assertEquals(src.stats.rejected.get("invalid_event"), 3);
      chunk.ack.release();
      const nc = await connect({ servers: srv.url });
      await waitAllAcked(nc);
      await src.stop();
      const again = openSource(srv.url);
      assertEquals(await nextChunk(again, 1500), null);
      await again.stop();
      await nc.drain();
    }),
);

Deno.test(
  needs(
    "nats-server",
    "nats source at shutdown waits for an unsettled chunk and acks it before it closes",
  ),
  () =>
    withServer(async (srv) => {
      await publishRaw(srv.url, LINES.slice(0, 4));
      const src = openSource(srv.url);
      const chunk = await nextChunk(src);
      assert(chunk !== null);
      setTimeout(() => chunk.ack.release(), 200);
      await src.stop();
      const nc = await connect({ servers: srv.url });
      const ci = await consumerState(nc);
      assertEquals([ci.num_ack_pending, ci.num_pending], [0, 0]);
      await nc.drain();
    }),
);

Deno.test(
  needs(
    "nats-server",
    "two nodes publishing through nats sinks reach one nats source exactly once",
  ),
  () =>
    withServer(async (srv) => {
      const all = LINES.slice(0, 2000);
      const a = await createNatsSink(sinkConfig(srv.url, "AUDIT"), sinkContext("node-a"));
      const b = await createNatsSink(sinkConfig(srv.url, "AUDIT"), sinkContext("node-b"));
      const src = openSource(srv.url, { batch: 256 });
      const batches = (lines: Uint8Array[]) =>
        Array.from(
          { length: Math.ceil(lines.length / 100) },
          (_, i) => envelopes(lines.slice(i * 100, (i + 1) * 100)),
        );
      const writing = Promise.all([
        (async () => {
          for (const batch of batches(all.slice(0, 1000))) await a.write(batch);
        })(),
        (async () => {
          for (const batch of batches(all.slice(1000))) await b.write(batch);
        })(),
      ]);
      const seen = new Map<string, string>();
      let chunks = 0;
      while (seen.size < all.length) {
        const chunk = await nextChunk(src);
        assert(chunk !== null, `stalled at ${seen.size} events`);
        chunks++;
        for (const e of chunk.items) {
          const id = natsMsgId(e);
          assert(!seen.has(id), `${id} received twice`);
          seen.set(id, dec.decode(e.raw!));
        }
        chunk.ack.release();
      }
      await writing;
      await Promise.all([a.close(), b.close()]);
      assert(chunks < all.length / 2, "chunks should hold many events each");
      const want = new Map(envelopes(all).map((e, i) => [natsMsgId(e), dec.decode(all[i])]));
      assertEquals(seen, want);
      // Nothing more arrives.
      assertEquals(await nextChunk(src, 1200), null);
      assertEquals(src.stats.events, all.length);
      await src.stop();
    }),
);

Deno.test(
  needs(
    "nats-server",
    "nats source hands a lone event on at once instead of waiting for a batch to fill",
  ),
  () =>
    withServer(async (srv) => {
      // Fetches that wait a minute for a batch to fill: a source that waited for one would
      // hand nothing on within the 20 s this test gives it, however slow the machine.
      const src = openSource(srv.url, { batch: 256, fetchExpires: 60_000 });
      const reading = nextChunk(src, 20_000);
      await waitFor("the nats source to be ready", () => src.stats.ready);
      await new Promise((r) => setTimeout(r, 100)); // so that the fetch is waiting already
      await publishRaw(srv.url, [LINES[0]]);
      const chunk = await reading;
      assert(chunk !== null, "the lone event did not come before the fetch expired");
      assertEquals(chunk.items.length, 1);
      chunk.ack.release();
      await src.stop();
    }),
);

Deno.test(
  needs("nats-server", "nats source fetches no more while maxUnsettled chunks await their ack"),
  () =>
    withServer(async (srv) => {
      await publishRaw(srv.url, LINES.slice(0, 10));
      const ac = new AbortController();
      const stats = new SourceStats("fanin");
      const stream = natsSource(sourceConfig(srv.url), {
        name: "fanin",
        log: silentLogger,
        stats,
        signal: ac.signal,
        batch: 2,
        maxUnsettled: 2,
      });
      const r: Running = {
        stream,
        reader: stream.getReader(),
        stats,
        stop: () => Promise.resolve(),
      };
      const a = await nextChunk(r);
      const b = await nextChunk(r);
      assert(a !== null && b !== null);
      const third = nextChunk(r, 3000);
      await new Promise((res) => setTimeout(res, 1200));
      const nc = await connect({ servers: srv.url });
      assertEquals((await consumerState(nc)).num_ack_pending, 4);
      a.ack.release();
      const c = await third;
      assert(c !== null, "no chunk after an ack settled");
      assertEquals(c.items.length, 2);
      b.ack.release();
      c.ack.release();
      ac.abort();
      await deadline(
        (async () => {
          while (!(await r.reader.read()).done) { /* drain */ }
          await stream.finished;
        })(),
        "the nats source to close after its signal aborted",
      );
      const ci = await consumerState(nc);
      assertEquals([ci.num_ack_pending, ci.num_pending], [0, 4]);
      await nc.drain();
    }),
);

Deno.test(
  needs("nats-server", "nats source goes on consuming after the NATS server restarts"),
  () =>
    withServer(async (srv) => {
      await publishRaw(srv.url, LINES.slice(0, 3));
      const src = openSource(srv.url);
      const first = await nextChunk(src);
      assert(first !== null);
      first.ack.release();
      const nc = await connect({ servers: srv.url });
      await waitAllAcked(nc);
      await nc.close();
      await srv.restart();
      await publishRaw(srv.url, LINES.slice(3, 6));
      const got: string[] = [];
      while (got.length < 3) {
        const chunk = await nextChunk(src, 10_000);
        assert(chunk !== null, "nothing after the restart");
        got.push(...chunk.items.map(natsMsgId));
        chunk.ack.release();
      }
      assertEquals(got, envelopes(LINES.slice(3, 6)).map(natsMsgId));
      await src.stop();
    }),
);

Deno.test(
  needs(
    "nats-server",
    "nats source keeps an unsettled chunk from redelivery past the consumer's ack wait",
  ),
  () =>
    withServer(async (srv) => {
      await publishRaw(srv.url, LINES.slice(0, 3));
      const nc = await connect({ servers: srv.url });
      const jsm = await jetstreamManager(nc);
      // An existing consumer with a short ack wait, which the source must respect.
      await jsm.consumers.add("AUDIT", {
        ...natsConsumerConfig("auditpipe", "audit.events"),
        ack_wait: 1_000_000_000,
      });
      const src = openSource(srv.url);
      const chunk = await nextChunk(src);
      assert(chunk !== null);
      // A slow blocking sink; meanwhile the source fetches, which would get any redelivery.
      assertEquals(await nextChunk(src, 2500), null);
      const ci = await consumerState(nc);
      assertEquals([ci.num_redelivered, ci.num_ack_pending], [0, 3]);
      chunk.ack.release();
      await waitAllAcked(nc);
      await src.stop();
      await nc.drain();
    }),
);

Deno.test("nats source retries its start with growing backoff while no server listens, and stops without waiting the backoff out when aborted", async () => {
  const logs: Record<string, unknown>[] = [];
  const ac = new AbortController();
  const stream = natsSource(sourceConfig(`nats://127.0.0.1:${freePort()}`), {
    name: "fanin",
    log: createLogger("debug", (l) => logs.push(JSON.parse(l))),
    stats: new SourceStats("fanin"),
    signal: ac.signal,
    connectTimeout: 500,
  });
  const reader = stream.getReader();
  const read = reader.read();
  const retries = () => logs.filter((l) => l.msg === "NATS source cannot start; retrying");
  await waitFor("three NATS start retries", () => retries().length >= 3);
  const [first, second, third] = retries().map((l) => l.retryInMs as number);
  // 0.5 s, 1 s, 2 s, each stretched by up to 20 % jitter.
  assert(first >= 500 && first <= 600, `first delay ${first}`);
  assert(second >= 1000 && second <= 1200, `second delay ${second}`);
  assert(third >= 2000 && third <= 2400, `third delay ${third}`);
  assert(String(retries()[0].error).length > 0);
  ac.abort();
  assertEquals((await read).done, true);
  await stream.finished;
  // The abort ended the wait: no fourth attempt was made after it.
  assertEquals(retries().length, 3);
});
