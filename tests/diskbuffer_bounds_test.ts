/**
 * The real daemon's disk buffer keeps to its bounds under load: the segment files on disk
 * never exceed `maxBytes` (sampled while senders push past it), memory does not grow with the
 * backlog (it is never loaded into memory, neither while it grows nor when a restart recovers
 * it), and a disk error is a refused request, a log line and a counter, after which the
 * buffer goes on, whole.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { type Daemon, relayConfig, startDaemon } from "./helpers/daemon.ts";
import { ClusterEvents } from "./helpers/cluster_events.ts";
import { scrapeMetrics } from "./helpers/metrics.ts";
import { kubeconfigFor, type Receiver, startReceiver } from "./helpers/receiver.ts";
import { withTempDir } from "./helpers/tmp.ts";
import { freePort } from "./helpers/nats.ts";
import { waitFor } from "./helpers/wait.ts";
import { segmentBytes, siemSinkSettings } from "./diskbuffer_helpers.ts";
import { segmentPath } from "../pipeline/diskbuffer/layout.ts";

const MiB = 1024 * 1024;

/** A webhook source relaying to sink `siem` at `port` with `buffer` (YAML flow mapping). */
function config(port: number, buffer: string): (dir: string) => string {
  return relayConfig(
    { kubeconfig: () => kubeconfigFor(`http://127.0.0.1:${port}/`) },
    siemSinkSettings(200, "20ms", buffer),
    ["server:", "  listen: 127.0.0.1:0", "shutdownTimeout: 1s"],
  );
}

/** Posts events `from` .. `from + n - 1` as one EventList; the answer's status. */
async function post(port: number, events: ClusterEvents, from: number, n: number) {
  const res = await fetch(`http://127.0.0.1:${port}/audit`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: events.list(from, n),
  });
  await res.body?.cancel();
  return res.status;
}

const metric = async (d: Daemon, key: string) =>
  (await scrapeMetrics(await d.opsPort())).get(key) ?? 0;

/** Waits until `recv` has every id of `ids`. */
function receivedAll(recv: Receiver, ids: Set<string>): Promise<void> {
  return waitFor("every event answered 200 delivered", () => {
    if (recv.received.length < ids.size) return false;
    const got = new Set(recv.received);
    return [...ids].every((id) => got.has(id));
  }, { timeoutMs: 60_000, intervalMs: 100 });
}

for (const whenFull of ["block", "dropNewest"] as const) {
  Deno.test(`disk buffer bounds: with whenFull ${whenFull}, the segment files on disk never exceed maxBytes while three senders push past it; every event is delivered once the collector is up, but those dropNewest drops and counts`, () =>
    withTempDir("auditpipe-bounds-", async (dir) => {
      const maxBytes = 512 * 1024;
      const port = freePort();
      const d = await startDaemon(
        config(port, `{type: disk, path: buf, maxBytes: ${maxBytes}, whenFull: ${whenFull}}`),
        { dir },
      );
      const webhook = await d.webhookPort();
      const events = new ClusterEvents(21, 500);
      const accepted = new Set<string>();
      const statuses = new Map<number, number>();
      let next = 0, sampling = true, most = 0, samples = 0;
      const sampler = (async () => {
        while (sampling) {
          try {
            most = Math.max(most, await segmentBytes(`${dir}/buf`));
            samples++;
          } catch (err) {
            // A segment the daemon deleted between listing and stat: nothing is delivered
            // while the collector is down, so only before the folder exists.
            if (!(err instanceof Deno.errors.NotFound)) throw err;
          }
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      const sender = async () => {
        for (const end = Date.now() + 3000; Date.now() < end;) {
          const from = next;
          next += 20;
          const status = await post(webhook, events, from, 20);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (status === 200) { for (let n = from; n < from + 20; n++) accepted.add(events.id(n)); }
          else await new Promise((r) => setTimeout(r, 20));
        }
      };
      await Promise.all([sender(), sender(), sender()]);
      sampling = false;
      await sampler;
      const full = await metric(
        d,
        'auditpipe_sink_dropped_total{sink="siem",reason="buffer_full"}',
      );
      console.log(
        `${whenFull}: ${next} events posted, answers ${JSON.stringify([...statuses])}, ` +
          `${samples} samples of the segment files, at most ${most} bytes (maxBytes ${maxBytes})`,
      );
      assert(next * 1000 > 3 * maxBytes, "the senders posted well past maxBytes");
      assert(most <= maxBytes, `${most} bytes of segment files on disk, maxBytes ${maxBytes}`);
      assert(most > maxBytes / 2, `the buffer filled up (${most} bytes at most)`);
      assert(full > 0, "events found the buffer full");
      if (whenFull === "block") assert((statuses.get(429) ?? 0) > 0, "requests were refused");
      else assertEquals([...statuses.keys()], [200]);
      const recv = await startReceiver(port);
      try {
        if (whenFull === "block") await receivedAll(recv, accepted);
        else {
          // Answered 200 and dropped when full (counted): every event arrives or is counted.
          await waitFor("every event delivered or counted as dropped", () => {
            return new Set(recv.received).size + full === next;
          }, { timeoutMs: 60_000, intervalMs: 100 });
        }
      } finally {
        await recv.close();
      }
      const { code } = await d.stop();
      assertEquals(code, 0);
    }));
}

/** The daemon's resident memory, from its own gauge. */
const rss = (d: Daemon) => metric(d, 'auditpipe_memory_bytes{kind="rss"}');

Deno.test("disk buffer bounds: memory stays flat while a backlog grows from 80 to 180 MB with the collector down, and a restart recovers that backlog without loading it", () =>
  withTempDir("auditpipe-bounds-", async (dir) => {
    const port = freePort();
    const cfg = config(port, "{type: disk, path: buf}");
    const d = await startDaemon(cfg, { dir });
    const webhook = await d.webhookPort();
    const events = new ClusterEvents(22);
    const onDisk = () => metric(d, 'auditpipe_disk_buffer_bytes{sink="siem"}');
    let next = 0;
    const postUntil = async (bytes: number) => {
      const sender = async () => {
        while (await onDisk() < bytes) {
          const from = next;
          next += 400;
          assertEquals(await post(webhook, events, from, 400), 200);
        }
      };
      await Promise.all([sender(), sender(), sender()]);
    };
    // The first tens of MB warm the heap up (batches, the hot tail's hand-off, V8's own
    // growth): measured 166 MiB at 30 MiB of backlog, 216 at 80, 227 at 181. Flat means
    // flat after that.
    await postUntil(80 * MiB);
    const early = await rss(d);
    await postUntil(180 * MiB);
    const late = await rss(d);
    const backlog = await onDisk();
    await d.stop();
    const d2 = await startDaemon(cfg, { dir });
    await d2.waitLog(
      (r) => String(r.msg).startsWith("disk buffer holds events from an earlier run"),
      60_000,
    );
    await waitFor(
      "the backlog's gauge",
      async () => await metric(d2, 'auditpipe_disk_buffer_bytes{sink="siem"}') === backlog,
    );
    const recovered = await rss(d2);
    console.log(
      `${next} events, ${(backlog / MiB).toFixed(0)} MiB on disk; RSS at 80 MiB of backlog ` +
        `${(early / MiB).toFixed(0)} MiB, at ${(backlog / MiB).toFixed(0)} MiB ` +
        `${(late / MiB).toFixed(0)} MiB, after a restart that recovered it ` +
        `${(recovered / MiB).toFixed(0)} MiB`,
    );
    // The backlog grew by 100 MB; a buffer that kept it in memory would grow by as much.
    assert(late - early < 40 * MiB, `RSS grew from ${early} to ${late} bytes`);
    assert(recovered < early + 40 * MiB, `RSS ${recovered} bytes after recovering the backlog`);
    const { code } = await d2.stop();
    assertEquals(code, 0);
  }));

Deno.test("disk buffer bounds: a segment the daemon may not create is a refused request, a log line and a counter; the next request is stored in another segment and every event answered 200 is delivered", () =>
  withTempDir("auditpipe-bounds-", async (dir) => {
    const port = freePort();
    // 256 KiB makes 64 KiB segments: the second one is needed after a few requests. Segment 2
    // is the one made ahead of the roll (its failure is only a debug line: the roll makes its
    // segment in line), 3 the one the roll then makes.
    const denied = [2, 3].map((id) => segmentPath(`${dir}/buf`, id)).join(",");
    const d = await startDaemon(config(port, "{type: disk, path: buf, maxBytes: 256KiB}"), {
      dir,
      permissions: ["-A", `--deny-write=${denied}`],
    });
    const webhook = await d.webhookPort();
    const events = new ClusterEvents(23, 200);
    const accepted = new Set<string>();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const status = await post(webhook, events, i * 20, 20);
      statuses.push(status);
      if (status === 200) { for (let n = i * 20; n < i * 20 + 20; n++) accepted.add(events.id(n)); }
    }
    const failed = statuses.filter((s) => s !== 200);
    assertEquals(failed.length, 1, `answers ${statuses}`);
    assert(failed[0] >= 500, `answers ${statuses}`);
    const m = await scrapeMetrics(await d.opsPort());
    assertEquals(m.get('auditpipe_disk_buffer_append_errors_total{sink="siem"}'), 20);
    assertEquals(m.get('auditpipe_sink_dropped_total{sink="siem",reason="write_error"}'), 20);
    const line = await d.waitLog((r) => r.msg === "disk buffer append failed");
    assert(JSON.stringify(line).includes("Requires write access"), JSON.stringify(line));
    await d.waitLog((r) => String(r.msg).startsWith("disk buffer append failed; events refused"));
    const recv = await startReceiver(port);
    try {
      await receivedAll(recv, accepted);
    } finally {
      await recv.close();
    }
    assertEquals(
      await metric(d, 'auditpipe_disk_buffer_corrupt_records_total{sink="siem"}'),
      0,
    );
    const { code } = await d.stop();
    assertEquals(code, 0);
  }));
