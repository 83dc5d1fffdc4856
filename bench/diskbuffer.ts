/**
 * Disk buffer benchmarks.
 *
 * - `micro` (in process, no daemon): appends/s and events/s with and without fsync while a
 *   consumer reads and marks, p50/p99 latency from `append()` to its resolution (after the
 *   group commit's fsync), and memory while a backlog of `--backlog-mb` is written and then
 *   drained.
 * - `e2e`: the daemon, webhook → log sink in batch mode with a disk buffer (fsync always)
 *   against a memory buffer, `--pairs` times alternating, medians: a closed loop (EventLists of
 *   100, `--senders` 4) for events acknowledged/s, the daemon's CPU per 1000 events (all
 *   threads and the main one), commits/s and their mean fsync; then open loops at fixed rates
 *   for the acknowledgement latency from send to answer (half the memory buffer's closed-loop
 *   rate, EventLists of 100; like kube-apiserver's batch backend, EventLists of 400 at 10 per
 *   second; and like its blocking backend, where each API request waits for its event's
 *   answer: EventLists of 1 at 500 per second). A closed loop's p99 is its requests in flight over its throughput (Little's
 *   law), so only the open loops' p99 measures what one acknowledgement waits. `--cpu-prof
 *   DIR` profiles every daemon and prints where the first pair's time went.
 * - `backlog`: the daemon with a webhook sink whose collector is down, until its disk buffer
 *   holds `--backlog-mb`; RSS at 10%, 50% and 100% of that; then the collector comes up and
 *   the drain rate is measured.
 *
 * ```
 * deno run -A bench/diskbuffer.ts [--only micro,e2e,backlog] [--seconds 5] [--producers 32]
 *   [--batch 10] [--backlog-mb 1024] [--e2e-seconds 10] [--open-seconds 10] [--pairs 3]
 *   [--senders 4] [--no-apiserver] [--sink log|null] [--cpu-prof DIR]
 * ```
 *
 * Progress goes to stderr, results to stdout. Speed is measured here only, never asserted.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BufferRecord, DiskBuffer } from "../pipeline/diskbuffer/store.ts";
import {
  daemon,
  eventListBody,
  histogramPercentile,
  lineToItem,
  median,
  num,
  percentile,
  procCpuSeconds,
  readLines,
  type Row,
  sample,
  type Samples,
  scrape,
  sinkCounts,
  sleep,
  WEBHOOK_SOURCE_YAML,
} from "./lib.ts";
import { openLoop, Pool, postRequest } from "./http_client.ts";
import { formatSummary, newestProfile, summarizeProfile } from "./profile.ts";
import { ensureData } from "./generate.ts";
import { FsyncProbe } from "./fsync_probe.ts";
import { kubeconfigFor } from "../tests/helpers/receiver.ts";
import { peakRssBytes } from "../tests/helpers/peak_rss.ts";

const enc = new TextEncoder();
const MB = 1024 * 1024;

/** Options of {@linkcode benchDiskBuffer}. */
export interface DiskBufferBenchOptions {
  readonly seconds: number;
  readonly producers: number;
  readonly batch: number;
  readonly backlogMb: number;
  readonly log: (msg: string) => void;
}

/** A realistic Metadata-level event of about 1-2 KB. */
function record(i: number): BufferRecord {
  const auditID = `7b3f2c1e-0000-4000-8000-${String(i).padStart(12, "0")}`;
  const event = {
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "Metadata",
    auditID,
    stage: "ResponseComplete",
    requestURI: `/apis/apps/v1/namespaces/team-${i % 50}/deployments/web-${i % 997}`,
    verb: i % 5 === 0 ? "update" : "get",
    user: {
      username: "system:serviceaccount:kube-system:deployment-controller",
      uid: "0b6f9a2c-6f0e-4c1a-9d51-3c4b1b0f6c2a",
      groups: [
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
        "system:authenticated",
      ],
    },
    sourceIPs: ["10.0.0.12"],
    userAgent:
      "kube-controller-manager/v1.31.2 (linux/amd64) kubernetes/5864a46/system:serviceaccount:kube-system:deployment-controller",
    objectRef: {
      resource: "deployments",
      namespace: `team-${i % 50}`,
      name: `web-${i % 997}`,
      apiGroup: "apps",
      apiVersion: "v1",
    },
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: "2026-12-01T12:00:00.000000Z",
    stageTimestamp: "2026-12-01T12:00:00.004000Z",
    annotations: {
      "authorization.k8s.io/decision": "allow",
      "authorization.k8s.io/reason":
        'RBAC: allowed by ClusterRoleBinding "system:controller:deployment-controller"',
      pad: "x".repeat(i % 800),
    },
  };
  return {
    auditID,
    stage: "ResponseComplete",
    levelChanged: false,
    bytes: enc.encode(JSON.stringify(event)),
  };
}

/** Steady state: producers append, a consumer reads and marks every 1000 records. */
async function throughput(
  fsync: boolean,
  opts: DiskBufferBenchOptions,
): Promise<
  {
    events: number;
    appends: number;
    p50: number;
    p99: number;
    fsyncs: number;
    fsyncP99: number;
    fsyncMean: number;
    secs: number;
  }
> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-diskbuf-" });
  const buf = await DiskBuffer.open({
    path: dir,
    maxBytes: 4096 * MB,
    segmentBytes: 64 * MB,
    fsync,
  });
  const pool = Array.from({ length: 1000 }, (_, i) => record(i));
  const ac = new AbortController();
  const consumer = (async () => {
    let n = 0;
    for await (const r of buf.read({ follow: true, signal: ac.signal })) {
      if (++n % 1000 === 0) await buf.markDelivered(r);
    }
  })();
  const latencies: number[] = [];
  let events = 0;
  const started = performance.now();
  const deadline = started + opts.seconds * 1000;
  await Promise.all(Array.from({ length: opts.producers }, async (_, p) => {
    let i = p * 7;
    while (performance.now() < deadline) {
      const batch: BufferRecord[] = [];
      for (let k = 0; k < opts.batch; k++) batch.push(pool[i++ % pool.length]);
      const t0 = performance.now();
      await buf.append(batch);
      latencies.push(performance.now() - t0);
      events += batch.length;
    }
  }));
  const secs = (performance.now() - started) / 1000;
  ac.abort();
  await consumer;
  const series = buf.stats.fsync.series.get("segment");
  const fsyncs = series?.counts.at(-1) ?? 0;
  // The histogram's bucket holding the 99th percentile: an upper bound, in ms.
  const b99 = series?.counts.findIndex((c) => c >= fsyncs * 0.99) ?? -1;
  const bounds = buf.stats.fsync.bounds;
  const fsyncP99 = b99 < 0 || b99 >= bounds.length ? Infinity : bounds[b99] * 1000;
  const fsyncMean = series && fsyncs > 0 ? series.sum / fsyncs * 1000 : 0;
  await buf.close();
  await Deno.remove(dir, { recursive: true });
  latencies.sort((a, b) => a - b);
  return {
    events,
    appends: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    fsyncs,
    fsyncP99,
    fsyncMean,
    secs,
  };
}

/** Writes a backlog of `backlogMb` with fsync and no consumer, then drains it; samples RSS. */
async function backlog(opts: DiskBufferBenchOptions) {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-diskbuf-" });
  const target = opts.backlogMb * MB;
  const buf = await DiskBuffer.open({
    path: dir,
    maxBytes: target + 256 * MB,
    segmentBytes: 64 * MB,
  });
  const pool = Array.from({ length: 1000 }, (_, i) => record(i));
  const rss = () => Deno.memoryUsage().rss / MB;
  const startRss = rss();
  let fillMax = startRss;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: opts.producers }, async () => {
    while (buf.stats.bytes < target) {
      const batch: BufferRecord[] = [];
      for (let k = 0; k < 100; k++) batch.push(pool[next++ % pool.length]);
      await buf.append(batch);
      if (next % 100_000 < 100) {
        fillMax = Math.max(fillMax, rss());
        opts.log(`backlog ${(buf.stats.bytes / MB).toFixed(0)} MiB, rss ${rss().toFixed(0)} MiB`);
      }
    }
  }));
  const fillSecs = (performance.now() - t0) / 1000;
  const events = buf.stats.events;
  const bytes = buf.stats.bytes;
  fillMax = Math.max(fillMax, rss());
  const t1 = performance.now();
  let drainMax = rss();
  let n = 0;
  for await (const r of buf.read()) {
    if (++n % 1000 === 0) await buf.markDelivered(r);
    if (n % 100_000 === 0) {
      drainMax = Math.max(drainMax, rss());
      opts.log(`drained ${n} events, rss ${rss().toFixed(0)} MiB`);
    }
  }
  const drainSecs = (performance.now() - t1) / 1000;
  drainMax = Math.max(drainMax, rss());
  await buf.close();
  await Deno.remove(dir, { recursive: true });
  return { events, bytes, fillSecs, drainSecs, startRss, fillMax, drainMax, drained: n };
}

/**
 * Runs the disk buffer benchmarks and returns a results-table row.
 *
 * @example
 * ```ts
 * const row = await benchDiskBuffer({ seconds: 5, producers: 32, batch: 10, backlogMb: 200, log: console.error });
 * ```
 */
export async function benchDiskBuffer(opts: DiskBufferBenchOptions): Promise<Row> {
  opts.log(
    `diskbuffer: ${opts.producers} producers × ${opts.batch} events per append, ${opts.seconds} s, fsync on`,
  );
  const on = await throughput(true, opts);
  opts.log(`diskbuffer: the same with fsync off`);
  const off = await throughput(false, opts);
  opts.log(`diskbuffer: backlog of ${opts.backlogMb} MiB`);
  const b = await backlog(opts);
  const rate = (x: { events: number; secs: number }) => Math.round(x.events / x.secs);
  const fmt = (n: number) => n.toLocaleString("en-US");
  const notes = [
    `fsync on: ${fmt(rate(on))} events/s, ${fmt(Math.round(on.appends / on.secs))} appends/s, ` +
    `append→fsync p50 ${on.p50.toFixed(2)} ms, p99 ${on.p99.toFixed(2)} ms, ` +
    `${fmt(on.fsyncs)} fsyncs (${
      (on.appends / Math.max(1, on.fsyncs)).toFixed(1)
    } appends per fsync)`,
    `fsync off: ${fmt(rate(off))} events/s, ${
      fmt(Math.round(off.appends / off.secs))
    } appends/s, ` +
    `p50 ${off.p50.toFixed(2)} ms, p99 ${off.p99.toFixed(2)} ms`,
    `backlog: ${fmt(b.events)} events, ${(b.bytes / MB).toFixed(0)} MiB written in ` +
    `${b.fillSecs.toFixed(1)} s (${(b.bytes / MB / b.fillSecs).toFixed(0)} MiB/s), drained ` +
    `${fmt(b.drained)} in ${b.drainSecs.toFixed(1)} s; RSS ${
      b.startRss.toFixed(0)
    } MiB at start, ` +
    `max ${b.fillMax.toFixed(0)} MiB while filling, max ${
      b.drainMax.toFixed(0)
    } MiB while draining`,
  ];
  return {
    name: "disk buffer append → fsync (bench/diskbuffer.ts, in process)",
    result: `${fmt(rate(on))} events/s, p99 ${on.p99.toFixed(1)} ms`,
    baseline: `fsync off: ${fmt(rate(off))} events/s`,
    ratio: (rate(on) / Math.max(1, rate(off))).toFixed(2),
    goal: "p99 < 20 ms",
    met: on.p99 < 20,
    notes,
  };
}

/** Latency of one open-loop phase (send to answer), ms. */
interface OpenRun {
  readonly rate: number;
  readonly events: number;
  readonly requests: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  /** How late the sender was against its schedule, p99, ms. */
  readonly lagP99: number;
  /** The daemon's own p99, arrival to answer (its request duration histogram), ms. */
  readonly daemonP99: number;
  /** The disk buffer's segment fsync p99 (its histogram, interpolated in the bucket), ms. */
  readonly fsyncP99: number;
  /** Another thread's fsyncs of 16 KiB every 10 ms on the same disk meanwhile: p99, max, ms. */
  readonly probeP99: number;
  readonly probeMax: number;
  readonly failed: number;
}

/** What one daemon measured: a closed loop for throughput, then open loops for latency. */
interface E2eRun {
  readonly buffer: "memory" | "disk";
  readonly events: number;
  readonly secs: number;
  /** Closed-loop latency: Little's law (requests in flight ÷ throughput), not an fsync's cost. */
  readonly p50: number;
  readonly p99: number;
  readonly failed: number;
  readonly written: number;
  /** The daemon's CPU time (user + system, all threads) per 1000 events acknowledged, ms. */
  readonly cpuMsPer1k: number;
  /** The same, of its main (JavaScript) thread only. */
  readonly mainCpuMsPer1k: number;
  /** Segment fsyncs (group commits), their mean wall time, and cursor writes, over the run. */
  readonly fsyncs: number;
  readonly fsyncMeanMs: number;
  readonly cursorFsyncs: number;
  /** Open loop at half the memory buffer's closed-loop rate, EventLists of `E2E_EVENTS`. */
  readonly half: OpenRun;
  /** Open loop like kube-apiserver's batch backend: EventLists of 400 at 10 per second. */
  readonly apiserver: OpenRun | undefined;
  /** Open loop like kube-apiserver's blocking backend: EventLists of 1 at 500 per second. */
  readonly blocking: OpenRun | undefined;
}

/** CPU time used by process `pid` so far (user + system, all threads), ms; 0 when unknown. */
function cpuMs(pid: number): Promise<number> {
  return procCpuSeconds(pid).then((s) => s * 1000, () => 0);
}

/** CPU time of process `pid`'s main thread so far (user + system), ms; 0 when unknown. */
async function mainThreadCpuMs(pid: number): Promise<number> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/task/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

/** Up to 200 request bodies of `events` events each, from `lines`. */
function requestBodies(lines: readonly string[], events = E2E_EVENTS): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  for (let i = 0; i + events <= lines.length && bodies.length < 200; i += events) {
    bodies.push(enc.encode(eventListBody(lines.slice(i, i + events).map(lineToItem))));
  }
  if (bodies.length === 0) throw new Error("disk bench: not enough events for one request");
  return bodies;
}

/** Events per request and concurrent senders of the end-to-end case. */
const E2E_EVENTS = 100;
const E2E_SENDERS = 4;
/** kube-apiserver's batch webhook backend: at most 400 events per EventList, throttled to 10 QPS. */
const APISERVER_EVENTS = 400;
const APISERVER_QPS = 10;
/**
 * kube-apiserver's blocking webhook backend: one event per request, sent from the API request
 * that it audits, which waits for the answer. 500 events/s: a busy cluster's API traffic.
 */
const BLOCKING_RATE = 500;

/** What `e2eOnce` runs. */
interface E2eSpec {
  readonly bodies: readonly Uint8Array[];
  readonly apiserverBodies: readonly Uint8Array[];
  /** One event each (empty: the blocking-like loop does not run). */
  readonly blockingBodies: readonly Uint8Array[];
  readonly buffer: "memory" | "disk";
  readonly seconds: number;
  readonly senders: number;
  /** Events per second of the open loop; undefined: half of this daemon's closed-loop rate. */
  readonly openRate: number | undefined;
  readonly openSeconds: number;
  /** Where the log sink writes: `out.log` in the daemon's folder, or `/dev/null`. */
  readonly sink: "log" | "null";
  readonly cpuProfDir?: string;
}

const BUFFER_YAML = {
  memory: "{type: memory}",
  disk: "{type: disk, path: buf, maxBytes: 4GiB, whenFull: block, fsync: always}",
};

/**
 * One daemon: webhook → log sink (`batch` mode) with a memory or disk buffer. First senders in
 * a closed loop for `seconds` (events acknowledged per second), then open loops at fixed rates
 * (latency from send to answer).
 */
async function e2eOnce(spec: E2eSpec, log: (msg: string) => void): Promise<E2eRun> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-disk-e2e-" });
  const prof = spec.cpuProfDir;
  const d = await daemon(() => `
${WEBHOOK_SOURCE_YAML}sinks:
  - type: log
    name: out
    path: ${spec.sink === "null" ? "/dev/null" : "out.log"}
    format: json
    mode: batch
    fsync: never
    rotate: {maxSize: 0, maxBackup: 0, maxAge: 0}
    batch: {bufferSize: 100000, maxSize: 1000, maxWait: 50ms, throttle: {enabled: false}}
    buffer: ${BUFFER_YAML[spec.buffer]}
server:
  listen: 127.0.0.1:0
shutdownTimeout: 5s
`, { dir, denoFlags: prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [] });
  let probe: FsyncProbe | undefined;
  try {
    const pid = d.process.pid;
    const ops = await d.opsPort();
    const pool = new Pool(await d.webhookPort());
    const requests = spec.bodies.map((b) => postRequest("/audit", b));
    await sleep(300);
    const latency: number[] = [];
    let failed = 0;
    let i = 0;
    const [cpu0, main0] = [await cpuMs(pid), await mainThreadCpuMs(pid)];
    const t0 = performance.now();
    const end = t0 + spec.seconds * 1000;
    const loop = async () => {
      while (performance.now() < end) {
        const sent = performance.now();
        const status = await pool.send(requests[i++ % requests.length]);
        latency.push(performance.now() - sent);
        if (status !== 200) failed++;
      }
    };
    await Promise.all(Array.from({ length: spec.senders }, loop));
    const secs = (performance.now() - t0) / 1000;
    const [cpu, main] = [await cpuMs(pid) - cpu0, await mainThreadCpuMs(pid) - main0];
    const closed = await scrape(ops);
    const written = sinkCounts(closed, "out").written;
    const fsync = (what: string, x: string) =>
      sample(closed, `auditpipe_disk_buffer_fsync_duration_seconds_${x}`, {
        sink: "out",
        file: what,
      });
    latency.sort((a, b) => a - b);
    const events = (latency.length - failed) * E2E_EVENTS;
    const rate = events / secs;
    // What the closed loop left in the buffer is written meanwhile.
    await sleep(1000);
    const openRate = spec.openRate ?? rate / 2;
    log(`  ${spec.buffer}: ${num(rate)} events/s closed loop; open loop at ${num(openRate)}/s`);
    // From here on: the open loops' latency, with the disk's own fsync latency beside it.
    const diskProbe = probe = new FsyncProbe(`${dir}/probe.dat`);
    const half = await openPhase(
      ops,
      pool,
      diskProbe,
      requests,
      openRate,
      E2E_EVENTS,
      spec.openSeconds,
    );
    // Like kube-apiserver's two webhook backends, each after a pause; skipped without bodies.
    const kubeLoop = async (bodies: readonly Uint8Array[], rate: number, events: number) => {
      if (bodies.length === 0) return undefined;
      await sleep(500);
      const reqs = bodies.map((b) => postRequest("/audit", b));
      return await openPhase(ops, pool, diskProbe, reqs, rate, events, spec.openSeconds);
    };
    const apiserver = await kubeLoop(
      spec.apiserverBodies,
      APISERVER_QPS * APISERVER_EVENTS,
      APISERVER_EVENTS,
    );
    const blocking = await kubeLoop(spec.blockingBodies, BLOCKING_RATE, 1);
    pool.close();
    // What the sink has not written by now stays on disk (shutdownTimeout 5s): on a loaded
    // machine a full drain could outlast the helper's exit deadline.
    await d.stop("SIGTERM");
    const per1k = (ms: number) => ms / Math.max(1, events / 1000);
    return {
      buffer: spec.buffer,
      events,
      secs,
      p50: percentile(latency, 50),
      p99: percentile(latency, 99),
      failed,
      written,
      cpuMsPer1k: per1k(cpu),
      mainCpuMsPer1k: per1k(main),
      fsyncs: fsync("segment", "count"),
      fsyncMeanMs: fsync("segment", "sum") / Math.max(1, fsync("segment", "count")) * 1000,
      cursorFsyncs: fsync("cursor", "count"),
      half,
      apiserver,
      blocking,
    };
  } finally {
    probe?.stop();
    await d.stop("SIGKILL").catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** An open loop of `events`-event requests at `eventRate` events/s; the daemon's p99 too. */
async function openPhase(
  ops: number,
  pool: Pool,
  probe: FsyncProbe,
  requests: readonly Uint8Array[],
  eventRate: number,
  events: number,
  seconds: number,
): Promise<OpenRun> {
  const before = await scrape(ops);
  await probe.take();
  const r = await openLoop(pool, requests, eventRate / events, seconds);
  const probed = (await probe.take()).sort((a, b) => a - b);
  const after = await scrape(ops);
  const daemonP99 = histogramPercentile(
    before,
    after,
    "auditpipe_source_request_duration_seconds",
    { source: "apiserver", code: "200" },
    99,
  );
  const fsyncP99 = histogramPercentile(
    before,
    after,
    "auditpipe_disk_buffer_fsync_duration_seconds",
    { sink: "out", file: "segment" },
    99,
  );
  let failed = 0;
  for (const n of r.failed.values()) failed += n;
  return {
    rate: eventRate,
    events,
    requests: r.latency.length,
    p50: percentile(r.latency, 50),
    p99: percentile(r.latency, 99),
    p999: percentile(r.latency, 99.9),
    max: percentile(r.latency, 100),
    lagP99: percentile(r.lag, 99),
    daemonP99: daemonP99 * 1000,
    fsyncP99: fsyncP99 * 1000,
    probeP99: percentile(probed, 99),
    probeMax: percentile(probed, 100),
    failed,
  };
}

/** Options of {@linkcode benchDiskE2e}. */
export interface DiskE2eOptions {
  /** Seconds of each closed loop. */
  readonly seconds: number;
  readonly log: (msg: string) => void;
  /** Profiles every daemon into DIR/memory-N and DIR/disk-N and summarizes the first pair. */
  readonly cpuProfDir?: string;
  /** Memory/disk pairs, alternating (default 3). */
  readonly pairs?: number;
  /** Senders of the closed loop (default 4). */
  readonly senders?: number;
  /** Seconds of each open loop (default 10). */
  readonly openSeconds?: number;
  /** Whether the kube-apiserver-like open loops (batch and blocking) run too (default true). */
  readonly apiserver?: boolean;
  /**
   * `log` (default): the log sink writes `out.log` next to the buffer, on the same disk, so
   * its writeback competes with the buffer's fsyncs; `null`: it writes `/dev/null`, which
   * leaves the disk to the buffer as a remote sink would.
   */
  readonly sink?: "log" | "null";
}

/**
 * The issue's end-to-end case: webhook ingest → disk-buffered sink (`fsync: always`) against
 * the same daemon with a memory buffer, `pairs` times alternating (memory first in even
 * pairs, disk first in odd ones), medians over the pairs. Each daemon: a closed loop (4
 * senders of EventLists of 100) for events acknowledged per second; then an open loop at half
 * the memory buffer's closed-loop rate (of the pair, or the pair before when disk runs first)
 * and one like kube-apiserver's batch backend (EventLists of 400, 10 per second) for the
 * acknowledgement latency from send to answer.
 *
 * @example
 * ```ts
 * const row = await benchDiskE2e(lines, { seconds: 10, log: console.error });
 * ```
 */
export async function benchDiskE2e(
  lines: readonly string[],
  opts: DiskE2eOptions,
): Promise<Row> {
  const bodies = requestBodies(lines);
  const apiserverBodies = opts.apiserver === false ? [] : requestBodies(lines, APISERVER_EVENTS);
  const blockingBodies = opts.apiserver === false ? [] : requestBodies(lines, 1);
  const pairs = opts.pairs ?? 3;
  const senders = opts.senders ?? E2E_SENDERS;
  const openSeconds = opts.openSeconds ?? 10;
  opts.log(
    `disk e2e: ${pairs} pairs memory/disk; closed loop ${senders} senders × ${E2E_EVENTS} events, ${opts.seconds} s; open loops ${openSeconds} s`,
  );
  const profDir = async (name: string) => {
    if (!opts.cpuProfDir) return undefined;
    const dir = `${opts.cpuProfDir}/${name}`;
    await Deno.mkdir(dir, { recursive: true });
    return dir;
  };
  const runs: { memory: E2eRun; disk: E2eRun }[] = [];
  let memoryRate: number | undefined;
  for (let p = 0; p < pairs; p++) {
    const order: ("memory" | "disk")[] = p % 2 === 0 ? ["memory", "disk"] : ["disk", "memory"];
    const pair: Partial<Record<"memory" | "disk", E2eRun>> = {};
    for (const buffer of order) {
      opts.log(`disk e2e pair ${p + 1}/${pairs}: ${buffer} buffer`);
      const r = await e2eOnce({
        bodies,
        apiserverBodies,
        blockingBodies,
        buffer,
        seconds: opts.seconds,
        senders,
        // Both daemons of a pair get the same rate: half of what the memory buffer took in
        // the closed loop (its own when it runs first; else the pair before's).
        openRate: p % 2 === 0 && buffer === "memory" ? undefined : memoryRate! / 2,
        openSeconds,
        sink: opts.sink ?? "log",
        cpuProfDir: await profDir(`${buffer}-${p + 1}`),
      }, opts.log);
      if (buffer === "memory") memoryRate = r.events / r.secs;
      pair[buffer] = r;
    }
    runs.push({ memory: pair.memory!, disk: pair.disk! });
  }
  if (opts.cpuProfDir) {
    for (const name of ["memory-1", "disk-1"]) {
      const path = await newestProfile(`${opts.cpuProfDir}/${name}`);
      console.error(`\nCPU profile of the daemon with a ${name} buffer: ${path}`);
      console.error(formatSummary(summarizeProfile(JSON.parse(await Deno.readTextFile(path)), 30)));
    }
  }
  const rate = (r: E2eRun) => r.events / r.secs;
  const ratios = runs.map((r) => rate(r.disk) / Math.max(1, rate(r.memory)));
  const m = (f: (r: E2eRun) => number, b: "memory" | "disk") => median(runs.map((r) => f(r[b])));
  const ratio = median(ratios);
  // The open loop at half the memory rate (~6x the 4,000 events/s kube-apiserver's throttled
  // batch backend sends at most) is shown but not judged: one kube-apiserver never sends that.
  const p99s = (b: "memory" | "disk") =>
    opts.apiserver === false
      ? `${ms(m((r) => r.half.p99, b))} ms (half rate)`
      : `batch-like ${ms(m((r) => r.apiserver!.p99, b))} ms, blocking-like ${
        ms(m((r) => r.blocking!.p99, b))
      } ms (half rate ${ms(m((r) => r.half.p99, b))} ms)`;
  const ms = (x: number) => x.toFixed(1);
  const open = (o: OpenRun | undefined) =>
    o === undefined
      ? ""
      : `${num(o.rate)} ev/s (${num(o.requests)} requests of ${o.events}): p50 ${ms(o.p50)}, p99 ${
        ms(o.p99)
      }, p99.9 ${ms(o.p999)}, max ${ms(o.max)} ms, daemon's own p99 ${ms(o.daemonP99)} ms${
        o.fsyncP99 > 0 ? `, fsync p99 ${ms(o.fsyncP99)} ms` : ""
      }, sender lag p99 ${ms(o.lagP99)} ms, disk probe p99 ${ms(o.probeP99)} ms, max ${
        ms(o.probeMax)
      } ms${o.failed ? `, ${o.failed} not answered 200` : ""}`;
  const line = (p: number, r: E2eRun) =>
    `pair ${p + 1} ${r.buffer}: closed loop ${num(rate(r))} events/s, ack p50 ${
      ms(r.p50)
    } ms, p99 ${ms(r.p99)} ms, CPU ${r.cpuMsPer1k.toFixed(1)} ms per 1000 events (main thread ${
      r.mainCpuMsPer1k.toFixed(1)
    }), ${num(r.written)} written by its end${
      r.fsyncs
        ? `, ${num(r.fsyncs / r.secs)} commits/s (fsync mean ${r.fsyncMeanMs.toFixed(2)} ms), ${
          num(r.cursorFsyncs / r.secs)
        } cursor writes/s`
        : ""
    }${r.failed ? `, ${r.failed} requests not answered 200` : ""}; open loop at half: ${
      open(r.half)
    }${r.apiserver ? `; apiserver-like: ${open(r.apiserver)}` : ""}${
      r.blocking ? `; blocking-like: ${open(r.blocking)}` : ""
    }`;
  const med = (b: "memory" | "disk") =>
    `${b}: ${num(m(rate, b))} events/s closed loop (p99 ${ms(m((r) => r.p99, b))} ms), CPU ${
      m((r) => r.cpuMsPer1k, b).toFixed(1)
    } ms/1000 events (main thread ${
      m((r) => r.mainCpuMsPer1k, b).toFixed(1)
    }); open loop at half the memory rate p50 ${ms(m((r) => r.half.p50, b))} ms, p99 ${
      ms(m((r) => r.half.p99, b))
    } ms${
      opts.apiserver === false
        ? ""
        : `; apiserver-like p99 ${ms(m((r) => r.apiserver!.p99, b))} ms; blocking-like p50 ${
          ms(m((r) => r.blocking!.p50, b))
        } ms, p99 ${ms(m((r) => r.blocking!.p99, b))} ms`
    }`;
  return {
    name: `webhook → disk-buffered log sink${
      opts.sink === "null" ? " (to /dev/null)" : ""
    } vs memory buffer (batch mode; medians of ${pairs} alternating pairs)`,
    result: `${num(m(rate, "disk"))} events/s, ack p99 ${p99s("disk")}`,
    baseline: `memory: ${num(m(rate, "memory"))} events/s, ack p99 ${p99s("memory")}`,
    ratio: ratio.toFixed(2),
    goal: "throughput ≥ 0.7 of memory; ack p99 < 20 ms at kube-apiserver's loads (batch, blocking)",
    met: ratio >= 0.7 && (opts.apiserver === false ||
      m((r) => r.apiserver!.p99, "disk") < 20 && m((r) => r.blocking!.p99, "disk") < 20),
    notes: [
      `ratio per pair ${ratios.map((x) => x.toFixed(2)).join(", ")}; disk ack p99 per pair, ms: ${
        runs.map((r) =>
          [r.disk.half, r.disk.apiserver, r.disk.blocking].map((o) => o ? ms(o.p99) : "-").join("/")
        ).join(", ")
      } (half rate/batch-like/blocking-like)`,
      `medians: ${med("disk")}`,
      `medians: ${med("memory")}`,
      ...runs.flatMap((r, p) => [line(p, r.memory), line(p, r.disk)]),
    ],
  };
}

/** What the daemon's memory was at one point of the backlog. */
interface MemorySample {
  readonly label: string;
  readonly backlogMb: number;
  readonly rssMb: number;
  readonly heapMb: number;
  readonly externalMb: number;
}

/**
 * Memory with a backlog: a daemon whose webhook sink's collector is down (answers 503) takes
 * events into its disk buffer (fsync always) until the buffer holds `backlogMb`; its RSS is
 * sampled at 10%, 50% and 100% of that. Then the collector comes up and the drain rate is
 * measured (from the first delivery after the outage to an empty buffer).
 *
 * @example
 * ```ts
 * const row = await benchDiskBacklog(lines, { backlogMb: 1024, log: console.error });
 * ```
 */
export async function benchDiskBacklog(
  lines: readonly string[],
  opts: { backlogMb: number; log: (msg: string) => void },
): Promise<Row> {
  const bodies = requestBodies(lines);
  // The collector: 503 while down; then 200, counting what it got.
  let up = false;
  let delivered = 0;
  const collector = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const body = await req.arrayBuffer();
      if (!up) return new Response("down", { status: 503 });
      delivered += body.byteLength;
      return new Response("{}");
    },
  );
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-disk-backlog-" });
  await Deno.writeTextFile(
    `${dir}/siem.kubeconfig`,
    kubeconfigFor(`http://127.0.0.1:${collector.addr.port}/ingest`),
  );
  const target = opts.backlogMb * MB;
  const d = await daemon(() => `
${WEBHOOK_SOURCE_YAML}sinks:
  - type: webhook
    name: siem
    kubeconfig: siem.kubeconfig
    initialBackoff: 200ms
    retry: {maxAttempts: 1}
    batch: {maxSize: 1000, maxWait: 50ms, throttle: {enabled: false}}
    buffer: {type: disk, path: buf, maxBytes: ${target + 512 * MB}, whenFull: block, fsync: always}
server:
  listen: 127.0.0.1:0
shutdownTimeout: 10s
`, { dir });
  try {
    const ops = await d.opsPort();
    const pool = new Pool(await d.webhookPort());
    const requests = bodies.map((b) => postRequest("/audit", b));
    const pid = d.process.pid;
    const metric = (s: Samples, name: string) => sample(s, name, { sink: "siem" });
    const memory = (s: Samples, label: string, bytes: number): MemorySample => ({
      label,
      backlogMb: bytes / MB,
      rssMb: sample(s, "auditpipe_memory_bytes", { kind: "rss" }) / MB,
      heapMb: sample(s, "auditpipe_memory_bytes", { kind: "heap_used" }) / MB,
      externalMb: sample(s, "auditpipe_memory_bytes", { kind: "external" }) / MB,
    });
    await sleep(300);
    const samples: MemorySample[] = [memory(await scrape(ops), "start", 0)];
    let bytes = 0;
    let i = 0;
    let failed = 0;
    const t0 = performance.now();
    const senders = Array.from({ length: E2E_SENDERS }, async () => {
      while (bytes < target) {
        if ((await pool.send(requests[i++ % requests.length])) !== 200) failed++;
      }
    });
    const marks = [0.1, 0.5, 1];
    while (marks.length > 0) {
      await sleep(200);
      const s = await scrape(ops);
      bytes = metric(s, "auditpipe_disk_buffer_bytes");
      if (bytes >= marks[0] * target) {
        const m = memory(s, `${marks.shift()! * 100}%`, bytes);
        samples.push(m);
        opts.log(
          `backlog ${m.backlogMb.toFixed(0)} MiB: rss ${m.rssMb.toFixed(0)} MiB, heap ${
            m.heapMb.toFixed(0)
          } MiB, external ${m.externalMb.toFixed(0)} MiB`,
        );
      }
    }
    await Promise.all(senders);
    pool.close();
    const fillSecs = (performance.now() - t0) / 1000;
    const full = await scrape(ops);
    const events = metric(full, "auditpipe_disk_buffer_events");
    bytes = metric(full, "auditpipe_disk_buffer_bytes");
    const written0 = sinkCounts(full, "siem").written;
    opts.log(`backlog: ${num(events)} events, ${(bytes / MB).toFixed(0)} MiB; collector up`);
    up = true;
    const tUp = performance.now();
    let tFirst: number | undefined;
    let drainMax = 0;
    for (;;) {
      await sleep(250);
      const s = await scrape(ops);
      drainMax = Math.max(drainMax, sample(s, "auditpipe_memory_bytes", { kind: "rss" }) / MB);
      if (tFirst === undefined && sinkCounts(s, "siem").written > written0) {
        tFirst = performance.now();
      }
      if (metric(s, "auditpipe_disk_buffer_events") === 0) break;
    }
    const tEnd = performance.now();
    const drainSecs = (tEnd - (tFirst ?? tUp)) / 1000;
    const hwm = await peakRssBytes(pid) / MB;
    await d.stop("SIGTERM");
    const start = samples[0].rssMb;
    const last = samples.at(-1)!;
    return {
      name: `disk buffer backlog of ${opts.backlogMb} MiB (collector down, then up): daemon RSS`,
      result: samples.slice(1).map((m) => `${m.label} ${m.rssMb.toFixed(0)} MiB`).join(", "),
      baseline: `start ${start.toFixed(0)} MiB`,
      ratio: `${(last.rssMb - start).toFixed(0)} MiB growth`,
      goal: "memory flat (RSS from 10% to 100% grows < 64 MiB)",
      met: last.rssMb - samples[1].rssMb < 64,
      notes: [
        `filled ${num(events)} events, ${(bytes / MB).toFixed(0)} MiB in ${
          fillSecs.toFixed(1)
        } s (${(bytes / MB / fillSecs).toFixed(1)} MiB/s)${
          failed ? `, ${failed} requests not answered 200` : ""
        }; RSS/heap/external MiB at ${
          samples.map((m) =>
            `${m.label}: ${m.rssMb.toFixed(0)}/${m.heapMb.toFixed(0)}/${m.externalMb.toFixed(0)}`
          ).join(", ")
        }`,
        `drain: ${num(events)} events in ${drainSecs.toFixed(1)} s (${
          num(events / drainSecs)
        } events/s, ${(bytes / MB / drainSecs).toFixed(1)} MiB/s; first delivery ${
          (((tFirst ?? tUp) - tUp) / 1000).toFixed(1)
        } s after the collector came up); RSS max while draining ${
          drainMax.toFixed(0)
        } MiB; peak RSS of the run (VmHWM) ${hwm.toFixed(0)} MiB; collector got ${
          (delivered / MB).toFixed(0)
        } MiB`,
      ],
    };
  } finally {
    await d.stop("SIGKILL").catch(() => {});
    await collector.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "5" },
      producers: { type: "string", default: "32" },
      batch: { type: "string", default: "10" },
      "backlog-mb": { type: "string", default: "1024" },
      "only": { type: "string", default: "micro,e2e" },
      "e2e-seconds": { type: "string", default: "10" },
      "open-seconds": { type: "string", default: "10" },
      pairs: { type: "string", default: "3" },
      senders: { type: "string", default: String(E2E_SENDERS) },
      "no-apiserver": { type: "boolean", default: false },
      sink: { type: "string", default: "log" },
      "cpu-prof": { type: "string" },
    },
  });
  const only = new Set(values.only.split(","));
  const log = (m: string) => console.error(`[bench] ${m}`);
  const rows: Row[] = [];
  if (only.has("micro")) {
    rows.push(
      await benchDiskBuffer({
        seconds: Number(values.seconds),
        producers: Number(values.producers),
        batch: Number(values.batch),
        backlogMb: Number(values["backlog-mb"]),
        log,
      }),
    );
  }
  if (only.has("e2e")) {
    const data = await ensureData({ seed: 1, sizeMb: 20, log });
    const lines = await readLines(data.path);
    let cpuProfDir = values["cpu-prof"];
    if (cpuProfDir) {
      cpuProfDir = await Deno.realPath(
        await Deno.mkdir(cpuProfDir, { recursive: true }).then(() => cpuProfDir!),
      );
    }
    rows.push(
      await benchDiskE2e(lines, {
        seconds: Number(values["e2e-seconds"]),
        log,
        cpuProfDir,
        pairs: Number(values.pairs),
        senders: Number(values.senders),
        openSeconds: Number(values["open-seconds"]),
        apiserver: !values["no-apiserver"],
        sink: values.sink === "null" ? "null" : "log",
      }),
    );
  }
  if (only.has("backlog")) {
    const data = await ensureData({ seed: 1, sizeMb: 20, log });
    const lines = await readLines(data.path);
    rows.push(await benchDiskBacklog(lines, { backlogMb: Number(values["backlog-mb"]), log }));
  }
  for (const row of rows) {
    console.log(
      `${row.name}: ${row.result} (${row.baseline}; goal ${row.goal}: ${
        row.met ? "met" : "NOT met"
      })`,
    );
    for (const n of row.notes) console.log(`- ${n}`);
  }
}
