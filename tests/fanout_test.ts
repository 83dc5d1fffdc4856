import { assert, assertEquals } from "./helpers/assert.ts";
import { testEnvelope } from "./helpers/events.ts";
import { Ack } from "../pipeline/core/ack.ts";
import { Branch, type BranchSpec } from "../pipeline/branch.ts";
import { systemClock } from "../pipeline/core/clock.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { FanOut } from "../pipeline/stages/fanout.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import type { Sink } from "../backends/sink.ts";
import type { Mode } from "../pipeline/config/schema.ts";

function event(i: number): Envelope {
  return testEnvelope(`id-${i}`);
}

/** A sink whose writes wait until `gate` opens (or fail when told to). */
class TestSink implements Sink {
  written: string[] = [];
  batches = 0;
  #open: Promise<void> = Promise.resolve();
  #openIt: () => void = () => {};
  failWith: Error | null = null;
  closed = false;

  stall() {
    this.#open = new Promise((r) => this.#openIt = r);
  }
  resume() {
    this.#openIt();
  }
  async write(items: readonly Envelope[]) {
    await this.#open;
    if (this.failWith) throw this.failWith;
    this.batches++;
    for (const e of items) this.written.push(e.event.auditID);
  }
  close() {
    this.closed = true;
    return Promise.resolve();
  }
}

function branch(name: string, mode: Mode, sink: Sink, batch: Partial<BranchSpec["batch"]> = {}) {
  const spec: BranchSpec = {
    name,
    mode,
    policy: null,
    batch: {
      bufferSize: 10000,
      maxSize: 1,
      maxWait: 0,
      throttle: { enabled: false, qps: 10, burst: 15 },
      ...batch,
    },
    truncate: { enabled: false, maxEventSize: 102400, maxBatchSize: 10485760 },
  };
  const stats = new SinkStats(name);
  const levels = { None: 0, Metadata: 0, Request: 0, RequestResponse: 0 };
  return new Branch(spec, sink, { stats, levels, log: silentLogger, clock: systemClock });
}

const tick = () => new Promise((r) => setTimeout(r, 5));

function identity(b: Branch) {
  const s = b.deps.stats;
  assertEquals(s.received, s.written + s.droppedTotal + s.buffered);
}

Deno.test("fan-out: a stalled batch sink drops what overflows its buffer and never slows a blocking sink", async () => {
  const fast = new TestSink();
  const stalled = new TestSink();
  stalled.stall();
  const a = branch("fast", "blocking", fast);
  const b = branch("stalled", "batch", stalled, { bufferSize: 10, maxSize: 5, maxWait: 10 });
  const fanout = new FanOut([a, b], silentLogger);
  const acks: Ack[] = [];
  for (let i = 0; i < 100; i++) {
    const ack = new Ack();
    acks.push(ack);
    await fanout.dispatch({ items: [event(i)], ack });
  }
  for (const ack of acks) assertEquals(await ack.settled, null);
  assertEquals(fast.written.length, 100);
  assert(b.deps.stats.dropped.buffer_full >= 80, `dropped ${b.deps.stats.dropped.buffer_full}`);
  assert(b.deps.stats.buffered <= 10 + 5 + 2, `buffered ${b.deps.stats.buffered}`);
  identity(a);
  identity(b);
  stalled.resume();
  await fanout.close();
  assertEquals(stalled.written.length, 100 - b.deps.stats.dropped.buffer_full);
  assertEquals(b.deps.stats.buffered, 0);
  identity(b);
});

Deno.test("fan-out: a stalled blocking sink holds intake once its group-commit queue is full, and acks settle only after it wrote", async () => {
  const slow = new TestSink();
  slow.stall();
  const a = branch("slow", "blocking", slow);
  const fanout = new FanOut([a], silentLogger);
  const chunkOf = (c: number) => Array.from({ length: 3000 }, (_, k) => event(c * 3000 + k));
  const ack1 = new Ack();
  await fanout.dispatch({ items: chunkOf(0), ack: ack1 });
  let settled = false;
  ack1.settled.then(() => settled = true);
  // One write in progress, up to 10,000 events queued behind it, a chunk in each stage.
  let dispatched = 1;
  const more = (async () => {
    for (let c = 1; c < 12; c++) {
      await fanout.dispatch({ items: chunkOf(c), ack: new Ack() });
      dispatched++;
    }
  })();
  await tick();
  assert(dispatched < 12, `dispatched ${dispatched} chunks past a stalled blocking sink`);
  assertEquals(settled, false);
  slow.resume();
  await more;
  assertEquals(await ack1.settled, null);
  await fanout.close();
  assertEquals(slow.written.length, 12 * 3000);
  assertEquals(slow.written, Array.from({ length: 12 * 3000 }, (_, i) => `id-${i}`));
  // Chunks that waited while the sink was stalled went out together.
  assert(slow.batches < 12, `${slow.batches} writes for 12 chunks`);
});

Deno.test("fan-out: blocking-strict fails the ack when the sink fails; blocking counts and releases", async () => {
  const strictSink = new TestSink();
  strictSink.failWith = new Error("disk full");
  const lenientSink = new TestSink();
  lenientSink.failWith = new Error("disk full");
  const strict = branch("strict", "blocking-strict", strictSink);
  const lenient = branch("lenient", "blocking", lenientSink);

  let fanout = new FanOut([lenient], silentLogger);
  let ack = new Ack();
  await fanout.dispatch({ items: [event(1), event(2)], ack });
  assertEquals(await ack.settled, null);
  assertEquals(lenient.deps.stats.dropped.write_error, 2);
  identity(lenient);
  await fanout.close();

  fanout = new FanOut([strict], silentLogger);
  ack = new Ack();
  await fanout.dispatch({ items: [event(1)], ack });
  assertEquals((await ack.settled)?.message, "disk full");
  assertEquals(strict.deps.stats.dropped.write_error, 1);
  assert(strict.deps.stats.failingSince !== null);
  await fanout.close();
});

Deno.test("fan-out: a batch-mode ack settles without waiting for the sink", async () => {
  const stalled = new TestSink();
  stalled.stall();
  const b = branch("b", "batch", stalled, { maxSize: 2, maxWait: 5 });
  const fanout = new FanOut([b], silentLogger);
  const ack = new Ack();
  await fanout.dispatch({ items: [event(1)], ack });
  assertEquals(await ack.settled, null);
  assertEquals(stalled.written.length, 0);
  stalled.resume();
  await fanout.close();
  assertEquals(stalled.written, ["id-1"]);
});

Deno.test("fan-out: closing drains batch buffers through the sink in full batches", async () => {
  const sink = new TestSink();
  sink.stall();
  const b = branch("b", "batch", sink, { bufferSize: 1000, maxSize: 100, maxWait: 60_000 });
  const fanout = new FanOut([b], silentLogger);
  for (let i = 0; i < 250; i++) await fanout.dispatch({ items: [event(i)], ack: new Ack() });
  sink.resume();
  await fanout.close();
  assertEquals(sink.written.length, 250);
  assertEquals(sink.batches, 3);
  assert(sink.closed);
  identity(b);
});
