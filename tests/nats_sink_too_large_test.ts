/**
 * The NATS sink and an event larger than the server's `max_payload`: dropped as too large
 * on its own, without retries, while the rest of the batch is published.
 *
 * @module
 */
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { createNatsSink, type NatsSinkConfig } from "../backends/nats.ts";
import type { SinkContext } from "../backends/sink.ts";
import { sinkSchema } from "../pipeline/config/schema.ts";
import { systemClock } from "../pipeline/core/clock.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import { startNatsServer } from "./helpers/nats.ts";
import { testEnvelope } from "./helpers/events.ts";
import { needs } from "./helpers/external.ts";

Deno.test(
  needs(
    "nats-server",
    "nats sink: an event over max_payload is reported dropped as too_large, not retried; the others are published",
  ),
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "auditpipe-nats-payload-" });
    await Deno.writeTextFile(`${dir}/server.conf`, "max_payload: 4096\n");
    const srv = await startNatsServer({ args: ["-c", `${dir}/server.conf`] });
    try {
      const ctx: SinkContext = {
        name: "bus",
        log: silentLogger,
        clock: systemClock,
        stats: new SinkStats("bus"),
        signal: new AbortController().signal,
      };
      const cfg = sinkSchema.parse({ type: "nats", servers: [srv.url], stream: "AUDIT" });
      const sink = await createNatsSink(cfg as NatsSinkConfig, ctx, { initialBackoff: 1 });
      const big = testEnvelope("big", { annotations: { pad: "x".repeat(8192) } });
      const result = await sink.write([testEnvelope("a"), big, testEnvelope("b")]);
      await sink.close();
      assert.ok(result, "the write resolved without saying an event was left out");
      assert.deepEqual(result.dropped.map((d) => [d.index, d.reason]), [[1, "too_large"]]);
      assert.match(result.dropped[0].error.message, /^nats sink bus: .*max_payload/);
      assert.equal(ctx.stats.retries, 0);
      const nc = await connect({ servers: srv.url });
      const info = await (await jetstreamManager(nc)).streams.info("AUDIT");
      assert.equal(info.state.messages, 2);
      await nc.drain();
    } finally {
      await srv.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
