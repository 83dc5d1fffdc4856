import assert from "node:assert/strict";
import { Ack, NO_ACK } from "../pipeline/core/ack.ts";
import type { Batch, Chunk, Envelope } from "../pipeline/core/envelope.ts";
import { decodeLine } from "../pipeline/core/decode.ts";
import { FakeClock, flushMicrotasks } from "../pipeline/core/clock.ts";
import { batcher } from "../pipeline/stages/batcher.ts";
import { AUDIT_LOG_LINES, auditLogLines } from "./data/corpus.ts";
import { testEnvelope } from "./helpers/events.ts";

let seq = 0;
const env = (): Envelope => testEnvelope(`id-${seq++}`);

function envs(n: number): Envelope[] {
  return Array.from({ length: n }, env);
}

function chunk(n: number, ack: Ack = NO_ACK): Chunk {
  return { items: envs(n), ack };
}

/** A batcher with a writer the test feeds and a reader that records when batches arrive. */
function rig(maxSize: number, maxWait: number) {
  const clock = new FakeClock();
  const stage = batcher({ maxSize, maxWait }, { clock });
  const writer = stage.writable.getWriter();
  const got: { at: number; batch: Batch }[] = [];
  const reading = (async () => {
    for await (const batch of stage.readable) got.push({ at: clock.now(), batch });
  })();
  reading.catch(() => {}); // an aborted stream errors the reader; tests check acks instead
  const write = (c: Chunk) => {
    // Not awaited: a write settles only once the batcher has taken the chunk.
    writer.write(c).catch(() => {});
  };
  const close = async () => {
    await writer.close();
    await reading;
  };
  const sizes = () => got.map((g) => g.batch.items.length);
  return { clock, writer, got, write, close, sizes, stage };
}

Deno.test("a batch closes at maxSize without waiting for the timer", async () => {
  const r = rig(10, 60_000);
  for (let i = 0; i < 11; i++) r.write(chunk(1));
  await flushMicrotasks();
  assert.deepEqual(r.sizes(), [10]);
  assert.equal(r.got[0].at, 0);
  assert.deepEqual(r.clock.pending(), [60_000], "the 11th event started a fresh timer");
  await r.close();
  assert.deepEqual(r.sizes(), [10, 1]);
});

Deno.test("a partial batch closes maxWait after its first event, not after the last", async () => {
  const r = rig(10, 1000);
  r.write(chunk(1));
  await r.clock.advance(500);
  r.write(chunk(1));
  await r.clock.advance(499);
  assert.deepEqual(r.sizes(), [], "not before maxWait");
  await r.clock.advance(1);
  assert.deepEqual(r.sizes(), [2]);
  assert.equal(r.got[0].at, 1000);
  assert.equal(r.clock.sleeping, 0, "no timer runs while nothing is pending");
  await r.clock.advance(10_000);
  assert.deepEqual(r.sizes(), [2], "no empty batches");
  await r.close();
  assert.deepEqual(r.sizes(), [2]);
});

Deno.test("the next batch's timer starts with its own first event", async () => {
  const r = rig(10, 1000);
  r.write(chunk(1));
  await r.clock.advance(1000);
  await r.clock.advance(300);
  r.write(chunk(3));
  await r.clock.advance(999);
  assert.deepEqual(r.sizes(), [1]);
  await r.clock.advance(1);
  assert.deepEqual(r.got.map((g) => [g.at, g.batch.items.length]), [[1000, 1], [2300, 3]]);
  await r.close();
});

Deno.test("a full batch cancels its timer so it cannot close the next batch early", async () => {
  const r = rig(3, 1000);
  r.write(chunk(2));
  await r.clock.advance(900);
  r.write(chunk(2)); // fills the first batch at t=900; one event starts the next
  await flushMicrotasks();
  assert.deepEqual(r.sizes(), [3]);
  assert.deepEqual(r.clock.pending(), [1000]);
  await r.clock.advance(100); // the old batch's deadline passes
  assert.deepEqual(r.sizes(), [3]);
  await r.clock.advance(900);
  assert.deepEqual(r.got.map((g) => [g.at, g.batch.items.length]), [[900, 3], [1900, 1]]);
  await r.close();
});

Deno.test("maxSize 1 sends each event alone and starts no timer", async () => {
  const r = rig(1, 1000);
  r.write(chunk(3));
  r.write(chunk(1));
  await flushMicrotasks();
  assert.deepEqual(r.sizes(), [1, 1, 1, 1]);
  assert.equal(r.clock.sleeping, 0);
  await r.close();
  assert.deepEqual(r.sizes(), [1, 1, 1, 1]);
});

Deno.test("closing sends what is pending at once, without waiting for the timer", async () => {
  const r = rig(10, 30_000);
  r.write(chunk(3));
  await flushMicrotasks();
  assert.deepEqual(r.sizes(), []);
  await r.close();
  assert.deepEqual(r.sizes(), [3]);
  assert.equal(r.got[0].at, 0);
  assert.equal(r.clock.sleeping, 0, "the timer was stopped");
});

Deno.test("closing drains a backlog in full batches", async () => {
  const r = rig(10, 30_000);
  r.write(chunk(25));
  for (let i = 0; i < 12; i++) r.write(chunk(1));
  await r.close();
  assert.deepEqual(r.sizes(), [10, 10, 10, 7]);
  assert.ok(r.got.every((g) => g.at === 0));
});

Deno.test("events keep their order across chunks and batches", async () => {
  const r = rig(4, 1000);
  const chunks = [chunk(3), chunk(1), chunk(6), chunk(2)];
  for (const c of chunks) r.write(c);
  await r.close();
  assert.deepEqual(
    r.got.flatMap((g) => g.batch.items),
    chunks.flatMap((c) => c.items),
  );
  assert.deepEqual(r.sizes(), [4, 4, 4]);
});

Deno.test("an empty chunk is released and makes no batch", async () => {
  const r = rig(10, 1000);
  const ack = new Ack();
  r.write({ items: [], ack });
  await r.close();
  assert.deepEqual(r.sizes(), []);
  assert.equal(ack.done, true);
});

// --- acks ---

/** Releases every ack of a batch once, as the sink writer does after writing it. */
function written(b: Batch): void {
  for (const ack of b.acks) ack.release();
}

Deno.test("merged chunks: a batch lists each ack once and an ack settles with its last batch", async () => {
  const r = rig(5, 1000);
  const a = new Ack();
  const b = new Ack();
  r.write(chunk(3, a));
  r.write(chunk(4, b));
  await r.close();
  assert.deepEqual(r.sizes(), [5, 2]);
  assert.deepEqual(r.got[0].batch.acks, [a, b]);
  assert.deepEqual(r.got[1].batch.acks, [b]);
  assert.equal(a.done, false, "nothing settles before it is written");
  assert.equal(b.done, false);
  written(r.got[0].batch);
  assert.equal(a.done, true);
  assert.equal(b.done, false, "b's remaining events are not written yet");
  written(r.got[1].batch);
  assert.equal(b.done, true);
  assert.equal(await b.settled, null);
});

Deno.test("a chunk spread over k batches holds its ack k times, taken before the first leaves", async () => {
  const clock = new FakeClock();
  const ack = new Ack();
  const batches: Batch[] = [];
  // Release each batch's acks the moment it arrives, as a fast sink would: if the extra holds
  // were taken after emitting, the ack would settle after the first batch.
  const sink = new WritableStream<Batch>({
    write(b) {
      batches.push(b);
      written(b);
      if (batches.length < 3) {
        assert.equal(ack.done, false, `settled after batch ${batches.length}`);
      }
    },
  });
  await ReadableStream.from([chunk(7, ack)])
    .pipeThrough(batcher({ maxSize: 3, maxWait: 1000 }, { clock }))
    .pipeTo(sink);
  assert.deepEqual(batches.map((b) => b.items.length), [3, 3, 1]);
  assert.ok(batches.every((b) => b.acks.length === 1 && b.acks[0] === ack));
  assert.equal(ack.done, true);
});

Deno.test("the same ack sent with two chunks is listed once and its extra hold ends", async () => {
  const r = rig(10, 1000);
  const ack = new Ack();
  ack.hold(1); // the second chunk's hold
  r.write(chunk(2, ack));
  r.write(chunk(2, ack));
  await r.close();
  assert.deepEqual(r.got[0].batch.acks, [ack]);
  assert.equal(ack.done, false);
  written(r.got[0].batch);
  assert.equal(ack.done, true);
});

Deno.test("NO_ACK chunks make batches that list NO_ACK once", async () => {
  const r = rig(10, 1000);
  for (let i = 0; i < 4; i++) r.write(chunk(2));
  await r.close();
  assert.deepEqual(r.got[0].batch.acks, [NO_ACK]);
});

Deno.test("aborting the stream fails the acks of events still pending", async () => {
  const r = rig(10, 1000);
  const ack = new Ack();
  r.write(chunk(3, ack));
  await flushMicrotasks();
  await r.writer.abort(new Error("shutdown timeout"));
  assert.equal(ack.done, true);
  assert.equal((await ack.settled)?.message, "shutdown timeout");
  assert.equal(r.clock.sleeping, 0, "the timer was stopped");
});

// --- backpressure ---

/** A source of one-event chunks that counts how many were pulled. */
function countingSource(limit = Infinity) {
  const state = { pulled: 0 };
  const readable = new ReadableStream<Chunk>({
    pull(controller) {
      if (state.pulled >= limit) return controller.close();
      state.pulled++;
      controller.enqueue(chunk(1));
    },
  });
  return { state, readable };
}

Deno.test("a stalled reader stops the batcher after about one batch", async () => {
  const clock = new FakeClock();
  const src = countingSource();
  const out = src.readable.pipeThrough(batcher({ maxSize: 10, maxWait: 1000 }, { clock }));
  await flushMicrotasks();
  assert.ok(src.state.pulled <= 3, `pulled ${src.state.pulled} before anyone read`);
  const reader = out.getReader();
  const first = await reader.read();
  assert.equal(first.value?.items.length, 10);
  // The reader now stalls: nothing more should be taken beyond the stream queues' slack.
  await clock.advance(10_000);
  await flushMicrotasks();
  assert.ok(src.state.pulled <= 10 + 3, `pulled ${src.state.pulled} with a stalled reader`);
  const pulledWhileStalled = src.state.pulled;
  await clock.advance(60_000);
  assert.equal(src.state.pulled, pulledWhileStalled);
  const second = await reader.read();
  assert.equal(second.value?.items.length, 10);
  await reader.cancel();
});

Deno.test("with a slow source, the timer closes one batch and the stalled reader stops the rest", async () => {
  const clock = new FakeClock();
  const stage = batcher({ maxSize: 10, maxWait: 1000 }, { clock });
  const writer = stage.writable.getWriter();
  const reader = stage.readable.getReader();
  const firstRead = reader.read();
  writer.write(chunk(2)).catch(() => {});
  await clock.advance(1000);
  assert.equal((await firstRead).value?.items.length, 2);
  // No read is pending now; more events are not taken in, so no timer starts and no batch
  // piles up behind the stalled reader.
  const taken: Promise<void>[] = [];
  for (let i = 0; i < 5; i++) taken.push(writer.write(chunk(1)));
  await clock.advance(5000);
  assert.equal(clock.sleeping, 0);
  let settled = 0;
  for (const p of taken) p.then(() => settled++, () => {});
  await flushMicrotasks();
  assert.equal(settled, 0, "writes wait: the batcher took none of them");
  const next = reader.read();
  await clock.advance(1000);
  assert.equal((await next).value?.items.length, 5);
  await reader.cancel();
});

// --- real data ---

Deno.test("an audit.log read in chunks is batched in order, full batches while it lasts", async () => {
  const text = new TextEncoder().encode(auditLogLines().join("\n") + "\n");
  const lines: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === 0x0a) {
      if (i > start) lines.push(text.subarray(start, i));
      start = i + 1;
    }
  }
  const events = lines.flatMap((l) => decodeLine(l).envelopes);
  assert.equal(events.length, AUDIT_LOG_LINES);
  const chunks: Chunk[] = [];
  const acks: Ack[] = [];
  for (let i = 0; i < events.length; i += 64) {
    const ack = new Ack();
    acks.push(ack);
    chunks.push({ items: events.slice(i, i + 64), ack });
  }
  const clock = new FakeClock();
  const batches: Batch[] = [];
  await ReadableStream.from(chunks)
    .pipeThrough(batcher({ maxSize: 400, maxWait: 30_000 }, { clock }))
    .pipeTo(new WritableStream({ write: (b) => void batches.push(b) }));
  assert.deepEqual(batches.map((b) => b.items.length), [400, 400, 400, 400, 400, 400, 400, 200]);
  assert.deepEqual(batches.flatMap((b) => b.items), events);
  assert.ok(batches.every((b) => b.items.every((e) => e.raw !== undefined)), "raw bytes kept");
  for (const b of batches) written(b);
  assert.ok(acks.every((a) => a.done), "every chunk settles once all its batches are written");
});
