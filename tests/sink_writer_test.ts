import { assert, assertEquals } from "./helpers/assert.ts";
import { testEnvelope } from "./helpers/events.ts";
import { Ack } from "../pipeline/core/ack.ts";
import { systemClock } from "../pipeline/core/clock.ts";
import type { Batch, Envelope } from "../pipeline/core/envelope.ts";
import { createLogger, silentLogger } from "../pipeline/core/log.ts";
import { createLogSink } from "../backends/log.ts";
import { sinkWriter, type SinkWriterDeps } from "../pipeline/stages/sink_writer.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import { type Sink, SinkError } from "../backends/sink.ts";

const env = (id: string): Envelope => testEnvelope(id);

/** A writer over `sink` with `deps`: silent, on the system clock, counting into fresh stats. */
function writerOf(sink: Sink, deps: Partial<SinkWriterDeps> & Pick<SinkWriterDeps, "mode">) {
  return sinkWriter(sink, {
    stats: new SinkStats("s"),
    log: silentLogger,
    clock: systemClock,
    ...deps,
  }).getWriter();
}

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
  const w = writerOf(sink, { mode: "blocking", maxInFlight: 3, stats });
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
  const w = writerOf(sink, { mode: "batch" });
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
  const w = writerOf(sink, { mode: "blocking-strict", stats });
  const b = batch("x");
  await w.write(b);
  await w.close();
  assertEquals(stats.dropped.retries_exhausted, 1);
  assertEquals((await b.acks[0].settled)?.message, "gave up after 5 attempts");
  assert(stats.failingSince !== null);
});

Deno.test("sink writer: events a sink left out count as dropped by their reason, the rest as written, and blocking-strict still releases the acks", async () => {
  const sink: Sink = {
    write: () =>
      Promise.resolve({
        dropped: [{ index: 1, reason: "too_large", error: new Error("write length 9 exceeds 8") }],
      }),
    close: () => Promise.resolve(),
  };
  const stats = new SinkStats("s");
  const logged: string[] = [];
  const w = writerOf(sink, {
    mode: "blocking-strict",
    stats,
    log: createLogger("debug", (l) => logged.push(l)),
  });
  const b: Batch = { items: [env("a"), env("big"), env("b")], acks: [new Ack(), new Ack()] };
  stats.received += 3;
  await w.write(b);
  await w.close();
  assertEquals(stats.written, 2);
  assertEquals(stats.dropped.too_large, 1);
  assertEquals(stats.droppedTotal, 1);
  assertEquals(stats.buffered, 0);
  assertEquals(stats.failingSince, null);
  for (const ack of b.acks) assertEquals(await ack.settled, null);
  const record = logged.map((l) => JSON.parse(l)).find((r) => r.reason === "too_large");
  assert(record, `no log of the dropped event in ${logged.join("")}`);
  assertEquals(record.level, "error");
});

Deno.test("sink writer + log sink: one oversized event in a merged batch is dropped as too_large; the other requests succeed and their events are written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-sinkwriter-" });
  try {
    const path = `${dir}/audit.log`;
    const stats = new SinkStats("local");
    const ctx = {
      name: "local",
      log: silentLogger,
      clock: systemClock,
      stats,
      signal: new AbortController().signal,
    };
    const sink = await createLogSink({
      path,
      format: "json",
      fsync: "never",
      rotate: { maxSize: 1, maxBackup: 0, maxAge: 0, compress: false },
    }, ctx);
    const w = writerOf(sink, { mode: "blocking-strict", stats });
    const big = testEnvelope("big", { annotations: { pad: "x".repeat(1024 * 1024) } });
    // Three requests merged into one batch, the oversized event in the middle one.
    const b: Batch = {
      items: [env("r1"), big, env("r2"), env("r3")],
      acks: [new Ack(), new Ack(), new Ack()],
    };
    stats.received += 4;
    await w.write(b);
    await w.close();
    for (const ack of b.acks) assertEquals(await ack.settled, null);
    assertEquals(stats.written, 3);
    assertEquals(stats.dropped.too_large, 1);
    assertEquals(stats.dropped.write_error, 0);
    const ids = (await Deno.readTextFile(path)).trimEnd().split("\n").map((l) =>
      JSON.parse(l).auditID
    );
    assertEquals(ids, ["r1", "r2", "r3"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
