/**
 * A disk-buffered sink branch: acks settle once events are on disk (not when the sink has
 * them), a failing sink keeps its events on disk and gets them again, a new branch on the
 * same folder delivers what an earlier one left, `dropNewest` counts `buffer_full`, `block`
 * makes the fan-out wait, and `received = written + dropped + held` holds throughout.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { testEnvelope } from "./helpers/events.ts";
import { Ack } from "../pipeline/core/ack.ts";
import { Branch, type BranchSpec, describeBranch } from "../pipeline/branch.ts";
import { systemClock } from "../pipeline/core/clock.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { FanOut } from "../pipeline/stages/fanout.ts";
import { PipelineStats, SinkStats } from "../pipeline/core/stats.ts";
import { metricsRegistry } from "../pipeline/metrics.ts";
import type { Sink } from "../backends/sink.ts";
import type { BufferConfig } from "../pipeline/config/schema.ts";
import { waitFor } from "./helpers/wait.ts";
import { listSegments, segmentPath } from "../pipeline/diskbuffer/layout.ts";

/** A sink that fails while `down`, else records what it got. */
class FlakySink implements Sink {
  written: string[] = [];
  down = false;
  attempts = 0;
  write(items: readonly Envelope[]): Promise<void> {
    this.attempts++;
    if (this.down) return Promise.reject(new Error("receiver down"));
    for (const e of items) this.written.push(e.event.auditID);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function diskBranch(
  dir: string,
  sink: Sink,
  buffer: Partial<BufferConfig> = {},
  stats = new SinkStats("remote"),
): Branch {
  const spec: BranchSpec = {
    name: "remote",
    mode: "batch",
    policy: null,
    batch: {
      bufferSize: 10,
      maxSize: 7,
      maxWait: 5,
      throttle: { enabled: false, qps: 10, burst: 15 },
    },
    truncate: { enabled: false, maxEventSize: 102400, maxBatchSize: 10485760 },
    buffer: {
      type: "disk",
      path: `${dir}/buf`,
      maxBytes: 1024 ** 2,
      whenFull: "block",
      fsync: "always",
      ...buffer,
    },
  };
  const levels = { None: 0, Metadata: 0, Request: 0, RequestResponse: 0 };
  return new Branch(spec, sink, {
    stats,
    levels,
    log: silentLogger,
    clock: systemClock,
    retryDelayMs: 10,
  });
}

function identity(s: SinkStats): void {
  assertEquals(s.received, s.written + s.droppedTotal + s.buffered, JSON.stringify(s));
}

const until = (cond: () => boolean, what: string, ms = 10_000) =>
  waitFor(what, cond, { timeoutMs: ms });

async function send(fanout: FanOut, from: number, n: number): Promise<Ack> {
  const ack = new Ack();
  const items = Array.from({ length: n }, (_, i) => testEnvelope(`id-${from + i}`));
  await fanout.dispatch({ items, ack });
  return ack;
}

Deno.test("disk branch: acks settle once on disk while the sink is down; the events are written when it comes back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-wire-" });
  try {
    const sink = new FlakySink();
    sink.down = true;
    const b = diskBranch(dir, sink);
    assert(describeBranch(b.spec).includes(`disk(${dir}/buf, 1MiB, block)`), b.describe());
    const fanout = new FanOut([b], silentLogger);
    const acks: Ack[] = [];
    for (let i = 0; i < 20; i++) acks.push(await send(fanout, i * 5, 5));
    for (const a of acks) assertEquals(await a.settled, null);
    const s = b.deps.stats;
    await until(() => sink.attempts > 2, "retries");
    identity(s);
    assertEquals(s.written, 0);
    assertEquals(s.buffered, 100);
    assertEquals(b.disk!.stats!.events, 100);
    sink.down = false;
    await until(() => s.written === 100, "delivery");
    identity(s);
    assertEquals(new Set(sink.written).size, 100);
    await fanout.close();
    identity(s);
    assertEquals(s.buffered, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk branch: what a closed branch left on disk is delivered by the next one on the same folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-wire-" });
  try {
    const down = new FlakySink();
    down.down = true;
    const stats = new SinkStats("remote");
    const first = diskBranch(dir, down, {}, stats);
    const f1 = new FanOut([first], silentLogger);
    for (let i = 0; i < 6; i++) assertEquals(await (await send(f1, i * 10, 10)).settled, null);
    await until(() => down.attempts > 0, "a failed write");
    await f1.close();
    identity(stats);
    assertEquals(stats.buffered, 60);

    const up = new FlakySink();
    const second = diskBranch(dir, up, {}, stats);
    await until(() => up.written.length >= 60, "redelivery");
    assertEquals(new Set(up.written).size, 60);
    identity(stats);
    const f2 = new FanOut([second], silentLogger);
    await f2.close();
    identity(stats);

    // A fresh process (new stats) finds nothing left.
    const fresh = new SinkStats("remote");
    const third = diskBranch(dir, new FlakySink(), {}, fresh);
    await new FanOut([third], silentLogger).close();
    assertEquals(fresh.received, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk branch: a restart with a fresh process counts events found on disk as received", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-wire-" });
  try {
    const down = new FlakySink();
    down.down = true;
    const first = diskBranch(dir, down);
    const f1 = new FanOut([first], silentLogger);
    assertEquals(await (await send(f1, 0, 30)).settled, null);
    await f1.close();
    const up = new FlakySink();
    const stats = new SinkStats("remote");
    const second = diskBranch(dir, up, {}, stats);
    await until(() => stats.written === 30, "redelivery");
    assertEquals(stats.received, 30);
    identity(stats);
    await new FanOut([second], silentLogger).close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk branch: dropNewest counts buffer_full when maxBytes is reached; acks still settle", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-wire-" });
  try {
    const sink = new FlakySink();
    sink.down = true;
    const b = diskBranch(dir, sink, { maxBytes: 8192, whenFull: "dropNewest" });
    const fanout = new FanOut([b], silentLogger);
    for (let i = 0; i < 40; i++) assertEquals(await (await send(fanout, i * 5, 5)).settled, null);
    const s = b.deps.stats;
    assert(s.dropped.buffer_full > 0, JSON.stringify(s.dropped));
    assert(b.disk!.stats!.bytes <= 8192, String(b.disk!.stats!.bytes));
    identity(s);
    assertEquals(s.received, 200);
    await fanout.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk branch: block makes the fan-out wait when maxBytes is reached, and nothing is dropped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-wire-" });
  try {
    const sink = new FlakySink();
    sink.down = true;
    const b = diskBranch(dir, sink, { maxBytes: 8192, whenFull: "block" });
    const fanout = new FanOut([b], silentLogger);
    const acks: Promise<unknown>[] = [];
    let sent = 0;
    for (let i = 0; i < 40; i++) {
      acks.push((await send(fanout, i * 5, 5)).settled);
      sent += 5;
    }
    const settled = { n: 0 };
    for (const a of acks) a.then(() => settled.n++);
    await new Promise((r) => setTimeout(r, 200));
    const s = b.deps.stats;
    assert(settled.n < acks.length, "some acks wait for space");
    assertEquals(s.droppedTotal, 0);
    assert(b.disk!.stats!.bytes <= 8192, String(b.disk!.stats!.bytes));
    identity(s);
    sink.down = false;
    await Promise.all(acks);
    await until(() => s.written === sent, "delivery of everything");
    assertEquals(new Set(sink.written).size, sent);
    await fanout.close();
    identity(s);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk branch: /metrics exports the buffer's gauges, corrupt count and fsync histogram, and held includes what is on disk", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-wire-" });
  try {
    const sink = new FlakySink();
    sink.down = true;
    const stats = new PipelineStats();
    const b = diskBranch(dir, sink, {}, stats.sink("remote"));
    const fanout = new FanOut([b], silentLogger);
    for (let i = 0; i < 5; i++) assertEquals(await (await send(fanout, i * 8, 8)).settled, null);
    const text = await metricsRegistry(stats).metrics();
    const value = (series: string) => {
      const line = text.split("\n").find((l) => l.startsWith(series + " "));
      assert(line, `${series} missing:\n${text}`);
      return Number(line.split(" ").at(-1));
    };
    assertEquals(value(`auditpipe_disk_buffer_events{sink="remote"}`), 40);
    assert(value(`auditpipe_disk_buffer_bytes{sink="remote"}`) > 40 * 100);
    assertEquals(value(`auditpipe_disk_buffer_segments{sink="remote"}`), 1);
    assert(value(`auditpipe_disk_buffer_oldest_age_seconds{sink="remote"}`) >= 0);
    assertEquals(value(`auditpipe_disk_buffer_corrupt_records_total{sink="remote"}`), 0);
    assert(
      value(`auditpipe_disk_buffer_fsync_duration_seconds_count{sink="remote",file="segment"}`) >=
        1,
    );
    const received = value(`auditpipe_sink_events_total{sink="remote"}`);
    const held = value(`auditpipe_sink_buffer_events{sink="remote"}`);
    assertEquals(received, 40);
    assertEquals(held, 40);
    sink.down = false;
    await until(() => stats.sink("remote").written === 40, "delivery");
    await fanout.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk branch: a record that goes bad on disk after open is skipped and counted (dropped as corrupt, corrupt records 1); the rest is delivered instead of the read being retried forever", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-wire-" });
  try {
    const sink = new FlakySink();
    sink.down = true;
    const b = diskBranch(dir, sink);
    const fanout = new FanOut([b], silentLogger);
    const n = 3000;
    for (let i = 0; i < n; i += 100) assertEquals(await (await send(fanout, i, 100)).settled, null);
    const s = b.deps.stats;
    await until(() => sink.attempts > 1, "a failed write");
    // The last segment is past what the lane has read ahead (about a thousand records).
    // Segments that hold records (not the empty next one, made ahead).
    const segs = await listSegments(`${dir}/buf`);
    assert(segs.length >= 3, `${segs.length} segments`);
    const path = segmentPath(`${dir}/buf`, segs.at(-1)!);
    const bytes = await Deno.readFile(path);
    bytes[bytes.length >> 1] ^= 0xff;
    await Deno.writeFile(path, bytes);
    sink.down = false;
    await until(() => s.written + s.droppedTotal === n, "delivery of everything else", 30_000);
    const lost = s.dropped.corrupt;
    assert(lost > 0 && lost < n / 3, `lost ${lost}`);
    assertEquals(new Set(sink.written).size, n - lost);
    assertEquals(b.disk!.stats!.corruptRecords, 1);
    identity(s);
    await fanout.close();
    identity(s);
    assertEquals(s.buffered, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
