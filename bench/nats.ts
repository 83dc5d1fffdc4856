/**
 * The NATS paths against their floors, on one local `nats-server -js` (the same server for
 * floor and daemon), each measured at two sizes, so that CPU per event is the slope between
 * them (start-up, module loading, connecting and the JIT's warm-up cancel):
 *
 * - **collector**: NATS source → 20-rule policy → log. The stream is preloaded once with the
 *   data file; each run reads the last third of it (small) or all of it (large) through a
 *   fresh durable consumer the bench creates before the run (starting at that sequence, with
 *   the config the source would create: the source leaves an existing consumer as it is).
 *   The floor (`nats_floor.ts consume`) fetches and only acks; a second floor also parses
 *   and writes. The daemon's CPU is its whole life up to the moment the consumer's ack floor
 *   reaches the stream's end (every event written: the source acks after the sink wrote);
 *   its wall time runs from its `consuming from JetStream` record to the output file's mtime.
 * - **node**: tail → NATS sink (no policy: every event published), each run into a fresh
 *   stream; the small size is the first third of the data file. The floor
 *   (`nats_floor.ts publish`) reads, parses and publishes the same lines with a message id,
 *   awaiting every PubAck. The daemon's CPU runs from linking the data file into place until
 *   the stream holds every event; its wall time until the stream's last message timestamp.
 *
 * Completion is read from nats-server (consumer or stream info), never from the daemon's
 * `/metrics`: each scrape makes prom-client compute event-loop statistics in the daemon
 * (5% of its time when polled every 250 ms), and production scrapes every 15–60 s.
 *
 * Run alone, it compares two daemons (an A/B of a change, old and new alternating on the
 * same stream) instead of floor and daemon:
 *
 * ```sh
 * deno run -A bench/nats.ts ab --a /tmp/old/main.ts --b main.ts --side collector --runs 5 \
 *   [--size-mb 100] [--cpu-prof DIR]
 * ```
 *
 * @module
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { DeliverPolicy, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { parseArgs } from "node:util";
import { startNatsServer } from "../tests/helpers/nats.ts";
import { startDaemon } from "../tests/helpers/daemon.ts";
import { natsConsumerConfig } from "../pipeline/ingest/nats_consumer.ts";
import { type DataFile, ensureData } from "./generate.ts";
import {
  drops,
  median,
  num,
  outSinkYaml,
  poll,
  procCpuSeconds,
  type Row,
  runJson,
  scrape,
  sinkCounts,
  sleep,
  tailSourceYaml,
} from "./lib.ts";

const FLOOR = new URL("./nats_floor.ts", import.meta.url).pathname;
/** Another checkout's main.ts for the daemon runs of `benchNats`, as in the other benchmarks. */
const ENTRY = entryPath(Deno.env.get("AUDITPIPE_BENCH_ENTRY"));

/** `p` made absolute: the daemon runs in its temp folder, where a relative one would not resolve. */
function entryPath(p: string | undefined): string | undefined {
  return p ? new URL(p, `file://${Deno.cwd()}/`).pathname : undefined;
}
const STREAM = "AUDIT";
const SUBJECT = "audit.events";
/** How often the bench asks nats-server whether a run is done (the daemon pays nothing). */
const POLL_MS = 100;

/** Options of {@linkcode benchNats}. */
export interface NatsBenchOptions {
  readonly log: (msg: string) => void;
  readonly runs: number;
  /** Also run one collector daemon under `--cpu-prof` into this folder. */
  readonly cpuProfDir?: string;
}

/** What one run at one size measured. */
interface Run {
  readonly events: number;
  /** Wall time of the work (start-up excluded), s. */
  readonly seconds: number;
  /** CPU seconds of the process under test, up to the end of the work. */
  readonly cpuSeconds: number;
  readonly complete?: boolean;
  readonly detail?: string;
}

/** One side of a comparison: a floor or a daemon, run at a given size. */
interface Contender {
  readonly name: string;
  run(size: Size, tag: string): Promise<Run>;
}

/** The events a run covers: for the collector, from `startSeq` to the stream's end. */
interface Size {
  readonly events: number;
  readonly startSeq: number;
  readonly lastSeq: number;
  /** For the node side: the JSON-lines file holding those events. */
  readonly path: string;
}

/** Per contender, per run: CPU µs per event (the slope), and the large size's run. */
interface Result {
  readonly name: string;
  readonly slopes: number[];
  readonly large: Run[];
}

/** Polls `progress` until done, or no progress for 20 s; returns whether it completed. */
async function untilDone(progress: () => Promise<{ n: number; done: boolean }>): Promise<boolean> {
  let last = -1;
  let lastChange = Date.now();
  return await poll(async () => {
    const p = await progress();
    if (p.done) return true;
    if (p.n !== last) {
      last = p.n;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > 20_000) return false;
    return undefined;
  }, { everyMs: POLL_MS, timeoutMs: 600_000, what: "the run to finish" });
}

/** Creates durable `name` on the stream, starting at `startSeq`, as the source would create it. */
async function addConsumer(jsm: JetStreamManager, name: string, startSeq: number): Promise<void> {
  await jsm.consumers.add(STREAM, {
    ...natsConsumerConfig(name, SUBJECT),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: startSeq,
  });
}

/** One collector daemon run (`entry`: its main.ts, default this checkout's) on `consumer`. */
async function collectorRun(
  url: string,
  jsm: JetStreamManager,
  consumer: string,
  size: Size,
  entry?: string,
  cpuProfDir?: string,
): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-nats-" });
  const output = `${dir}/out.log`;
  await addConsumer(jsm, consumer, size.startSeq);
  const d = await startDaemon(() => `
sources:
  - type: nats
    name: fanin
    servers: [${url}]
    stream: ${STREAM}
    subject: ${SUBJECT}
    consumer: ${consumer}
${outSinkYaml(output)}`, {
    dir,
    entry,
    permissions: ["-A", ...(cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`] : [])],
  });
  try {
    const rec = await d.waitLog((r) => r.msg === "consuming from JetStream", 60_000);
    const t0 = Date.parse(rec.ts as string);
    // Acked means written: the source acks a chunk once the sink has written it.
    const complete = await untilDone(async () => {
      const info = await jsm.consumers.info(STREAM, consumer);
      const acked = info.ack_floor.stream_seq;
      return { n: acked, done: acked >= size.lastSeq && info.num_ack_pending === 0 };
    });
    const cpu = await procCpuSeconds(d.process.pid);
    const t1 = (await Deno.stat(output)).mtime?.getTime() ?? Date.now();
    const s = await scrape(await d.opsPort());
    const c = sinkCounts(s, "out");
    await d.stop("SIGTERM");
    return {
      events: size.events,
      seconds: (t1 - t0) / 1000,
      cpuSeconds: cpu,
      complete,
      detail: `written ${num(c.written)}, dropped ${JSON.stringify(drops(s, "out"))}`,
    };
  } finally {
    await d.stop("SIGKILL").catch(() => {});
    await jsm.consumers.delete(STREAM, consumer).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** One node daemon run: tail → NATS sink into stream `stream` on `subject`. */
async function nodeRun(
  url: string,
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  size: Size,
  entry?: string,
  cpuProfDir?: string,
): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-nats-node-" });
  const input = `${dir}/audit.log`;
  const d = await startDaemon(() => `
${tailSourceYaml(input, dir)}sinks:
  - type: nats
    name: out
    servers: [${url}]
    subject: ${subject}
    stream: ${stream}
server:
  listen: 127.0.0.1:0
shutdownTimeout: 60s
`, {
    dir,
    entry,
    permissions: ["-A", ...(cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`] : [])],
  });
  try {
    await d.waitLog((r) => r.msg === "file does not exist yet; waiting for it");
    await sleep(300);
    const cpu0 = await procCpuSeconds(d.process.pid);
    await Deno.link(size.path, input);
    const t0 = Date.now();
    const complete = await untilDone(async () => {
      const n = (await jsm.streams.info(stream)).state.messages;
      return { n, done: n >= size.events };
    });
    const cpu1 = await procCpuSeconds(d.process.pid);
    const state = (await jsm.streams.info(stream)).state;
    const c = sinkCounts(await scrape(await d.opsPort()), "out");
    await d.stop("SIGTERM");
    return {
      events: state.messages,
      seconds: (Date.parse(state.last_ts) - t0) / 1000,
      cpuSeconds: cpu1 - cpu0,
      complete,
      detail: `published ${num(c.written)}`,
    };
  } finally {
    await d.stop("SIGKILL").catch(() => {});
    await jsm.streams.delete(stream).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * The collector's floors: fetch and ack (the goal's), the same acking each message as it
 * comes (the floor until 2026-12-01, for comparison), and fetch, parse, write and ack.
 */
function collectorFloors(url: string, jsm: JetStreamManager, tmp: string): Contender[] {
  const consume = (name: string, mode: string, parse: boolean): Contender => ({
    name,
    run: async (size, tag) => {
      const consumer = `${name.replace(/\W/g, "")}${tag}`;
      await addConsumer(jsm, consumer, size.startSeq);
      try {
        return await runJson<Run>(FLOOR, [
          mode,
          url,
          STREAM,
          consumer,
          String(size.events),
          ...(parse ? [`${tmp}/out.log`] : []),
        ]);
      } finally {
        await jsm.consumers.delete(STREAM, consumer).catch(() => {});
      }
    },
  });
  return [
    consume("floor (fetch + ack)", "consume", false),
    consume("floor (ack each as it comes)", "consume-each", false),
    consume("floor (+ parse + write)", "consume", true),
  ];
}

function collectorDaemon(
  url: string,
  jsm: JetStreamManager,
  name: string,
  entry?: string,
): Contender {
  return {
    name,
    run: (size, tag) => collectorRun(url, jsm, `${name.replace(/\W/g, "")}${tag}`, size, entry),
  };
}

function nodeFloor(url: string, jsm: JetStreamManager): Contender {
  return {
    name: "floor (parse + publish + PubAck)",
    run: async (size, tag) => {
      const stream = `FLOOR${tag}`;
      try {
        return await runJson<Run>(FLOOR, ["publish", url, stream, `floor.${tag}`, size.path]);
      } finally {
        await jsm.streams.delete(stream).catch(() => {});
      }
    },
  };
}

function nodeDaemon(url: string, jsm: JetStreamManager, name: string, entry?: string): Contender {
  const id = name.replace(/\W/g, "");
  return {
    name,
    run: (size, tag) => nodeRun(url, jsm, `${id}${tag}`, `${id}.${tag}`, size, entry),
  };
}

/**
 * Runs every contender at the small and the large size, `runs` times, alternating (each run:
 * all at the small size, then all at the large one; the order rotates from run to run).
 */
async function compare(
  label: string,
  contenders: readonly Contender[],
  sizes: { small: Size; large: Size },
  runs: number,
  log: (msg: string) => void,
): Promise<Result[]> {
  const results = contenders.map((c): Result => ({ name: c.name, slopes: [], large: [] }));
  for (let i = 0; i < runs; i++) {
    const order = contenders.map((_, k) => (k + i) % contenders.length);
    const small: Run[] = [];
    const large: Run[] = [];
    for (const k of order) small[k] = await contenders[k].run(sizes.small, `s${i}`);
    for (const k of order) large[k] = await contenders[k].run(sizes.large, `l${i}`);
    const parts: string[] = [];
    contenders.forEach((c, k) => {
      for (const r of [small[k], large[k]]) {
        if (r.complete === false) throw new Error(`${label}: ${c.name} stalled: ${r.detail}`);
      }
      const slope = (large[k].cpuSeconds - small[k].cpuSeconds) * 1e6 /
        (large[k].events - small[k].events);
      results[k].slopes.push(slope);
      results[k].large.push(large[k]);
      parts.push(
        `${c.name} ${slope.toFixed(1)} µs/ev (${small[k].cpuSeconds.toFixed(2)} → ${
          large[k].cpuSeconds.toFixed(2)
        } CPU-s), ${large[k].seconds.toFixed(2)} s`,
      );
    });
    log(`${label}: run ${i + 1}/${runs}: ${parts.join("; ")}`);
  }
  return results;
}

/** `min–max` of `xs`. */
function spread(xs: readonly number[], digits: number): string {
  return `${num(Math.min(...xs), digits)}–${num(Math.max(...xs), digits)}`;
}

/** Per-run ratios `base ÷ other` of `pick` (higher is better for `other`). */
function ratios(base: Result, other: Result, pick: (r: Result, i: number) => number): number[] {
  return base.slopes.map((_, i) => pick(base, i) / pick(other, i));
}

const cpuOf = (r: Result, i: number) => r.slopes[i];
const secondsOf = (r: Result, i: number) => r.large[i].seconds;

/** A row: `daemon` against `floor`, on CPU per event (the goal) and on wall time. */
function row(
  name: string,
  events: number,
  floor: Result,
  daemon: Result,
  extra: readonly Result[],
  small: number,
): Row {
  const cpuRatios = ratios(floor, daemon, cpuOf);
  const wallRatios = ratios(floor, daemon, secondsOf);
  const ratio = median(cpuRatios);
  const us = (r: Result) => `${num(median(r.slopes), 1)} µs/event (${spread(r.slopes, 1)})`;
  const evs = (r: Result) => `${num(events / median(r.large.map((l) => l.seconds)))} ev/s`;
  return {
    name,
    result: `${us(daemon)}, ${evs(daemon)}`,
    baseline: `${floor.name} ${us(floor)}, ${evs(floor)}`,
    ratio: ratio.toFixed(2),
    goal: "≥ 0.8 of floor (CPU/event)",
    met: ratio >= 0.8,
    notes: [
      `CPU per event as the slope between ${num(small)} and ${num(events)} events; ` +
      `${floor.slopes.length} runs, medians (min–max); per-run CPU ratios ${
        cpuRatios.map((r) => r.toFixed(2)).join(", ")
      }`,
      `wall-time ratio (floor ÷ daemon seconds on ${num(events)} events): median ${
        median(wallRatios).toFixed(2)
      }, per run ${wallRatios.map((r) => r.toFixed(2)).join(", ")}`,
      ...extra.map((e) =>
        `${e.name}: ${us(e)}, ${evs(e)}; its CPU per event ÷ the daemon's ${
          median(ratios(e, daemon, cpuOf)).toFixed(2)
        }`
      ),
      `nats-server's CPU is in none of these; ${daemon.large[0].detail ?? ""}`,
    ],
  };
}

/** The collector's sizes on a stream holding `data` from sequence 1. */
function collectorSizes(data: DataFile, lastSeq: number): { small: Size; large: Size } {
  const third = Math.round(data.events / 3);
  return {
    small: { events: third, startSeq: lastSeq - third + 1, lastSeq, path: data.path },
    large: { events: data.events, startSeq: lastSeq - data.events + 1, lastSeq, path: data.path },
  };
}

/** The node side's sizes: the first third of the data file (written into `tmp`) and all of it. */
async function nodeSizes(data: DataFile, tmp: string): Promise<{ small: Size; large: Size }> {
  const bytes = await Deno.readFile(data.path);
  const third = Math.round(data.events / 3);
  let end = 0;
  for (let i = 0; i < third; i++) end = bytes.indexOf(10, end) + 1;
  const path = `${tmp}/small.jsonl`;
  await Deno.writeFile(path, bytes.subarray(0, end));
  return {
    small: { events: third, startSeq: 0, lastSeq: 0, path },
    large: { events: data.events, startSeq: 0, lastSeq: 0, path: data.path },
  };
}

/** A nats-server, a connection to it, and the stream preloaded with `data`. */
async function setUp(data: DataFile, log: (msg: string) => void) {
  const srv = await startNatsServer();
  const nc: NatsConnection = await connect({ servers: srv.url });
  const jsm = await jetstreamManager(nc);
  log(`nats: preloading stream ${STREAM} with ${num(data.events)} events`);
  await runJson(FLOOR, ["publish", srv.url, STREAM, SUBJECT, data.path]);
  const lastSeq = (await jsm.streams.info(STREAM)).state.last_seq;
  const tmp = await Deno.makeTempDir({ prefix: "auditpipe-bench-nats-floor-" });
  return {
    srv,
    jsm,
    tmp,
    collector: collectorSizes(data, lastSeq),
    node: await nodeSizes(data, tmp),
    async close() {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      await nc.close();
      await srv.stop();
    },
  };
}

/**
 * Runs the collector and node benchmarks against their floors, `opts.runs` times each
 * (alternating), on one nats-server; returns their rows.
 *
 * @example
 * ```ts
 * const rows = await benchNats(data, { log: console.error, runs: 3 });
 * ```
 */
export async function benchNats(data: DataFile, opts: NatsBenchOptions): Promise<Row[]> {
  const env = await setUp(data, opts.log);
  const { srv, jsm } = env;
  try {
    const [floor, each, parse, daemon] = await compare(
      "nats collector",
      [...collectorFloors(srv.url, jsm, env.tmp), collectorDaemon(srv.url, jsm, "daemon", ENTRY)],
      env.collector,
      opts.runs,
      opts.log,
    );
    const rows: Row[] = [
      row(
        "nats collector: NATS source → policy20 → log",
        data.events,
        floor,
        daemon,
        [each, parse],
        env.collector.small.events,
      ),
    ];
    if (opts.cpuProfDir) {
      await Deno.mkdir(opts.cpuProfDir, { recursive: true });
      opts.log(`nats collector: profiled daemon run into ${opts.cpuProfDir}`);
      await collectorRun(srv.url, jsm, "profiled", env.collector.large, ENTRY, opts.cpuProfDir);
    }
    const [nodeF, nodeD] = await compare(
      "nats node",
      [nodeFloor(srv.url, jsm), nodeDaemon(srv.url, jsm, "node", ENTRY)],
      env.node,
      opts.runs,
      opts.log,
    );
    rows.push(row(
      "nats node: tail → NATS sink (JetStream, acked)",
      data.events,
      nodeF,
      nodeD,
      [],
      env.node.small.events,
    ));
    return rows;
  } finally {
    await env.close();
  }
}

/**
 * A/B of two daemons (`--a`, `--b`: main.ts paths), alternating, beside the floor; with
 * `--cpu-prof DIR`, one more run of B (per side) under `--cpu-prof`.
 */
async function ab(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      a: { type: "string" },
      b: { type: "string" },
      side: { type: "string", default: "collector" },
      runs: { type: "string", default: "5" },
      "size-mb": { type: "string", default: "100" },
      seed: { type: "string", default: "1" },
      "cpu-prof": { type: "string" },
    },
  });
  if (!values.a || !values.b) throw new Error("ab needs --a MAIN_TS and --b MAIN_TS");
  const a = entryPath(values.a)!;
  const b = entryPath(values.b)!;
  const log = (m: string) => console.error(m);
  const data = await ensureData({
    seed: Number(values.seed),
    sizeMb: Number(values["size-mb"]),
    log,
  });
  const env = await setUp(data, log);
  const runs = Number(values.runs);
  const report = (label: string, results: Result[]) => {
    const [floor, a, b] = results;
    if (floor.slopes.length === 0) return; // --runs 0: only the profile
    console.log(`${label}: ${num(data.events)} events, ${runs} runs (medians, min–max)`);
    for (const r of results) {
      console.log(
        `  ${r.name}: ${num(median(r.slopes), 1)} µs/event (${spread(r.slopes, 1)}), ${
          num(median(r.large.map((l) => l.seconds)), 2)
        } s (${spread(r.large.map((l) => l.seconds), 2)})`,
      );
    }
    const cpu = ratios(a, b, cpuOf);
    console.log(
      `  B ÷ A CPU per event: ${median(cpu.map((x) => 1 / x)).toFixed(3)} (per run ${
        cpu.map((x) => (1 / x).toFixed(2)).join(", ")
      }); floor ÷ A ${median(ratios(floor, a, cpuOf)).toFixed(2)}, floor ÷ B ${
        median(ratios(floor, b, cpuOf)).toFixed(2)
      }`,
    );
  };
  try {
    const { srv, jsm } = env;
    if (values.side === "collector" || values.side === "both") {
      report(
        "collector",
        await compare(
          "collector",
          [
            collectorFloors(srv.url, jsm, env.tmp)[0],
            collectorDaemon(srv.url, jsm, "A", a),
            collectorDaemon(srv.url, jsm, "B", b),
          ],
          env.collector,
          runs,
          log,
        ),
      );
    }
    const profile = async (side: string) => {
      if (!values["cpu-prof"]) return;
      const dir = await Deno.realPath(values["cpu-prof"]);
      log(`${side}: B profiled on ${num(data.events)} events into ${dir}`);
      if (side === "collector") {
        await collectorRun(srv.url, jsm, "profiled", env.collector.large, b, dir);
      } else await nodeRun(srv.url, jsm, "PROFILED", "profiled.1", env.node.large, b, dir);
    };
    if (values.side === "collector" || values.side === "both") await profile("collector");
    if (values.side === "node" || values.side === "both") {
      report(
        "node",
        await compare(
          "node",
          [
            nodeFloor(srv.url, jsm),
            nodeDaemon(srv.url, jsm, "A", a),
            nodeDaemon(srv.url, jsm, "B", b),
          ],
          env.node,
          runs,
          log,
        ),
      );
      await profile("node");
    }
  } finally {
    await env.close();
  }
}

if (import.meta.main) {
  const [mode, ...rest] = Deno.args;
  if (mode !== "ab") {
    throw new Error(
      "usage: bench/nats.ts ab --a MAIN_TS --b MAIN_TS [--side collector|node|both] " +
        "[--runs N] [--size-mb N] [--seed S] [--cpu-prof DIR]",
    );
  }
  await ab(rest);
}
