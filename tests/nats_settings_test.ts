/**
 * The NATS keys that decide how auditpipe creates streams and consumers: `streamSettings`
 * (replicas, limits, duplicate window) on sinks and sources, `ackWait` and `maxAckPending` on
 * sources; the config's checks and what JetStream gets.
 */
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { startNatsServer } from "./helpers/nats.ts";
import { needs } from "./helpers/external.ts";
import { testEnvelope } from "./helpers/events.ts";
import { loadConfigText } from "../pipeline/config/load.ts";
import { ConfigError } from "../pipeline/config/errors.ts";
import { sinkSchema, sourceSchema } from "../pipeline/config/schema.ts";
import { createNatsSink, type NatsSinkConfig } from "../backends/nats.ts";
import { natsSource, type NatsSourceConfig } from "../pipeline/ingest/nats.ts";
import { NATS_STREAM_DEFAULTS, natsStreamConfig } from "../pipeline/core/nats_connect.ts";
import { createLogger, silentLogger } from "../pipeline/core/log.ts";
import { SinkStats, SourceStats } from "../pipeline/core/stats.ts";
import { systemClock } from "../pipeline/core/clock.ts";
import type { SinkContext } from "../backends/sink.ts";
import { waitFor } from "./helpers/wait.ts";

function problems(text: string): string[] {
  try {
    loadConfigText(text, "pipeline.yaml", () => undefined);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split("\n");
    throw err;
  }
  return [];
}

/** A nats sink config publishing to stream AUDIT on `url` with `streamSettings`. */
function auditSinkConfig(url: string, streamSettings: Record<string, unknown>): NatsSinkConfig {
  return sinkSchema.parse({
    type: "nats",
    servers: [url],
    stream: "AUDIT",
    streamSettings,
  }) as NatsSinkConfig;
}

function sinkContext(name: string): SinkContext {
  return {
    name,
    log: silentLogger,
    clock: systemClock,
    stats: new SinkStats(name),
    signal: new AbortController().signal,
  };
}

Deno.test("config: NATS streams default to one replica, 24 hours and a 2 minute duplicate window; consumers to a 30 s ack wait", () => {
  const { config } = loadConfigText(
    "sources:\n  - type: nats\nsinks:\n  - type: nats\n    stream: AUDIT\n",
    "pipeline.yaml",
    () => undefined,
  );
  const source = config.sources[0] as NatsSourceConfig;
  const sink = config.sinks[0] as NatsSinkConfig;
  // Unset: created with the defaults, and an existing stream is not compared with them.
  assertEquals([source.streamSettings, sink.streamSettings], [undefined, undefined]);
  assertEquals(NATS_STREAM_DEFAULTS, { replicas: 1, maxAge: 86_400_000, duplicateWindow: 120_000 });
  assertEquals(source.ackWait, 30_000);
  assertEquals(source.maxAckPending, 10_000);
  const empty = sinkSchema.parse({ type: "nats", streamSettings: {} }) as NatsSinkConfig;
  assertEquals(empty.streamSettings, {
    replicas: 1,
    maxAge: 86_400_000,
    duplicateWindow: 120_000,
  });
  assertEquals(natsStreamConfig("AUDIT", "audit.events", NATS_STREAM_DEFAULTS), {
    name: "AUDIT",
    subjects: ["audit.events"],
    storage: "file",
    num_replicas: 1,
    max_age: 86_400_000 * 1e6,
    duplicate_window: 120_000 * 1e6,
  } as ReturnType<typeof natsStreamConfig>);
});

Deno.test("config: NATS streamSettings, ackWait and maxAckPending take durations and sizes", () => {
  const sink = sinkSchema.parse({
    type: "nats",
    stream: "AUDIT",
    streamSettings: { replicas: 3, maxAge: "72h", maxBytes: "50GiB", duplicateWindow: "10m" },
  }) as NatsSinkConfig;
  assertEquals(sink.streamSettings, {
    replicas: 3,
    maxAge: 72 * 3_600_000,
    maxBytes: 50 * 1024 ** 3,
    duplicateWindow: 600_000,
  });
  const source = sourceSchema.parse({
    type: "nats",
    ackWait: "5s",
    maxAckPending: 500,
    streamSettings: { replicas: 5, maxAge: 0 },
  }) as NatsSourceConfig;
  assertEquals([source.ackWait, source.maxAckPending], [5_000, 500]);
  assertEquals(source.streamSettings, { replicas: 5, maxAge: 0, duplicateWindow: 120_000 });
  assertEquals(
    natsStreamConfig("AUDIT", "audit.events", sink.streamSettings!).max_bytes,
    50 * 1024 ** 3,
  );
});

Deno.test("config: NATS replicas outside 1..5, a duplicate window longer than maxAge and an ack wait under 1s are named by line and key", () => {
  assertEquals(
    problems(`sources:
  - type: nats
    ackWait: 500ms
    maxAckPending: 0
sinks:
  - type: nats
    streamSettings: {replicas: 0, maxAge: 1h, duplicateWindow: 2h}
  - type: nats
    streamSettings:
      replicas: 6
  - type: nats
    streamSettings:
      replicas: 2.5
      duplicateWindow: 0
`),
    [
      "pipeline.yaml:3:5 sources[0].ackWait: must be a duration of at least 1s, got 500ms",
      "pipeline.yaml:4:5 sources[0].maxAckPending: must be a positive integer, got 0",
      "pipeline.yaml:7:22 sinks[0].streamSettings.replicas: must be a whole number from 1 to 5, got 0",
      "pipeline.yaml:7:47 sinks[0].streamSettings.duplicateWindow: must not be longer than maxAge (JetStream refuses the stream)",
      "pipeline.yaml:10:7 sinks[1].streamSettings.replicas: must be a whole number from 1 to 5, got 6",
      "pipeline.yaml:13:7 sinks[2].streamSettings.replicas: must be a whole number from 1 to 5, got 2.5",
      "pipeline.yaml:14:7 sinks[2].streamSettings.duplicateWindow: must be a duration above 0",
    ],
  );
});

Deno.test(
  needs(
    "nats-server",
    "nats sink creates its stream with streamSettings, and JetStream drops a message id seen within the duplicate window",
  ),
  async () => {
    const srv = await startNatsServer();
    try {
      const cfg = auditSinkConfig(srv.url, {
        maxAge: "1h",
        maxBytes: "64MiB",
        duplicateWindow: "30s",
      });
      const sink = await createNatsSink(cfg, sinkContext("s"));
      const items = [testEnvelope("a"), testEnvelope("b")];
      await sink.write(items);
      await sink.write(items); // a retry: the same msg ids within the window
      await sink.close();
      const nc = await connect({ servers: srv.url });
      const info = await (await jetstreamManager(nc)).streams.info("AUDIT");
      assertEquals(info.config.num_replicas, 1);
      assertEquals(info.config.max_age, 3_600_000 * 1e6);
      assertEquals(info.config.max_bytes, 64 * 1024 ** 2);
      assertEquals(info.config.duplicate_window, 30_000 * 1e6);
      assertEquals(info.state.messages, 2);
      await nc.drain();
    } finally {
      await srv.stop();
    }
  },
);

Deno.test(
  needs(
    "nats-server",
    "nats sink creation fails naming the replicas when a single server cannot place a 3-replica stream",
  ),
  async () => {
    const srv = await startNatsServer();
    try {
      const cfg = auditSinkConfig(srv.url, { replicas: 3 });
      await assertRejects(
        () => createNatsSink(cfg, sinkContext("fleet"), { connectTimeout: 2_000 }),
        /nats sink fleet: JetStream stream AUDIT at .*: cannot create JetStream stream AUDIT with 3 replicas: /,
      );
    } finally {
      await srv.stop();
    }
  },
);

Deno.test(
  needs(
    "nats-server",
    "nats source creates its stream with streamSettings and its consumer with ackWait and maxAckPending",
  ),
  async () => {
    const srv = await startNatsServer();
    const ac = new AbortController();
    const stats = new SourceStats("in");
    try {
      const cfg = sourceSchema.parse({
        type: "nats",
        servers: [srv.url],
        consumer: "collectors",
        ackWait: "4s",
        maxAckPending: 77,
        streamSettings: { duplicateWindow: "1m", maxAge: "2h" },
      }) as NatsSourceConfig;
      const stream = natsSource(cfg, { name: "in", log: silentLogger, stats, signal: ac.signal });
      await waitFor("the source to be ready", () => stats.ready);
      const nc = await connect({ servers: srv.url });
      const jsm = await jetstreamManager(nc);
      const s = await jsm.streams.info("AUDIT");
      assertEquals([s.config.duplicate_window, s.config.max_age], [60_000 * 1e6, 7_200_000 * 1e6]);
      const c = await jsm.consumers.info("AUDIT", "collectors");
      assertEquals([c.config.ack_wait, c.config.max_ack_pending], [4_000 * 1e6, 77]);
      await nc.drain();
      ac.abort();
      const reader = stream.getReader();
      while (!(await reader.read()).done) { /* drain */ }
      await stream.finished;
      assert(!stats.ready);
    } finally {
      ac.abort();
      await srv.stop();
    }
  },
);

Deno.test(
  needs(
    "nats-server",
    "nats sink uses an existing stream as it is, warning only when streamSettings are set and differ",
  ),
  async () => {
    const srv = await startNatsServer();
    try {
      const nc = await connect({ servers: srv.url });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({
        name: "AUDIT",
        subjects: ["audit.events"],
        duplicate_window: 30_000 * 1e6,
      });
      const warnings = async (streamSettings?: Record<string, unknown>) => {
        const lines: string[] = [];
        const ctx = { ...sinkContext("s"), log: createLogger("info", (l) => lines.push(l)) };
        const cfg = sinkSchema.parse({
          type: "nats",
          servers: [srv.url],
          stream: "AUDIT",
          streamSettings,
        }) as NatsSinkConfig;
        await (await createNatsSink(cfg, ctx)).close();
        return lines.map((l) => JSON.parse(l)).filter((r) => r.level === "warn");
      };
      assertEquals(await warnings(), []);
      const [w, ...more] = await warnings({ replicas: 1, duplicateWindow: "1m" });
      assertEquals(more, []);
      assertEquals(
        w.msg,
        "JetStream stream differs from streamSettings; leaving the stream as it is",
      );
      assertEquals([w.duplicateWindowMs, w.wantDuplicateWindowMs], [30_000, 60_000]);
      assertEquals((await jsm.streams.info("AUDIT")).config.duplicate_window, 30_000 * 1e6);
      await nc.drain();
    } finally {
      await srv.stop();
    }
  },
);
