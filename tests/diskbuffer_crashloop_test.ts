/**
 * Crash loops of the real daemon with a disk-buffered webhook sink whose collector is down:
 * events keep coming (EventLists posted to the webhook source, lines appended to a tailed
 * file) while the daemon is SIGKILLed at random moments, again and again, and restarted on
 * the same buffer folder each time. Then the collector comes up: every event the daemon
 * acknowledged (a 200, a line the tail read) arrives at least once. The duplicate count is
 * printed: it is bounded by what was delivered but not yet marked, or marked but not yet in
 * the written cursor, and with the collector down during the kills nothing was delivered, so
 * it is expected to stay at 0.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { type Daemon, startDaemon } from "./helpers/daemon.ts";
import { kubeconfigFor, startReceiver } from "./helpers/receiver.ts";
import { withTempDir } from "./helpers/tmp.ts";
import { freePort } from "./helpers/nats.ts";
import { waitFor } from "./helpers/wait.ts";
import { ClusterEvents } from "./helpers/cluster_events.ts";
import { siemSinkSettings } from "./diskbuffer_helpers.ts";
import { CURSOR_MAX_RECORDS } from "../pipeline/disk_lane.ts";

/** Events posted or appended in each crash loop, at least. */
const EVENTS = 200_000;
/** SIGKILLs in each crash loop, at least. */
const KILLS = 10;
/** Events in one EventList: kube-apiserver's webhook batches hold up to 400 by default. */
const LIST = 400;
/** Concurrent senders (kube-apiserver's batching webhook sends one list at a time per server). */
const SENDERS = 3;
/** Events in one batch of the sink: what may be written but not yet marked at a kill. */
const BATCH = 500;
/** SIGKILLs while the backlog is being delivered. */
const DELIVERY_KILLS = 3;

/** The daemon's config: `source` lines, one webhook sink `siem` with a disk buffer. */
function config(source: string[]): string {
  return [
    "sources:",
    ...source.map((l) => `  ${l}`),
    "sinks:",
    "  - type: webhook",
    "    name: siem",
    "    kubeconfig: siem.kubeconfig",
    ...siemSinkSettings(BATCH, "50ms", "{type: disk, path: buf}").map((l) => `    ${l}`),
    "server:",
    "  listen: 127.0.0.1:0",
    "shutdownTimeout: 10s",
    "",
  ].join("\n");
}

/** A random delay in [`min`, `max`) ms. */
function pause(min: number, max: number): Promise<void> {
  return new Promise((r) => setTimeout(r, min + Math.random() * (max - min)));
}

/**
 * Brings the collector up at `port` and runs the daemon on `dir` until every id in
 * `expected` has arrived: it is SIGKILLed {@linkcode DELIVERY_KILLS} times at random moments
 * while it delivers, then runs to the end and stops cleanly. Prints the duplicates and
 * returns their count.
 */
async function deliverAll(
  dir: string,
  port: number,
  cfg: () => string,
  expected: Set<string>,
  what: string,
): Promise<number> {
  const recv = await startReceiver(port);
  try {
    const t0 = performance.now();
    for (let k = 0; k < DELIVERY_KILLS; k++) {
      const d = await startDaemon(cfg, { dir });
      await waitFor("a delivery", () => recv.requests > 0, { timeoutMs: 60_000 });
      await pause(0, 1500);
      d.process.kill("SIGKILL");
      await d.exited();
    }
    const d = await startDaemon(cfg, { dir });
    const missing = () => {
      const got = new Set(recv.received);
      return [...expected].filter((id) => !got.has(id));
    };
    await waitFor(
      `every ${what} delivered`,
      () => recv.received.length >= expected.size && missing().length === 0,
      {
        timeoutMs: 120_000,
        intervalMs: 250,
        detail: () => `${missing().length} of ${expected.size} missing`,
      },
    );
    const seconds = (performance.now() - t0) / 1000;
    const { code } = await d.stop();
    assertEquals(code, 0);
    const duplicates = recv.received.length - new Set(recv.received).size;
    console.log(
      `${what}: ${recv.received.length} received in ${seconds.toFixed(1)} s after the ` +
        `collector came up (${DELIVERY_KILLS} SIGKILLs meanwhile), ${duplicates} duplicates`,
    );
    return duplicates;
  } finally {
    await recv.close();
  }
}

Deno.test("crash loop, webhook source: EventLists posted while the collector is down and the daemon is SIGKILLed at random moments, at least 10 times and until 200,000 events were answered 200; every one of them arrives", () =>
  withTempDir("auditpipe-crashloop-", async (dir) => {
    const events = new ClusterEvents(14);
    const port = freePort();
    await Deno.writeTextFile(`${dir}/siem.kubeconfig`, kubeconfigFor(`http://127.0.0.1:${port}/`));
    const cfg = () => config(["- type: webhook", "  listen: 127.0.0.1:0"]);
    const accepted = new Set<string>();
    let next = 0, oks = 0, refused = 0, cut = 0, kills = 0;
    const t0 = performance.now();
    while (kills < KILLS || accepted.size < EVENTS) {
      const d: Daemon = await startDaemon(cfg, { dir });
      let killed = false;
      let round = 0;
      // One kill in four lands while the daemon starts (recovering the backlog).
      const early = kills % 4 === 3;
      const senders = early ? [] : await (async () => {
        const webhook = await d.webhookPort();
        const sender = async () => {
          while (!killed) {
            const from = next;
            next += LIST;
            try {
              const res = await fetch(`http://127.0.0.1:${webhook}/audit`, {
                method: "POST",
                headers: { "content-type": "application/json" },
                body: events.list(from, LIST),
              });
              await res.body?.cancel();
              if (res.status !== 200) {
                refused++;
                continue;
              }
              oks++;
              round += LIST;
              for (let n = from; n < from + LIST; n++) accepted.add(events.id(n));
            } catch {
              // The daemon died before answering: those events were not acknowledged.
              cut++;
            }
          }
        };
        return Array.from({ length: SENDERS }, sender);
      })();
      if (early) await pause(0, 400);
      else {
        // After a random share of the events (20,000 a round on average), whatever the
        // machine's speed, and at a random moment within a request.
        const share = (0.2 + Math.random() * 1.6) * EVENTS / KILLS;
        await waitFor("events answered 200 in this round", () => round >= share, {
          timeoutMs: 120_000,
          intervalMs: 5,
        });
        await pause(0, 30);
      }
      d.process.kill("SIGKILL");
      killed = true;
      kills++;
      await d.exited();
      await Promise.all(senders);
    }
    console.log(
      `${kills} SIGKILLs in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${next} events ` +
        `posted, ${oks} lists answered 200 (${accepted.size} events), ${refused} refused, ` +
        `${cut} cut by a kill`,
    );
    const duplicates = await deliverAll(dir, port, cfg, accepted, "event answered 200");
    // Nothing was delivered before the collector came up: each kill while delivering may
    // repeat at most the one batch that was written and not yet marked delivered, and what
    // was marked since the cursor was last written.
    assert(
      duplicates <= DELIVERY_KILLS * (BATCH + CURSOR_MAX_RECORDS),
      `${duplicates} duplicates: more than one batch and the unwritten cursor per kill while delivering`,
    );
  }));

Deno.test("crash loop, tail source: 200,000 lines appended to the file while the collector is down and the daemon is SIGKILLed at random moments 10 times; every line arrives", () =>
  withTempDir("auditpipe-crashloop-", async (dir) => {
    const events = new ClusterEvents(15);
    const port = freePort();
    await Deno.writeTextFile(`${dir}/siem.kubeconfig`, kubeconfigFor(`http://127.0.0.1:${port}/`));
    const cfg = () =>
      config([
        "- type: tail",
        "  path: audit.log",
        "  startAt: beginning",
        "  checkpointFile: tail.pos",
        "  pollInterval: 50ms",
      ]);
    const log = await Deno.open(`${dir}/audit.log`, { write: true, create: true, append: true });
    const enc = new TextEncoder();
    let written = 0;
    // kube-apiserver's log writer flushes a buffer at a time: lines are often cut between
    // two writes, so the tail meets half lines.
    const writer = (async () => {
      try {
        while (written < EVENTS) {
          const lines: string[] = [];
          for (let n = written; n < written + 1000; n++) lines.push(events.line(n) + "\n");
          const data = enc.encode(lines.join(""));
          const cut = Math.floor(Math.random() * data.length);
          for (const part of [data.subarray(0, cut), data.subarray(cut)]) {
            for (let off = 0; off < part.length;) off += await log.write(part.subarray(off));
            await pause(0, 10);
          }
          written += 1000;
          await pause(20, 80);
        }
      } finally {
        log.close();
      }
    })();
    let done = false;
    writer.finally(() => done = true);
    let kills = 0;
    const t0 = performance.now();
    while (kills < KILLS || !done) {
      const d = await startDaemon(cfg, { dir });
      // One kill in four lands while the daemon starts (recovering the backlog).
      await pause(kills % 4 === 3 ? 0 : 200, kills % 4 === 3 ? 400 : 2500);
      d.process.kill("SIGKILL");
      kills++;
      await d.exited();
    }
    await writer;
    console.log(
      `${kills} SIGKILLs in ${((performance.now() - t0) / 1000).toFixed(1)} s while ` +
        `${written} lines were appended`,
    );
    const expected = new Set(Array.from({ length: written }, (_, n) => events.id(n)));
    await deliverAll(dir, port, cfg, expected, "line");
  }));
