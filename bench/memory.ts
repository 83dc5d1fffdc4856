/**
 * Memory: how much the daemon's RSS grows per byte of events held in a `batch`-mode webhook
 * sink whose receiver has stalled (it takes the first request and never answers until the
 * end), compared with the serialized size of those events.
 *
 * Before the baseline is read, a warm-up of the same kind of traffic runs through the whole
 * path (HTTP, decoding, policy) and is dropped by a policy rule for a warm-up user, so the
 * baseline already holds the compiled code and the warmed-up allocator, and the growth
 * measured is the events' own.
 *
 * @module
 */
import { kubeconfigFor } from "../tests/helpers/receiver.ts";
import {
  daemon,
  eventListBody,
  lineToItem,
  medianRow,
  num,
  poll,
  type Row,
  sample,
  type Samples,
  scrape,
  sinkCounts,
  sleep,
  WEBHOOK_SOURCE_YAML,
} from "./lib.ts";

/** Events held in the stalled sink's buffer. */
export const HELD = 10_000;
const WARMUP_USER = "bench:warmup";

function kind(s: Samples, k: string): number {
  return sample(s, "auditpipe_memory_bytes", { kind: k });
}
const rss = (s: Samples) => kind(s, "rss");
const heap = (s: Samples) => kind(s, "heap_used");
const mb = (bytes: number) => num(bytes / 1e6, 1);

/** The same events, attributed to the warm-up user the policy drops. */
function warmupItems(lines: readonly string[]): string[] {
  return lines.map((l) => {
    const e = JSON.parse(lineToItem(l)) as { user: { username: string } };
    e.user.username = WARMUP_USER;
    return JSON.stringify(e);
  });
}

/**
 * Measures RSS growth while `HELD` events (the first of `lines`) wait in a stalled sink, on
 * `opts.runs` fresh daemons, and reports the run with the median ratio: the growth depends
 * on when V8 last collected, which varies from run to run.
 *
 * @example
 * ```ts
 * const row = await benchMemory(lines, { log: console.error, runs: 3 });
 * ```
 */
export async function benchMemory(
  lines: readonly string[],
  opts: { log: (msg: string) => void; runs: number },
): Promise<Row> {
  const rows: (Row & { value: number; growth: string })[] = [];
  for (let i = 0; i < opts.runs; i++) rows.push(await memoryOnce(lines, opts));
  return medianRow(
    rows,
    `per-run ratios ${rows.map((r) => r.value.toFixed(2)).join(", ")}; growth of ` +
      `rss/heap_total/external per run, MB: ${rows.map((r) => r.growth).join(", ")}`,
  );
}

async function memoryOnce(
  lines: readonly string[],
  opts: { log: (msg: string) => void },
): Promise<Row & { value: number; growth: string }> {
  if (lines.length === 0) throw new Error("memory: no events");
  // Small --size-mb runs may have fewer events than held: they repeat (auditIDs included,
  // which a buffer does not care about).
  const cycle = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => lines[(from + i) % lines.length]);
  const held = cycle(0, HELD);
  const serialized = held.reduce((n, l) => n + new TextEncoder().encode(l).length, 0);
  const bodies = [];
  for (let i = 0; i < held.length; i += 400) {
    bodies.push(eventListBody(held.slice(i, i + 400).map(lineToItem)));
  }
  const warm = warmupItems(cycle(HELD, 8000));
  const warmBodies = [];
  for (let i = 0; i < warm.length; i += 400) warmBodies.push(eventListBody(warm.slice(i, i + 400)));

  // The stalled receiver: it reads each request and answers only when released.
  const release = Promise.withResolvers<void>();
  let requests = 0;
  const receiver = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      requests++;
      await req.arrayBuffer();
      await release.promise;
      return new Response("{}");
    },
  );
  const url = `http://127.0.0.1:${receiver.addr.port}/ingest`;
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-memory-" });
  await Deno.writeTextFile(`${dir}/siem.kubeconfig`, kubeconfigFor(url));
  const d = await daemon(() => `
${WEBHOOK_SOURCE_YAML}sinks:
  - type: webhook
    name: siem
    kubeconfig: ${dir}/siem.kubeconfig
    mode: batch
    timeout: 10m
    retry: {maxAttempts: 1}
    batch: {bufferSize: ${HELD}, maxSize: 400, maxWait: 1s, throttle: {enabled: false}}
    policy:
      apiVersion: audit.k8s.io/v1
      kind: Policy
      rules:
        - level: None
          users: ["${WARMUP_USER}"]
        - level: RequestResponse
server:
  listen: 127.0.0.1:0
shutdownTimeout: 5s
`, { dir });
  try {
    const port = await d.webhookPort();
    const ops = await d.opsPort();
    const post = async (body: string) => {
      const res = await fetch(`http://127.0.0.1:${port}/audit`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`memory: daemon answered ${res.status}`);
    };
    for (let round = 0; round < 3; round++) for (const b of warmBodies) await post(b);
    await poll(async () => sinkCounts(await scrape(ops), "siem").buffered === 0 || undefined, {
      everyMs: 100,
      timeoutMs: 30_000,
      what: "the warm-up to drain",
    });
    await sleep(2000);
    const before = await scrape(ops);
    opts.log(`memory: baseline rss ${num(rss(before) / 1e6, 1)} MB; sending ${HELD} events`);
    for (const b of bodies) await post(b);
    const held = await poll(async () => {
      const s = await scrape(ops);
      const c = sinkCounts(s, "siem");
      return c.received - sinkCounts(before, "siem").received >= HELD ? s : undefined;
    }, { everyMs: 100, timeoutMs: 30_000, what: "the events to be buffered" });
    // Give the collector a moment, as a steady state would, before reading the growth.
    await sleep(2000);
    const after = await scrape(ops);
    const c = sinkCounts(after, "siem");
    const growth = rss(after) - rss(before);
    const heapGrowth = heap(after) - heap(before);
    const ratio = growth / serialized;
    const stalledRequests = requests;
    release.resolve();
    await d.stop("SIGTERM");
    const notes = [
      `held ${num(c.buffered)} buffered (${
        num(sinkCounts(held, "siem").buffered)
      } when first seen), ${num(c.written)} written, dropped buffer_full ${
        sample(after, "auditpipe_sink_dropped_total", { sink: "siem", reason: "buffer_full" })
      }; the receiver held ${stalledRequests} request(s) unanswered`,
      `rss ${mb(rss(before))} → ${mb(rss(after))} MB; heap_used ${mb(heap(before))} → ${
        mb(heap(after))
      } MB (growth ${(heapGrowth / serialized).toFixed(2)}×); heap_total ${
        mb(kind(before, "heap_total"))
      } → ${mb(kind(after, "heap_total"))} MB; external ${mb(kind(before, "external"))} → ${
        mb(kind(after, "external"))
      } MB`,
    ];
    return {
      name: `memory: ${num(HELD)} events held by a stalled batch webhook sink`,
      result: `RSS +${mb(growth)} MB`,
      baseline: `${mb(serialized)} MB serialized`,
      ratio: `${ratio.toFixed(2)}×`,
      goal: "≤ 1.5× serialized",
      met: ratio <= 1.5,
      notes,
      value: ratio,
      growth: [
        growth,
        kind(after, "heap_total") - kind(before, "heap_total"),
        kind(after, "external") - kind(before, "external"),
      ]
        .map(mb).join("/"),
    };
  } finally {
    release.resolve();
    await d.stop("SIGKILL").catch(() => {});
    await receiver.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
