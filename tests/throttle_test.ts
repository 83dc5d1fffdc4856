import assert from "node:assert/strict";
import { Ack, NO_ACK } from "../pipeline/core/ack.ts";
import type { Batch, Chunk, Envelope } from "../pipeline/core/envelope.ts";
import { FakeClock, flushMicrotasks } from "../pipeline/core/clock.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import { throttle, TokenBucket } from "../pipeline/stages/throttle.ts";
import { batcher } from "../pipeline/stages/batcher.ts";
import { testEnvelope } from "./helpers/events.ts";

const env = (): Envelope => testEnvelope(crypto.randomUUID());

function batch(ack: Ack = NO_ACK): Batch {
  return { items: [env()], acks: [ack] };
}

// --- the token bucket ---

Deno.test("the bucket starts full: burst takes need no wait", () => {
  const b = new TokenBucket(10, 3, 0);
  assert.deepEqual([b.take(0), b.take(0), b.take(0)], [0, 0, 0]);
});

Deno.test("an empty bucket makes each taker wait its turn at 1/qps", () => {
  const b = new TokenBucket(10, 2, 0);
  b.take(0);
  b.take(0);
  assert.equal(b.take(0), 100);
  assert.equal(b.take(0), 200, "a second taker queues behind the first reservation");
  assert.equal(b.tokens(0), -2);
});

Deno.test("tokens refill continuously, not in whole steps", () => {
  const b = new TokenBucket(4, 1, 0);
  b.take(0);
  assert.equal(b.tokens(125), 0.5);
  assert.equal(b.take(125), 125, "half a token there, half still to come at 4/s");
});

Deno.test("refilling stops at burst however long the bucket was idle", () => {
  const b = new TokenBucket(10, 3, 0);
  b.take(0);
  assert.equal(b.tokens(3_600_000), 3);
  assert.deepEqual([b.take(3_600_000), b.take(3_600_000), b.take(3_600_000)], [0, 0, 0]);
  assert.equal(b.take(3_600_000), 100);
});

Deno.test("a clock that goes backwards adds no tokens", () => {
  const b = new TokenBucket(10, 1, 1000);
  b.take(1000);
  assert.equal(b.tokens(500), 0);
  assert.equal(b.take(500), 100);
  assert.equal(b.tokens(900), -1);
});

// --- the stage ---

function rig(cfg: { enabled: boolean; qps: number; burst: number }) {
  const clock = new FakeClock();
  const stats = new SinkStats("test");
  const stage = throttle(cfg, { clock, stats });
  const writer = stage.writable.getWriter();
  const got: { at: number; batch: Batch }[] = [];
  const reading = (async () => {
    for await (const b of stage.readable) got.push({ at: clock.now(), batch: b });
  })();
  reading.catch(() => {}); // a cancelled stream errors the reader; tests check acks instead
  const write = (b: Batch) => writer.write(b).catch(() => {});
  const close = async () => {
    await writer.close();
    await reading;
  };
  return { clock, stats, stage, writer, got, write, close };
}

Deno.test("burst batches go at once, then one every 1/qps", async () => {
  const r = rig({ enabled: true, qps: 10, burst: 3 });
  for (let i = 0; i < 6; i++) r.write(batch());
  await flushMicrotasks();
  assert.deepEqual(r.got.map((g) => g.at), [0, 0, 0]);
  await r.clock.advance(100);
  await r.clock.advance(100);
  await r.clock.advance(100);
  await r.close();
  assert.deepEqual(r.got.map((g) => g.at), [0, 0, 0, 100, 200, 300]);
  assert.ok(Math.abs(r.stats.throttleWaitSeconds - 0.3) < 1e-9);
});

Deno.test("an idle throttle refills so a later burst goes at once again", async () => {
  const r = rig({ enabled: true, qps: 10, burst: 2 });
  r.write(batch());
  r.write(batch());
  await flushMicrotasks();
  await r.clock.advance(60_000);
  r.write(batch());
  r.write(batch());
  r.write(batch());
  await flushMicrotasks();
  assert.deepEqual(r.got.map((g) => g.at), [0, 0, 60_000, 60_000]);
  await r.clock.advance(100);
  await r.close();
  assert.deepEqual(r.got.map((g) => g.at), [0, 0, 60_000, 60_000, 60_100]);
  assert.ok(Math.abs(r.stats.throttleWaitSeconds - 0.1) < 1e-9);
});

Deno.test("while a batch waits for a token the throttle takes no other batch", async () => {
  const r = rig({ enabled: true, qps: 1, burst: 1 });
  const writes = [r.write(batch()), r.write(batch()), r.write(batch())];
  let done = 0;
  for (const w of writes) w.then(() => done++);
  await flushMicrotasks();
  assert.equal(r.got.length, 1);
  assert.equal(done, 1, "the second batch is held in transform(), the third is not taken");
  assert.equal(r.writer.desiredSize! <= 0, true, "upstream sees backpressure");
  await r.clock.advance(1000);
  assert.equal(r.got.length, 2);
  await r.clock.advance(1000);
  await r.close();
  assert.deepEqual(r.got.map((g) => g.at), [0, 1000, 2000]);
});

Deno.test("a disabled throttle passes batches at once and never waits", async () => {
  const r = rig({ enabled: false, qps: 1, burst: 1 });
  for (let i = 0; i < 5; i++) r.write(batch());
  await r.close();
  assert.deepEqual(r.got.map((g) => g.at), [0, 0, 0, 0, 0]);
  assert.equal(r.stats.throttleWaitSeconds, 0);
  assert.equal(r.clock.sleeping, 0);
});

Deno.test("the throttle forwards acks untouched; the writer releases them", async () => {
  const r = rig({ enabled: true, qps: 10, burst: 1 });
  const a = new Ack();
  const b = new Ack();
  r.write(batch(a));
  r.write(batch(b));
  await r.clock.advance(100);
  await r.close();
  assert.deepEqual(r.got.map((g) => g.batch.acks), [[a], [b]]);
  assert.equal(a.done || b.done, false, "waiting or passing never settles an ack");
});

Deno.test("cancelling during a wait ends the wait and fails the waiting batch's acks", async () => {
  const clock = new FakeClock();
  const stage = throttle({ enabled: true, qps: 1, burst: 1 }, {
    clock,
    stats: new SinkStats("test"),
  });
  const writer = stage.writable.getWriter();
  const reader = stage.readable.getReader();
  const first = new Ack();
  const waiting = new Ack();
  writer.write(batch(first)).catch(() => {});
  writer.write(batch(waiting)).catch(() => {});
  assert.equal((await reader.read()).value?.acks[0], first);
  const second = reader.read(); // the second batch is taken only when asked for
  await flushMicrotasks();
  assert.equal(clock.sleeping, 1);
  await reader.cancel(new Error("shutdown timeout"));
  assert.equal((await second).done, true);
  await flushMicrotasks();
  assert.equal(clock.sleeping, 0, "the wait was aborted");
  assert.equal(waiting.done, true);
  assert.equal((await waiting.settled)?.message, "shutdown timeout");
  assert.equal(first.done, false, "the batch already passed belongs to the writer");
});

Deno.test("batcher then throttle: Go's webhook defaults send 15 full batches at once, then 10 a second", async () => {
  const clock = new FakeClock();
  const stats = new SinkStats("webhook");
  const chunks: Chunk[] = Array.from({ length: 20 * 400 }, () => ({ items: [env()], ack: NO_ACK }));
  const times: number[] = [];
  const sizes: number[] = [];
  const done = ReadableStream.from(chunks)
    .pipeThrough(batcher({ maxSize: 400, maxWait: 30_000 }, { clock }))
    .pipeThrough(throttle({ enabled: true, qps: 10, burst: 15 }, { clock, stats }))
    .pipeTo(
      new WritableStream({
        write(b) {
          times.push(clock.now());
          sizes.push(b.items.length);
        },
      }),
    );
  for (let i = 0; i < 10; i++) await clock.advance(100);
  await done;
  assert.deepEqual(sizes, Array(20).fill(400));
  assert.deepEqual(times, [...Array(15).fill(0), 100, 200, 300, 400, 500]);
  assert.ok(Math.abs(stats.throttleWaitSeconds - 0.5) < 1e-9);
});
