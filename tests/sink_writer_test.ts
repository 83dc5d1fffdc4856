import { assert, assertEquals } from "./helpers/assert.ts";
import { testEnvelope } from "./helpers/events.ts";
import { Ack } from "../pipeline/core/ack.ts";
import { systemClock } from "../pipeline/core/clock.ts";
import type { Batch, Envelope } from "../pipeline/core/envelope.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { sinkWriter } from "../pipeline/stages/sink_writer.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import { type Sink, SinkError } from "../backends/sink.ts";

const env = (id: string): Envelope => testEnvelope(id);

function batch(id: string): Batch {
  return { items: [env(id)], acks: [new Ack()] };
}

Deno.test("sink writer: maxInFlight bounds concurrent writes, and close waits for them all", async () => {
  let active = 0;
  let peak = 0;
  const done: string[] = [];
  const sink: Sink = {
    async write(items) {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 5));
      done.push(items[0].event.auditID);
      active--;
    },
    close: () => Promise.resolve(),
  };
  const stats = new SinkStats("s");
  const w = sinkWriter(sink, {
    mode: "blocking",
    maxInFlight: 3,
    stats,
    log: silentLogger,
    clock: systemClock,
  })
    .getWriter();
  const batches = Array.from({ length: 12 }, (_, i) => batch(`b${i}`));
  for (const b of batches) {
    stats.received++;
    await w.write(b);
  }
  await w.close();
  assertEquals(peak, 3);
  assertEquals(done.length, 12);
  assertEquals(stats.written, 12);
  for (const b of batches) assertEquals(await b.acks[0].settled, null);
});

Deno.test("sink writer: maxInFlight 1 keeps batches in order", async () => {
  const done: string[] = [];
  const sink: Sink = {
    async write(items) {
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      done.push(items[0].event.auditID);
    },
    close: () => Promise.resolve(),
  };
  const w = sinkWriter(sink, {
    mode: "batch",
    stats: new SinkStats("s"),
    log: silentLogger,
    clock: systemClock,
  })
    .getWriter();
  for (let i = 0; i < 10; i++) await w.write(batch(`b${i}`));
  await w.close();
  assertEquals(done, Array.from({ length: 10 }, (_, i) => `b${i}`));
});

Deno.test("sink writer: a SinkError's reason is the drop reason; blocking-strict fails the ack with it", async () => {
  const sink: Sink = {
    write: () => Promise.reject(new SinkError("gave up after 5 attempts", "retries_exhausted")),
    close: () => Promise.resolve(),
  };
  const stats = new SinkStats("s");
  const w = sinkWriter(sink, {
    mode: "blocking-strict",
    stats,
    log: silentLogger,
    clock: systemClock,
  })
    .getWriter();
  const b = batch("x");
  await w.write(b);
  await w.close();
  assertEquals(stats.dropped.retries_exhausted, 1);
  assertEquals((await b.acks[0].settled)?.message, "gave up after 5 attempts");
  assert(stats.failingSince !== null);
});
