/**
 * Reloads that move a sink's disk buffer: a new path drains the old folder while the collector
 * takes events, and otherwise leaves them there (nothing lost) for the branch that uses that
 * path again; a new sink given a folder another sink holds does not share it.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  type Daemon,
  postAccepted,
  postEvents,
  relayConfig,
  startDaemon,
} from "./helpers/daemon.ts";
import { numberedEvents } from "./helpers/events.ts";
import { scrapeMetrics } from "./helpers/metrics.ts";
import { startReceiver } from "./helpers/receiver.ts";
import { waitFor } from "./helpers/wait.ts";
import { inspectBuffer } from "../pipeline/diskbuffer/inspect.ts";

/** The lines of sink `siem` with a disk buffer in `path`. */
function sinkLines(path: string): string[] {
  return [
    "initialBackoff: 20ms",
    "retry: {maxAttempts: 1}",
    "batch: {maxSize: 50, maxWait: 20ms, throttle: {enabled: false}}",
    `buffer: {type: disk, path: ${path}}`,
  ];
}

const TOP = ["server:", "  listen: 127.0.0.1:0", "shutdownTimeout: 2s"];

/** Rewrites the config, sends SIGHUP and waits for the reload's own log line. */
async function reload(d: Daemon, config: string): Promise<Record<string, unknown>> {
  await Deno.writeTextFile(`${d.dir}/pipeline.yaml`, config);
  const seen = d.logs.length;
  d.process.kill("SIGHUP");
  return await d.waitLog((r) =>
    d.logs.indexOf(r) >= seen &&
    (r.msg === "config reloaded" || r.msg === "reload refused; the running pipeline is kept")
  );
}

async function post(d: Daemon, prefix: string, n: number): Promise<string[]> {
  const events = numberedEvents(prefix, 0, n);
  await postAccepted(await d.webhookPort(), events);
  return events.map((e) => String(e.auditID));
}

Deno.test("disk buffer reload: a new buffer path leaves the old folder's events there while the collector is down, the new folder takes new events, and a reload back to the old path delivers them; nothing is lost", async () => {
  const recv = await startReceiver();
  recv.respond = () => 503;
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskreload-" });
  const config = (path: string) => relayConfig(recv, sinkLines(path), TOP)(dir);
  try {
    const d = await startDaemon(() => config("a"), { dir });
    const first = await post(d, "ra", 100);
    await waitFor("a delivery attempt", () => recv.requests > 0);
    const moved = await reload(d, config("b"));
    assertEquals(moved.msg, "config reloaded", JSON.stringify(moved));
    // The old branch tried to drain, could not, and closed its folder with the events in it.
    const left = await d.waitLog((r) =>
      r.msg === "disk buffer closed with events not yet delivered"
    );
    assertEquals(left.events, 100);
    const second = await post(d, "rb", 100);
    assertEquals((await inspectBuffer(`${dir}/a`)).undelivered, 100);
    const m = await scrapeMetrics(await d.opsPort());
    // Held: what is on disk in b, and what waits in a for a branch to take it.
    assertEquals(m.get('auditpipe_disk_buffer_events{sink="siem"}'), 100);
    recv.respond = () => 200;
    await waitFor("b's events delivered", () => second.every((id) => recv.received.includes(id)));
    assert(!first.some((id) => recv.received.includes(id)), "a's events wait in a");
    const back = await reload(d, config("a"));
    assertEquals(back.msg, "config reloaded", JSON.stringify(back));
    await waitFor("a's events delivered", () => first.every((id) => recv.received.includes(id)));
    // The receiver records a batch before it answers: the cursor moves just after.
    await waitFor(
      "both folders delivered",
      async () =>
        (await inspectBuffer(`${dir}/a`)).undelivered === 0 &&
        (await inspectBuffer(`${dir}/b`)).undelivered === 0,
    );
    const { code } = await d.stop();
    assertEquals(code, 0);
  } finally {
    await recv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk buffer reload: a new buffer path drains the old folder into the sink while the collector is up", async () => {
  const recv = await startReceiver();
  const release = recv.stall();
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskreload-" });
  const config = (path: string) => relayConfig(recv, sinkLines(path), TOP)(dir);
  try {
    const d = await startDaemon(() => config("a"), { dir });
    const first = await post(d, "da", 200);
    await waitFor("a delivery under way", () => recv.requests > 0);
    // The collector is slow, not down: the old branch keeps delivering until a is empty.
    const moved = await reload(d, config("b"));
    assertEquals(moved.msg, "config reloaded", JSON.stringify(moved));
    release();
    const second = await post(d, "db", 50);
    await waitFor(
      "every event delivered",
      () => [...first, ...second].every((id) => recv.received.includes(id)),
    );
    assert(!d.logs.some((r) => r.msg === "disk buffer closed with events not yet delivered"));
    await waitFor("a delivered", async () => (await inspectBuffer(`${dir}/a`)).undelivered === 0);
    const { code } = await d.stop();
    assertEquals(code, 0);
  } finally {
    await recv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk buffer reload: a sink added with the path of a folder another sink holds gets no buffer (logged, naming this process) while the holder goes on delivering", async () => {
  const recv = await startReceiver();
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskreload-" });
  const one = relayConfig(recv, sinkLines("a"), TOP)(dir);
  const two = one.replace(
    "server:",
    [
      "  - type: webhook",
      "    name: copy",
      "    kubeconfig: siem.kubeconfig",
      "    buffer: {type: disk, path: a}",
      "server:",
    ].join("\n"),
  );
  try {
    const d = await startDaemon(() => one, { dir });
    const port = await d.webhookPort();
    const r = await reload(d, two);
    assertEquals(r.msg, "config reloaded", JSON.stringify(r));
    const refused = await d.waitLog((r) =>
      r.msg === "disk buffer cannot be opened" && r.sink === "copy"
    );
    assert(/in use by this process/.test(JSON.stringify(refused.error)), JSON.stringify(refused));
    const events = numberedEvents("hs", 0, 20);
    const res = await postEvents(port, events);
    await res.body?.cancel();
    console.log(`answer while the copy has no buffer: ${res.status}`);
    // Its events cannot be stored for the copy: the request is not acknowledged.
    assert(res.status >= 500, `answered ${res.status}`);
    // The holder still delivers what reaches it.
    await waitFor(
      "the holder's delivery",
      () => events.every((e) => recv.received.includes(String(e.auditID))),
    );
    const { code } = await d.stop();
    assertEquals(code, 0);
  } finally {
    await recv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk buffer reload: a change of buffer type to memory leaves the folder's events there while the collector is down; a reload back to disk delivers them", async () => {
  const recv = await startReceiver();
  recv.respond = () => 503;
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskreload-" });
  const disk = relayConfig(recv, sinkLines("a"), TOP)(dir);
  const memory = disk.replace("buffer: {type: disk, path: a}", "buffer: {type: memory}");
  try {
    const d = await startDaemon(() => disk, { dir });
    const first = await post(d, "ta", 100);
    await waitFor("a delivery attempt", () => recv.requests > 0);
    assertEquals((await reload(d, memory)).msg, "config reloaded");
    const left = await d.waitLog((r) =>
      r.msg === "disk buffer closed with events not yet delivered"
    );
    assertEquals(left.events, 100);
    assertEquals((await inspectBuffer(`${dir}/a`)).undelivered, 100);
    recv.respond = () => 200;
    const second = await post(d, "tb", 20);
    await waitFor(
      "the memory branch's events",
      () => second.every((id) => recv.received.includes(id)),
    );
    assert(!first.some((id) => recv.received.includes(id)), "the folder's events wait there");
    assertEquals((await reload(d, disk)).msg, "config reloaded");
    await waitFor("the folder's events", () => first.every((id) => recv.received.includes(id)));
    const { code } = await d.stop();
    assertEquals(code, 0);
  } finally {
    await recv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
