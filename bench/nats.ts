/**
 * The NATS paths against their floors, on one local `nats-server -js` (the same server for
 * floor and daemon):
 *
 * - **collector**: NATS source → 20-rule policy → log, each run on a fresh durable consumer
 *   over a stream preloaded with the data file; the floor (`nats_floor.ts consume`) fetches
 *   and only acks. Timed from the daemon's `consuming from JetStream` log record (start-up
 *   done, consumer created) to the output file's mtime once every event is written or
 *   dropped.
 * - **node**: tail → NATS sink (no policy: every event published), each run into a fresh
 *   stream; the floor (`nats_floor.ts publish`) reads, parses and publishes the same lines with
 *   a message id, awaiting every PubAck. Timed from linking the data file into place to the
 *   stream's last message timestamp.
 *
 * Both also report CPU seconds per event of the process under test (the daemon's from
 * `/proc/<pid>/stat` over the same span), which is what sizing a fleet needs: nats-server
 * shares the two cores and its time is in neither.
 *
 * @module
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startNatsServer } from "../tests/helpers/nats.ts";
import type { DataFile } from "./generate.ts";
import {
  alternate,
  daemon,
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
  throughputRow,
} from "./lib.ts";

const FLOOR = new URL("./nats_floor.ts", import.meta.url).pathname;

/** Options of {@linkcode benchNats}. */
export interface NatsBenchOptions {
  readonly log: (msg: string) => void;
  readonly runs: number;
  /** Also run one collector daemon under `--cpu-prof` into this folder. */
  readonly cpuProfDir?: string;
}

/** What one run measured. */
interface Run {
  readonly seconds: number;
  readonly events: number;
  readonly cpuSeconds: number;
  readonly complete?: boolean;
  readonly detail?: string;
}

/** Polls until `done()` or no progress for 10 s; returns whether it completed. */
async function untilDone(progress: () => Promise<{ n: number; done: boolean }>): Promise<boolean> {
  let last = -1;
  let lastChange = Date.now();
  return await poll(async () => {
    const p = await progress();
    if (p.done) return true;
    if (p.n !== last) {
      last = p.n;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > 10_000) return false;
    return undefined;
  }, { everyMs: 250, timeoutMs: 600_000, what: "the run to finish" });
}

/** One collector daemon run on consumer `consumer` of the preloaded stream. */
async function collectorRun(
  url: string,
  consumer: string,
  data: DataFile,
  cpuProfDir?: string,
): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-nats-" });
  const output = `${dir}/out.log`;
  const d = await daemon(() => `
sources:
  - type: nats
    name: fanin
    servers: [${url}]
    stream: AUDIT
    subject: audit.events
    consumer: ${consumer}
${outSinkYaml(output)}`, {
    dir,
    denoFlags: cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`] : [],
  });
  try {
    const rec = await d.waitLog((r) => r.msg === "consuming from JetStream", 60_000);
    const cpu0 = await procCpuSeconds(d.process.pid);
    const t0 = Date.parse(rec.ts as string);
    const port = await d.opsPort();
    const complete = await untilDone(async () => {
      const c = sinkCounts(await scrape(port), "out");
      return { n: c.written + c.dropped, done: c.written + c.dropped >= data.events };
    });
    const t1 = (await Deno.stat(output)).mtime?.getTime() ?? Date.now();
    const cpu1 = await procCpuSeconds(d.process.pid);
    const s = await scrape(port);
    const c = sinkCounts(s, "out");
    await d.stop("SIGTERM");
    return {
      seconds: (t1 - t0) / 1000,
      events: data.events,
      cpuSeconds: cpu1 - cpu0,
      complete,
      detail: `written ${num(c.written)}, dropped ${JSON.stringify(drops(s, "out"))}`,
    };
  } finally {
    await d.stop("SIGKILL").catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** One node daemon run: tail → NATS sink into stream `stream` on `subject`. */
async function nodeRun(
  url: string,
  nc: NatsConnection,
  stream: string,
  subject: string,
  data: DataFile,
): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-nats-node-" });
  const input = `${dir}/audit.log`;
  const d = await daemon(() => `
${tailSourceYaml(input, dir)}sinks:
  - type: nats
    name: out
    servers: [${url}]
    subject: ${subject}
    stream: ${stream}
server:
  listen: 127.0.0.1:0
shutdownTimeout: 60s
`, { dir });
  const jsm = await jetstreamManager(nc);
  try {
    const port = await d.opsPort();
    await d.waitLog((r) => r.msg === "file does not exist yet; waiting for it");
    await sleep(300);
    const cpu0 = await procCpuSeconds(d.process.pid);
    await Deno.link(data.path, input);
    const t0 = Date.now();
    const complete = await untilDone(async () => {
      const n = (await jsm.streams.info(stream)).state.messages;
      return { n, done: n >= data.events };
    });
    const state = (await jsm.streams.info(stream)).state;
    const cpu1 = await procCpuSeconds(d.process.pid);
    const c = sinkCounts(await scrape(port), "out");
    await d.stop("SIGTERM");
    return {
      seconds: (Date.parse(state.last_ts) - t0) / 1000,
      events: state.messages,
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

/** CPU-µs per event, median over runs. */
function cpuPerEvent(runs: readonly Run[]): string {
  return num(median(runs.map((r) => r.cpuSeconds / r.events * 1e6)), 1);
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
  const srv = await startNatsServer();
  const nc = await connect({ servers: srv.url });
  const jsm = await jetstreamManager(nc);
  try {
    opts.log(`nats: preloading stream AUDIT with ${num(data.events)} events`);
    await runJson(FLOOR, ["publish", srv.url, "AUDIT", "audit.events", data.path]);

    let i = 0;
    // The parse-and-write floor runs beside the ack-only one, for comparison.
    const parseFloors: Run[] = [];
    const tmp = await Deno.makeTempDir({ prefix: "auditpipe-bench-nats-floor-" });
    const consumeFloor = async (name: string, out?: string) => {
      const r = await runJson<Run>(FLOOR, [
        "consume",
        srv.url,
        "AUDIT",
        name,
        String(data.events),
        ...(out ? [out] : []),
      ]);
      await jsm.consumers.delete("AUDIT", name).catch(() => {});
      return r;
    };
    const collector = await alternate(
      "nats collector",
      opts.runs,
      opts.log,
      async () => {
        i++;
        parseFloors.push(await consumeFloor(`parse${i}`, `${tmp}/out.log`));
        return await consumeFloor(`floor${i}`);
      },
      async () => {
        const r = await collectorRun(srv.url, `daemon${i}`, data);
        await jsm.consumers.delete("AUDIT", `daemon${i}`).catch(() => {});
        return r;
      },
    );
    const rows: Row[] = [];
    rows.push(throughputRow({
      name: "nats collector: NATS source → policy20 → log",
      events: data.events,
      bytes: data.bytes,
      floors: collector.floors,
      daemons: collector.daemons,
      goal: 0.8,
      notes: [
        ...(collector.daemons.some((r) => !r.complete) ? ["INCOMPLETE: a run stalled"] : []),
        `CPU per event: daemon ${cpuPerEvent(collector.daemons)} µs, floor (fetch + ack only) ${
          cpuPerEvent(collector.floors)
        } µs, floor with parse + write ${
          cpuPerEvent(parseFloors)
        } µs (medians; nats-server's time in none)`,
        `against the parse + write floor (${
          num(data.events / median(parseFloors.map((f) => f.seconds)))
        } ev/s): ratio ${
          (median(parseFloors.map((f) => f.seconds)) /
            median(collector.daemons.map((d) => d.seconds))).toFixed(2)
        }`,
      ],
      detail: collector.daemons[0].detail ?? "",
    }));
    if (opts.cpuProfDir) {
      await Deno.mkdir(opts.cpuProfDir, { recursive: true });
      opts.log(`nats collector: profiled daemon run into ${opts.cpuProfDir}`);
      await collectorRun(srv.url, "profiled", data, opts.cpuProfDir);
      await jsm.consumers.delete("AUDIT", "profiled").catch(() => {});
    }
    await jsm.streams.delete("AUDIT").catch(() => {});
    await Deno.remove(tmp, { recursive: true }).catch(() => {});

    let j = 0;
    const node = await alternate(
      "nats node",
      opts.runs,
      opts.log,
      async () => {
        j++;
        const r = await runJson<Run>(FLOOR, [
          "publish",
          srv.url,
          `FLOOR${j}`,
          `floor.${j}`,
          data.path,
        ]);
        await jsm.streams.delete(`FLOOR${j}`).catch(() => {});
        return r;
      },
      () => nodeRun(srv.url, nc, `NODE${j}`, `node.${j}`, data),
    );
    rows.push(throughputRow({
      name: "nats node: tail → NATS sink (JetStream, acked)",
      events: data.events,
      bytes: data.bytes,
      floors: node.floors,
      daemons: node.daemons,
      goal: 0.8,
      notes: [
        ...(node.daemons.some((r) => !r.complete) ? ["INCOMPLETE: a run stalled"] : []),
        `CPU per event: daemon ${cpuPerEvent(node.daemons)} µs, floor (parse + publish + PubAck) ${
          cpuPerEvent(node.floors)
        } µs (medians; nats-server's time in neither)`,
      ],
      detail: node.daemons[0].detail ?? "",
    }));
    return rows;
  } finally {
    await nc.close();
    await srv.stop();
  }
}
