/**
 * The real daemon with a disk-buffered webhook sink: the webhook source answers 200 while
 * the collector is down (events are fsynced), a SIGKILL loses nothing that got a 200, and
 * `whenFull: block` refuses webhook requests with 429 instead of dropping.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { numberedEvents } from "./helpers/events.ts";
import { type Daemon, postEvents, startDaemon } from "./helpers/daemon.ts";
import { type Receiver, startReceiver } from "./helpers/receiver.ts";
import { scrapeMetrics } from "./helpers/metrics.ts";
import { deadline, waitFor } from "./helpers/wait.ts";

function config(buffer: string): string {
  return `
sources:
  - type: webhook
    listen: 127.0.0.1:0
sinks:
  - type: webhook
    name: siem
    kubeconfig: siem.kubeconfig
    initialBackoff: 20ms
    retry: {maxAttempts: 1}
    batch: {maxSize: 100, maxWait: 50ms, throttle: {enabled: false}}
    buffer: ${buffer}
server:
  listen: 127.0.0.1:0
shutdownTimeout: 5s
`;
}

const until = (cond: () => boolean | Promise<boolean>, what: string, ms = 30_000) =>
  waitFor(what, cond, { timeoutMs: ms, intervalMs: 50 });

/**
 * received = written + dropped + held for sink `siem`, from one scrape, and held = what is on
 * disk plus `waiting` (events of requests waiting for space); returns held.
 */
async function identity(d: Daemon, waiting: number[] = [0]): Promise<number> {
  const m = await scrapeMetrics(await d.opsPort());
  const get = (k: string) => m.get(k) ?? 0;
  let dropped = 0;
  for (const [k, v] of m) {
    if (k.startsWith('auditpipe_sink_dropped_total{sink="siem"')) dropped += v;
  }
  const received = get('auditpipe_sink_events_total{sink="siem"}');
  const written = get('auditpipe_sink_written_total{sink="siem"}');
  const held = get('auditpipe_sink_buffer_events{sink="siem"}');
  assertEquals(received, written + dropped + held, `received ${received} written ${written}`);
  const disk = get('auditpipe_disk_buffer_events{sink="siem"}');
  assert(waiting.includes(held - disk), `held ${held}, on disk ${disk}`);
  return held;
}

/**
 * Runs `fn` with a collector that answers 503 until told otherwise, and a temporary folder
 * holding `siem.kubeconfig` pointing at it; both are cleaned up whatever happens.
 */
async function withCollector(fn: (recv: Receiver, dir: string) => Promise<void>): Promise<void> {
  const recv = await startReceiver();
  recv.respond = () => 503;
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskwire-" });
  await Deno.writeTextFile(`${dir}/siem.kubeconfig`, recv.kubeconfig());
  try {
    await fn(recv, dir);
  } finally {
    await recv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("disk buffer e2e: 200s while the collector is down, and after a SIGKILL and restart every accepted event arrives", async () => {
  const recv = await startReceiver();
  recv.respond = () => 503;
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskwire-" });
  await Deno.writeTextFile(`${dir}/siem.kubeconfig`, recv.kubeconfig());
  const cfg = () => config("{type: disk, path: buf}");
  const accepted: string[] = [];
  try {
    const d = await startDaemon(cfg, { dir });
    const port = await d.webhookPort();
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const events = numberedEvents("dw", i * 50, 50);
      const t0 = performance.now();
      const res = await postEvents(port, events);
      latencies.push(performance.now() - t0);
      await res.body?.cancel();
      assertEquals(res.status, 200);
      accepted.push(...events.map((e) => e.auditID as string));
    }
    latencies.sort((a, b) => a - b);
    console.log(
      `ack latency while the collector is down: p50 ${latencies[10].toFixed(1)} ms, max ${
        latencies[19].toFixed(1)
      } ms`,
    );
    // Not a timing claim: a request must not wait for the collector's retries (seconds).
    assert(latencies[19] < 5_000, `slowest 200 took ${latencies[19]} ms`);
    await until(() => recv.requests > 0, "a delivery attempt");
    assertEquals(await identity(d), 1000);
    assertEquals(recv.received.length, 0);
    d.process.kill("SIGKILL");
    await d.exited();

    recv.respond = () => 200;
    const d2 = await startDaemon(cfg, { dir });
    await until(() => new Set(recv.received).size >= accepted.length, "redelivery");
    const got = new Set(recv.received);
    for (const id of accepted) assert(got.has(id), `${id} lost`);
    console.log(`duplicates after the restart: ${recv.received.length - got.size}`);
    await until(async () => await identity(d2) === 0, "nothing held");
    const { code } = await d2.stop();
    assertEquals(code, 0);
  } finally {
    await recv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk buffer e2e: whenFull block answers webhook requests 429 with Retry-After while the buffer is full, 200 again once space frees; every event answered 200 arrives", () =>
  withCollector(async (recv, dir) => {
    const d = await startDaemon(() => config("{type: disk, path: buf, maxBytes: 64KiB}"), { dir });
    const port = await d.webhookPort();
    const accepted = new Set<string>();
    let refused: Response | undefined;
    let i = 0;
    for (; i < 200 && !refused; i++) {
      const events = numberedEvents("bl", i * 20, 20);
      // A request that waits for room instead of being answered fails the test.
      const res = await deadline(postEvents(port, events), "an answer", 15_000);
      if (res.status === 200) {
        for (const e of events) accepted.add(String(e.auditID));
        await res.body?.cancel();
      } else refused = res;
    }
    assert(refused, "a request is refused once the buffer is full");
    assertEquals(refused.status, 429);
    assertEquals(refused.headers.get("retry-after"), "1");
    assert(/disk buffer is full/.test((await refused.json()).error));
    const m = await scrapeMetrics(await d.opsPort());
    const rejected = [...m].filter(([k]) =>
      k.startsWith("auditpipe_source_rejected_total{") && k.includes('reason="buffer_full"')
    );
    assert(rejected.length === 1 && rejected[0][1] >= 1, "the refusal is counted");
    assert((m.get('auditpipe_disk_buffer_bytes{sink="siem"}') ?? 0) <= 64 * 1024);
    await identity(d);
    recv.respond = () => 200;
    // Space frees as the collector takes the backlog: requests are answered 200 again.
    let again = false;
    for (const end = Date.now() + 30_000; !again && Date.now() < end; i++) {
      const events = numberedEvents("bl", i * 20, 20);
      const res = await postEvents(port, events);
      await res.body?.cancel();
      if (res.status === 200) {
        again = true;
        for (const e of events) accepted.add(String(e.auditID));
      } else {
        assertEquals(res.status, 429);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert(again, "requests are answered 200 once the collector is up");
    await until(() => {
      const got = new Set(recv.received);
      return [...accepted].every((id) => got.has(id));
    }, "delivery of every event answered 200");
    await identity(d);
    const { code } = await d.stop();
    assertEquals(code, 0);
  }));

Deno.test("disk buffer e2e: whenFull dropNewest answers 200 and counts buffer_full when maxBytes is tiny", () =>
  withCollector(async (_recv, dir) => {
    const d = await startDaemon(
      () => config("{type: disk, path: buf, maxBytes: 16KiB, whenFull: dropNewest}"),
      { dir },
    );
    const port = await d.webhookPort();
    for (let i = 0; i < 20; i++) {
      const res = await postEvents(port, numberedEvents("dn", i * 20, 20));
      assertEquals(res.status, 200);
      await res.body?.cancel();
    }
    const m = await scrapeMetrics(await d.opsPort());
    assert((m.get('auditpipe_sink_dropped_total{sink="siem",reason="buffer_full"}') ?? 0) > 0);
    assert((m.get('auditpipe_disk_buffer_bytes{sink="siem"}') ?? 0) <= 16 * 1024);
    await identity(d);
    await d.waitLog((r) => r.msg === "disk buffer full; events dropped");
    const { code } = await d.stop();
    assertEquals(code, 0);
  }));

Deno.test("disk buffer e2e: SIGKILLed at random moments while senders post, then restarted with the collector up: every event that got 200 arrives", async () => {
  const recv = await startReceiver();
  recv.respond = () => 503;
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskwire-" });
  await Deno.writeTextFile(`${dir}/siem.kubeconfig`, recv.kubeconfig());
  const cfg = () => config("{type: disk, path: buf}");
  const accepted = new Set<string>();
  let next = 0;
  try {
    for (let round = 0; round < 4; round++) {
      const d = await startDaemon(cfg, { dir });
      const port = await d.webhookPort();
      let killed = false;
      const sender = async () => {
        while (!killed) {
          const events = numberedEvents("ck", next, 40);
          next += 40;
          try {
            const res = await postEvents(port, events);
            await res.body?.cancel();
            if (res.status === 200) { for (const e of events) accepted.add(e.auditID as string); }
          } catch {
            // The daemon died mid-request: those events were not acknowledged.
          }
        }
      };
      const senders = [sender(), sender(), sender()];
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 400));
      d.process.kill("SIGKILL");
      killed = true;
      await d.exited();
      await Promise.all(senders);
    }
    assert(accepted.size > 0, "some requests were accepted");
    recv.respond = () => 200;
    const d = await startDaemon(cfg, { dir });
    await until(
      () =>
        (() => {
          const got = new Set(recv.received);
          return [...accepted].every((id) => got.has(id));
        })(),
      "redelivery",
      60_000,
    );
    const got = new Set(recv.received);
    console.log(
      `accepted ${accepted.size}, received ${recv.received.length}, duplicates ${
        recv.received.length - got.size
      }`,
    );
    const { code } = await d.stop();
    assertEquals(code, 0);
  } finally {
    await recv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk buffer e2e: a shutdown that times out on a stalled collector counts nothing on disk as dropped", async () => {
  const recv = await startReceiver();
  const release = recv.stall();
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskwire-" });
  await Deno.writeTextFile(`${dir}/siem.kubeconfig`, recv.kubeconfig());
  try {
    const d = await startDaemon(
      () => config("{type: disk, path: buf}").replace("shutdownTimeout: 5s", "shutdownTimeout: 1s"),
      { dir },
    );
    const res = await postEvents(await d.webhookPort(), numberedEvents("st", 0, 30));
    assertEquals(res.status, 200);
    await res.body?.cancel();
    await until(() => recv.requests > 0, "a delivery attempt");
    const { code } = await d.stop();
    assertEquals(code, 0);
    const stopped = await d.waitLog((r) => r.msg === "pipeline stopped");
    const siem = (stopped.sinks as Record<string, { dropped: Record<string, number> }>).siem;
    assertEquals(siem.dropped.shutdown ?? 0, 0, JSON.stringify(stopped));
    assert(!d.logs.some((r) => r.msg === "shutdown timeout; events not delivered"));
  } finally {
    release();
    await recv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk buffer e2e: a reload that replaces the sink's branch hands its buffer over: events on disk are delivered by the new branch", () =>
  withCollector(async (recv, dir) => {
    const d = await startDaemon(() => config("{type: disk, path: buf}"), { dir });
    const port = await d.webhookPort();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const events = numberedEvents("rl", i * 50, 50);
      const res = await postEvents(port, events);
      assertEquals(res.status, 200);
      await res.body?.cancel();
      ids.push(...events.map((e) => e.auditID as string));
    }
    await until(() => recv.requests > 0, "a delivery attempt");
    await Deno.writeTextFile(
      `${dir}/pipeline.yaml`,
      config("{type: disk, path: buf}").replace("maxSize: 100", "maxSize: 30"),
    );
    d.process.kill("SIGHUP");
    const reloaded = await d.waitLog((r) => r.msg === "config reloaded");
    assert(JSON.stringify(reloaded).includes("siem"), JSON.stringify(reloaded));
    assertEquals(await identity(d), 200);
    recv.respond = () => 200;
    await until(() => ids.every((id) => recv.received.includes(id)), "delivery after reload");
    await until(async () => await identity(d) === 0, "nothing held");
    const { code } = await d.stop();
    assertEquals(code, 0);
  }));

Deno.test("disk buffer e2e: a tail source's lines are all delivered across a SIGKILL while the collector is down", async () => {
  const recv = await startReceiver();
  recv.respond = () => 503;
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskwire-" });
  await Deno.writeTextFile(`${dir}/siem.kubeconfig`, recv.kubeconfig());
  const events = numberedEvents("tl", 0, 500, { kind: "Event", apiVersion: "audit.k8s.io/v1" });
  await Deno.writeTextFile(
    `${dir}/audit.log`,
    events.map((e) => JSON.stringify(e)).join("\n") + "\n",
  );
  const cfg = () =>
    config("{type: disk, path: buf}").replace(
      "  - type: webhook\n    listen: 127.0.0.1:0\n",
      "  - type: tail\n    path: audit.log\n    startAt: beginning\n    checkpointFile: tail.pos\n",
    );
  try {
    const d = await startDaemon(cfg, { dir });
    const ops = await d.opsPort();
    await until(
      async () =>
        (await scrapeMetrics(ops)).get('auditpipe_disk_buffer_events{sink="siem"}') === 500,
      "every line on disk",
    );
    d.process.kill("SIGKILL");
    await d.exited();
    recv.respond = () => 200;
    const d2 = await startDaemon(cfg, { dir });
    await until(() => new Set(recv.received).size >= 500, "redelivery");
    const got = new Set(recv.received);
    for (const e of events) assert(got.has(e.auditID as string), `${e.auditID} lost`);
    await until(async () => await identity(d2) === 0, "nothing held");
    const { code } = await d2.stop();
    assertEquals(code, 0);
  } finally {
    await recv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
