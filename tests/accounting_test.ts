/**
 * received = written + dropped + held, with `held` measured where the events are (the
 * branch's ledger), checked while events flow through real branches, and shown to fail when a
 * stage loses an event without counting it.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { testEnvelope } from "./helpers/events.ts";
import { Ack } from "../pipeline/core/ack.ts";
import { Branch, type BranchSpec } from "../pipeline/branch.ts";
import { systemClock } from "../pipeline/core/clock.ts";
import type { Chunk, Envelope } from "../pipeline/core/envelope.ts";
import { Ledger, ledgered } from "../pipeline/core/ledger.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { FanOut } from "../pipeline/stages/fanout.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import { batcher } from "../pipeline/stages/batcher.ts";
import { sinkWriter } from "../pipeline/stages/sink_writer.ts";
import type { Sink } from "../backends/sink.ts";
import type { Mode } from "../pipeline/config/schema.ts";

/** A sink whose writes wait while it is stalled. */
class GatedSink implements Sink {
  written = 0;
  #gate: Promise<void> = Promise.resolve();
  #open = () => {};
  stall() {
    this.#gate = new Promise((r) => this.#open = r);
  }
  resume() {
    this.#open();
  }
  async write(items: readonly Envelope[]) {
    await this.#gate;
    this.written += items.length;
  }
  close() {
    return Promise.resolve();
  }
}

function branch(mode: Mode, sink: Sink, batch: Partial<BranchSpec["batch"]> = {}): Branch {
  const spec: BranchSpec = {
    name: mode,
    mode,
    policy: null,
    annotations: { "example.com/node": "cp-1" },
    batch: {
      bufferSize: 50,
      maxSize: 7,
      maxWait: 5,
      throttle: { enabled: false, qps: 10, burst: 15 },
      ...batch,
    },
    truncate: { enabled: true, maxEventSize: 102400, maxBatchSize: 10485760 },
  };
  const levels = { None: 0, Metadata: 0, Request: 0, RequestResponse: 0 };
  return new Branch(spec, sink, {
    stats: new SinkStats(mode),
    levels,
    log: silentLogger,
    clock: systemClock,
  });
}

const chunkOf = (n: number, from: number): Chunk => ({
  items: Array.from({ length: n }, (_, i) => testEnvelope(`id-${from + i}`)),
  ack: new Ack(),
});

Deno.test("accounting: received = written + dropped + held at every step of blocking and batch branches", async () => {
  for (const mode of ["blocking", "batch"] as const) {
    const sink = new GatedSink();
    sink.stall();
    const b = branch(mode, sink);
    const fanout = new FanOut([b], silentLogger);
    const s = b.deps.stats;
    const dispatches: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      // Blocking branches make the fan-out wait while the sink is stalled: do not await.
      dispatches.push(fanout.dispatch(chunkOf(3, i * 3)));
      await new Promise((r) => setTimeout(r, 1));
      assertEquals(s.unaccounted, 0, `${mode} after chunk ${i}`);
    }
    assert(s.buffered > 0, `${mode}: the stalled sink's branch holds events (${s.buffered})`);
    sink.resume();
    await Promise.all(dispatches);
    await fanout.close();
    assertEquals(s.buffered, 0, mode);
    assertEquals(s.unaccounted, 0, mode);
    assertEquals(s.received, 120, mode);
    assertEquals(s.written + s.droppedTotal, 120, mode);
  }
});

Deno.test("accounting: a stage that loses an event without counting it breaks the equation", async () => {
  const stats = new SinkStats("leaky");
  const ledger = stats.ledger;
  const sink = new GatedSink();
  // The planted leak: a stage that forwards every chunk but its first event, uncounted.
  const leak = new TransformStream<Chunk, Chunk>(ledgered(ledger, {
    transform(chunk: Chunk, c: TransformStreamDefaultController<Chunk>) {
      c.enqueue({ items: chunk.items.slice(1), ack: chunk.ack });
    },
  }));
  const entry = new TransformStream<Chunk, Chunk>();
  const done = entry.readable.pipeThrough(leak)
    .pipeThrough(batcher({ maxSize: 4, maxWait: 1 }, { clock: systemClock, ledger }))
    .pipeTo(sinkWriter(sink, { mode: "blocking", stats, log: silentLogger, clock: systemClock }));
  const w = entry.writable.getWriter();
  for (let i = 0; i < 5; i++) {
    const chunk = chunkOf(3, i * 3);
    stats.received += 3;
    ledger.put(chunk);
    await w.write(chunk);
  }
  await w.close();
  await done;
  assertEquals(sink.written, 10);
  assertEquals(stats.buffered, 0);
  assertEquals(stats.unaccounted, 5, "one lost event per chunk shows as unaccounted");
});

Deno.test("accounting: the ledger counts containers once, ignores strangers, and reads probes live", () => {
  const ledger = new Ledger();
  const a = { items: [1, 2, 3] };
  ledger.put(a);
  ledger.put(a);
  assertEquals(ledger.held, 3);
  ledger.take({ items: [9] });
  assertEquals(ledger.held, 3);
  const pending: number[] = [1];
  const unprobe = ledger.probe(() => pending.length);
  assertEquals(ledger.held, 4);
  pending.push(2);
  assertEquals(ledger.held, 5);
  unprobe();
  ledger.take(a);
  assertEquals(ledger.held, 0);
  ledger.put(a);
  assertEquals(ledger.clear(), 3);
  assertEquals(ledger.held, 0);
});
