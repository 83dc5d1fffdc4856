/**
 * tail → 20-rule policy → log (json), against the floor of `floor_tail.ts` on the same file.
 *
 * The daemon starts with its tail source waiting for a file that does not exist yet; once it
 * listens, the data file is hard-linked into place and the clock starts, so process start and
 * module loading are not counted (nor are they for the floor). The run is complete when the
 * sink has written or dropped (by policy, by omitted stage) every event of the file.
 *
 * @module
 */
import type { DataFile } from "./generate.ts";
import {
  alternate,
  daemon,
  drops,
  num,
  outSinkYaml,
  procCpuSeconds,
  type Row,
  runJson,
  sample,
  scrape,
  sinkCounts,
  sleep,
  tailSourceYaml,
  throughputRow,
  waitForLastWrite,
} from "./lib.ts";

/** The floor's script, for the CPU benchmark too. */
export const FLOOR: string = new URL("./floor_tail.ts", import.meta.url).pathname;

/** Options of {@linkcode benchTail}. */
export interface TailOptions {
  /** Run the daemon with `--cpu-prof --cpu-prof-dir=DIR`. */
  readonly cpuProfDir?: string;
  /** Progress messages. */
  readonly log: (msg: string) => void;
  /** Sign the output (`integrity.signingKey`), to measure what that costs. */
  readonly signingKey?: string;
  /** Another checkout's `main.ts` to run as the daemon (a "before" for A/B runs). */
  readonly entry?: string;
  /** More Deno flags for the daemon (e.g. `--v8-flags=...`). */
  readonly denoFlags?: readonly string[];
}

/** What one daemon run measured. */
export interface TailRun {
  readonly seconds: number;
  readonly written: number;
  readonly dropped: Record<string, number>;
  readonly outputBytes: number;
  readonly complete: boolean;
  /**
   * The daemon's CPU seconds (user + system, every thread) at its last write (see
   * `waitForLastWrite`): idle time after the end and completion scrapes are not in it.
   */
  readonly cpuSeconds: number;
  /** Its CPU seconds just before the data file appeared (start-up, module loading, idle). */
  readonly cpuAtStart: number;
}

/** Runs the daemon over `data` once; exported for profiling runs. */
export async function tailDaemonRun(data: DataFile, opts: TailOptions): Promise<TailRun> {
  return (await tailDaemonPhases([data], opts))[0];
}

/**
 * Runs one daemon over `parts` in turn: the first is hard-linked into place, and once the
 * daemon has accounted for its events, the file is rotated away (renamed to a lumberjack
 * backup name) and the next part linked at the path, as kube-apiserver's rotation does.
 * Returns one run per part; its `cpuAtStart` is the CPU just before its file appeared, so `cpuSeconds - cpuAtStart` is what that part cost a daemon already
 * warmed up by the parts before it.
 *
 * @example
 * ```ts
 * const [warm, steady] = await tailDaemonPhases([first, rest], { log: console.error });
 * const usPerEvent = (steady.cpuSeconds - steady.cpuAtStart) * 1e6 / rest.events;
 * ```
 */
export async function tailDaemonPhases(
  parts: readonly DataFile[],
  opts: TailOptions,
): Promise<TailRun[]> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-tail-" });
  const input = `${dir}/audit.log`;
  const output = `${dir}/out.log`;
  const d = await daemon(() => `
${tailSourceYaml(input, dir)}${outSinkYaml(output, { signingKey: opts.signingKey })}`, {
    dir,
    denoFlags: [
      ...(opts.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.cpuProfDir}`] : []),
      ...(opts.denoFlags ?? []),
    ],
    entry: opts.entry,
  });
  try {
    const port = await d.opsPort();
    await d.waitLog((r) => r.msg === "file does not exist yet; waiting for it");
    // Let the daemon settle after start-up before the clock starts. The clock is the wall
    // clock (not performance.now()) because the end is a file's mtime.
    await sleep(300);
    const runs: TailRun[] = [];
    let expected = 0;
    let before = { written: 0, dropped: {} as Record<string, number> };
    for (const [i, data] of parts.entries()) {
      if (i > 0) {
        await Deno.rename(input, `${dir}/audit-2026-01-01T00-00-0${i}.000.log`);
      }
      const cpuAtStart = await procCpuSeconds(d.process.pid);
      await Deno.link(data.path, input);
      expected += data.events;
      const t0 = Date.now();
      // The end is the last write: the output file's size is sampled (with the daemon's CPU
      // seconds) every 20 ms from this process, which costs the daemon nothing; `/metrics`
      // is scraped only once the file has stopped growing, to confirm that every event is
      // accounted for. A scrape costs the daemon prom-client's event-loop statistics, and
      // idle time after the end costs it tail polls: neither belongs to the events.
      const end = await waitForLastWrite(d.process.pid, output, async () => {
        const c = sinkCounts(await scrape(port), "out");
        return c.written + c.dropped;
      }, expected);
      const { complete, cpuSeconds } = end;
      opts.log(
        `tail: ${data.events} events: CPU ${(cpuSeconds - cpuAtStart).toFixed(2)} s to the ` +
          `last write, ${(end.cpuAtConfirm - cpuAtStart).toFixed(2)} s when confirmed ` +
          `(${end.scrapes} scrapes)`,
      );
      const t1 = (await Deno.stat(output)).mtime?.getTime() ?? Date.now();
      const s = await scrape(port);
      const c = sinkCounts(s, "out");
      const source = sample(s, "auditpipe_source_events_total", { source: "audit" });
      if (source !== expected) opts.log(`tail: source decoded ${source} of ${expected}`);
      const dropped = drops(s, "out");
      runs.push({
        seconds: (t1 - t0) / 1000,
        written: c.written - before.written,
        dropped: Object.fromEntries(
          Object.entries(dropped).map(([k, v]) => [k, v - (before.dropped[k] ?? 0)]),
        ),
        outputBytes: (await Deno.stat(output)).size,
        complete,
        cpuSeconds,
        cpuAtStart,
      });
      before = { written: c.written, dropped };
      if (!complete) break;
    }
    await d.stop("SIGTERM");
    return runs;
  } finally {
    await d.stop("SIGKILL").catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Measures the floor, then the daemon, on `data`, `opts.runs` times (alternating, so both
 * see the same machine state), and reports medians.
 *
 * @example
 * ```ts
 * const row = await benchTail(data, { log: console.error, runs: 3 });
 * ```
 */
export async function benchTail(
  data: DataFile,
  opts: TailOptions & { runs: number },
): Promise<Row> {
  const { floors, daemons: runs } = await alternate("tail", opts.runs, opts.log, async () => {
    const tmp = await Deno.makeTempDir({ prefix: "auditpipe-bench-floor-" });
    try {
      return await runJson<{ events: number; bytes: number; seconds: number }>(FLOOR, [
        data.path,
        `${tmp}/out.log`,
      ]);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  }, () => tailDaemonRun(data, opts));
  const run = runs[0];
  return throughputRow({
    name: "tail → policy20 → log (json)",
    events: data.events,
    bytes: data.bytes,
    floors,
    daemons: runs,
    goal: 0.85,
    notes: runs.some((r) => !r.complete)
      ? ["INCOMPLETE: the sink stopped progressing before the end"]
      : [],
    detail: `written ${num(run.written)}, dropped ${JSON.stringify(run.dropped)}, output ${
      num(run.outputBytes / 1e6, 1)
    } MB`,
  });
}
