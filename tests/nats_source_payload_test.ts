/** What the NATS source keeps of a message: the event's bytes, in memory of their own. */
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { assertEquals } from "./helpers/assert.ts";
import { startNatsServer } from "./helpers/nats.ts";
import { needs } from "./helpers/external.ts";
import { numberedEvents } from "./helpers/events.ts";
import { natsSource, type NatsSourceConfig } from "../pipeline/ingest/nats.ts";
import { sourceSchema } from "../pipeline/config/schema.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { SourceStats } from "../pipeline/core/stats.ts";
import { deadline } from "./helpers/wait.ts";

Deno.test(
  needs(
    "nats-server",
    "nats source keeps the events' bytes in plain buffers of their own, not views pinning the client's read buffer",
  ),
  async () => {
    const srv = await startNatsServer();
    const ac = new AbortController();
    try {
      const nc = await connect({ servers: srv.url });
      await (await jetstreamManager(nc)).streams.add({ name: "AUDIT", subjects: ["audit.events"] });
      const js = jetstream(nc);
      const lines = numberedEvents("p", 0, 20).map((e) =>
        JSON.stringify({ kind: "Event", apiVersion: "audit.k8s.io/v1", ...e })
      );
      // Published together, so that they arrive in one read of the socket.
      await Promise.all(lines.map((l) => js.publish("audit.events", `${l}\n`)));
      await nc.drain();

      const cfg = sourceSchema.parse({ type: "nats", servers: [srv.url] }) as NatsSourceConfig;
      const stream = natsSource(cfg, {
        name: "in",
        log: silentLogger,
        stats: new SourceStats("in"),
        signal: ac.signal,
      });
      const reader = stream.getReader();
      const got: Uint8Array[] = [];
      while (got.length < lines.length) {
        const { value } = await deadline(reader.read(), "a chunk from the nats source");
        for (const e of value!.items) got.push(e.raw!);
        value!.ack.release();
      }
      const dec = new TextDecoder();
      assertEquals(got.map((b) => dec.decode(b)), lines);
      // What the held events pin is their own bytes (a buffer per chunk), no more.
      const buffers = new Set(got.map((raw) => raw.buffer));
      const pinned = [...buffers].reduce((n, b) => n + b.byteLength, 0);
      assertEquals(pinned, got.reduce((n, raw) => n + raw.byteLength, 0));
      for (const raw of got) assertEquals(Object.getPrototypeOf(raw), Uint8Array.prototype);
      ac.abort();
      while (!(await reader.read()).done) { /* drain */ }
      await stream.finished;
    } finally {
      ac.abort();
      await srv.stop();
    }
  },
);
