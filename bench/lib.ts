/**
 * What the end-to-end benchmarks share: starting the real daemon, reading its `/metrics`,
 * turning log lines into webhook bodies, percentiles and formatting.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { type Daemon, startDaemon } from "../tests/helpers/daemon.ts";
import { parseMetrics as parseTestMetrics } from "../tests/helpers/metrics.ts";
import { quantile } from "../cli/top/rates.ts";

export type { Daemon };

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../", import.meta.url));
/** The benchmark folder. */
export const BENCH: string = fileURLToPath(new URL("./", import.meta.url));
/** The 20-rule policy every throughput benchmark applies. */
export const POLICY20: string = `${BENCH}policy20.yaml`;

/** One benchmark's outcome, as a row of the results table. */
export interface Row {
  /** What ran, e.g. `tail → policy20 → log`. */
  readonly name: string;
  /** The measured numbers, formatted. */
  readonly result: string;
  /** What the result is compared with (the floor, the serialized size, the rate used). */
  readonly baseline: string;
  /** The ratio or figure the goal is about, formatted. */
  readonly ratio: string;
  /** The goal, e.g. `≥ 0.85`. */
  readonly goal: string;
  /** Whether the goal was met. */
  readonly met: boolean;
  /** Anything worth knowing about the run (counts, drops, spreads). */
  readonly notes: string[];
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

/**
 * Starts the daemon on `yaml` (written into a fresh temp folder as `pipeline.yaml`), with
 * extra Deno flags (e.g. `--cpu-prof`) placed before the entry point as `deno run` wants.
 * `entry`, else `AUDITPIPE_BENCH_ENTRY`, names another `main.ts` to start instead (an older
 * checkout).
 */
export async function daemon(
  yaml: (dir: string) => string,
  opts: { dir?: string; denoFlags?: string[]; entry?: string } = {},
): Promise<Daemon> {
  return await startDaemon(yaml, {
    dir: opts.dir,
    permissions: ["-A", ...(opts.denoFlags ?? [])],
    // Another checkout's main.ts, to compare two versions of the daemon on the same machine.
    entry: opts.entry ?? (Deno.env.get("AUDITPIPE_BENCH_ENTRY") || undefined),
  });
}

/** Parsed Prometheus text: `name{labels}` → value, labels as written by prom-client. */
export type Samples = Map<string, number>;

/** Parses the exposition text into samples keyed by `name{a="x",b="y"}` (or `name`). */
export const parseMetrics: (text: string) => Samples = parseTestMetrics;

/** Reads `/metrics` of the ops server on `port`. */
export async function scrape(port: number): Promise<Samples> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return parseMetrics(await res.text());
}

/** The value of `name` with exactly `labels` (in prom-client's order), or 0 when absent. */
export function sample(s: Samples, name: string, labels: Record<string, string> = {}): number {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(",");
  return s.get(l ? `${name}{${l}}` : name) ?? 0;
}

/** The sum of every series of `name` whose labels include `labels`. */
export function sum(s: Samples, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let t = 0;
  for (const [key, v] of s) {
    if (key !== name && !key.startsWith(`${name}{`)) continue;
    if (want.every((w) => key.includes(w))) t += v;
  }
  return t;
}

/**
 * The `p`th percentile (seconds) of the observations of histogram `name` with `labels`
 * between two scrapes, interpolated inside its bucket as Prometheus' `histogram_quantile`
 * does; the last finite bound when it falls beyond it.
 *
 * @example
 * ```ts
 * const p99 = histogramPercentile(before, after, "auditpipe_source_request_duration_seconds", { source: "apiserver" }, 99);
 * ```
 */
export function histogramPercentile(
  before: Samples,
  after: Samples,
  name: string,
  labels: Record<string, string>,
  p: number,
): number {
  const buckets: [number, number][] = [];
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const [key, v] of after) {
    if (!key.startsWith(`${name}_bucket{`) || !want.every((w) => key.includes(w))) continue;
    const le = /le="([^"]*)"/.exec(key)![1];
    buckets.push([le === "+Inf" ? Infinity : Number(le), v - (before.get(key) ?? 0)]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  // The same interpolation `auditpipe top` shows.
  return quantile(p / 100, buckets) ?? NaN;
}

/** A sink's counters from one scrape. */
export interface SinkCounts {
  readonly received: number;
  readonly written: number;
  readonly dropped: number;
  readonly buffered: number;
}

/** The counters of sink `name`. */
export function sinkCounts(s: Samples, name: string): SinkCounts {
  return {
    received: sample(s, "auditpipe_sink_events_total", { sink: name }),
    written: sample(s, "auditpipe_sink_written_total", { sink: name }),
    dropped: sum(s, "auditpipe_sink_dropped_total", { sink: name }),
    buffered: sample(s, "auditpipe_sink_buffer_events", { sink: name }),
  };
}

/** The drop counters of sink `name` that are not zero, by reason. */
export function drops(s: Samples, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, v] of s) {
    if (!key.startsWith("auditpipe_sink_dropped_total{") || v === 0) continue;
    if (!key.includes(`sink="${name}"`)) continue;
    out[/reason="([^"]*)"/.exec(key)![1]] = v;
  }
  return out;
}

/** The top-level prefix kube-apiserver writes on every log line. */
export const TOP_PREFIX = '{"kind":"Event","apiVersion":"audit.k8s.io/v1",';

/**
 * A log line as an EventList item: the same bytes without `kind` and `apiVersion`, as Go
 * writes list items, so webhook bodies carry exactly the events the tail benchmark reads.
 */
export function lineToItem(line: string): string {
  if (!line.startsWith(TOP_PREFIX)) {
    throw new Error(`not a top-level v1 line: ${line.slice(0, 80)}`);
  }
  return `{${line.slice(TOP_PREFIX.length)}`;
}

/** An EventList body of items (already serialized). */
export function eventListBody(items: readonly string[]): string {
  return `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${
    items.join(",")
  }]}`;
}

/** Reads a JSON-lines file into its non-empty lines. */
export async function readLines(path: string, limit = Infinity): Promise<string[]> {
  const text = await Deno.readTextFile(path);
  const out: string[] = [];
  let start = 0;
  while (start < text.length && out.length < limit) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    if (end > start) out.push(text.slice(start, end));
    start = end + 1;
  }
  return out;
}

/** The `p`-th percentile (0..100) of sorted `xs`, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/**
 * Of rows measured on fresh daemons, the one with the median `value` (the lower middle), its
 * notes led by how many runs there were and `perRun` (what each gave).
 *
 * @example
 * ```ts
 * const row = medianRow(runs, `per-run ratios ${runs.map((r) => r.value).join(", ")}`);
 * ```
 */
export function medianRow(runs: readonly (Row & { value: number })[], perRun: string): Row {
  const mid = [...runs].sort((a, b) => a.value - b.value)[Math.floor((runs.length - 1) / 2)];
  return { ...mid, notes: [`${runs.length} runs, the median shown; ${perRun}`, ...mid.notes] };
}

/** The median of `xs` (the lower middle for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

/** `1234567` → `1,234,567`. */
export function num(n: number, digits = 0): string {
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Polls `fn` every `everyMs` until it returns a value other than undefined or time runs out. */
export async function poll<T>(
  fn: () => Promise<T | undefined>,
  opts: { everyMs: number; timeoutMs: number; what: string },
): Promise<T> {
  const until = performance.now() + opts.timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (performance.now() > until) throw new Error(`timed out waiting for ${opts.what}`);
    await sleep(opts.everyMs);
  }
}

/** Runs `deno run -A <script> ...args` and returns its stdout parsed as JSON. */
export async function runJson<T>(script: string, args: string[]): Promise<T> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdout: "piped",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).output();
  if (!out.success) throw new Error(`${script} exited ${out.code}`);
  return JSON.parse(new TextDecoder().decode(out.stdout)) as T;
}

/**
 * CPU seconds (user + system, every thread) a process has used so far, from
 * `/proc/<pid>/stat` (`"self"` for this process), in clock ticks of 10 ms. Linux only.
 *
 * @example
 * ```ts
 * const cpu = await procCpuSeconds(child.pid);
 * ```
 */
export async function procCpuSeconds(pid: number | "self"): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces) start at field 3, state.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime; USER_HZ is 100 on Linux
}

/** Writes all of `bytes` to `file` (a single write may be partial). */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
}

/**
 * Runs `floor` then `daemon`, `runs` times (alternating, so both see the same machine state),
 * logging each pair's seconds under `label`.
 *
 * @example
 * ```ts
 * const { floors, daemons } = await alternate("tail", 3, console.error, floorRun, daemonRun);
 * ```
 */
export async function alternate<F extends { seconds: number }, D extends { seconds: number }>(
  label: string,
  runs: number,
  log: (msg: string) => void,
  floor: () => Promise<F>,
  daemon: () => Promise<D>,
): Promise<{ floors: F[]; daemons: D[] }> {
  const floors: F[] = [];
  const daemons: D[] = [];
  for (let i = 0; i < runs; i++) {
    floors.push(await floor());
    daemons.push(await daemon());
    log(
      `${label}: run ${i + 1}/${runs}: floor ${floors[i].seconds.toFixed(2)} s, daemon ${
        daemons[i].seconds.toFixed(2)
      } s`,
    );
  }
  return { floors, daemons };
}

/**
 * The row of a throughput benchmark: the daemon's median rate over `events` and `bytes`
 * against the floor's, met when their ratio reaches `goal`. `notes` come first, then whether
 * the floor saw every event, then the run count, the per-run ratios and `detail`.
 *
 * @example
 * ```ts
 * const row = throughputRow({ name: "tail", events, bytes, floors, daemons, goal: 0.85, notes: [], detail: "" });
 * ```
 */
export function throughputRow(o: {
  name: string;
  events: number;
  bytes: number;
  floors: readonly { seconds: number; events: number }[];
  daemons: readonly { seconds: number }[];
  goal: number;
  notes: string[];
  detail: string;
}): Row {
  const seconds = median(o.daemons.map((r) => r.seconds));
  const floorSeconds = median(o.floors.map((f) => f.seconds));
  const ratio = floorSeconds / seconds;
  const rate = (s: number) =>
    `${num(o.events / s)} ev/s, ${num(o.bytes / 1e6 / s, 1)} MB/s (${s.toFixed(2)} s)`;
  const notes = [...o.notes];
  if (o.floors.some((f) => f.events !== o.events)) {
    notes.push(`floor saw ${o.floors.map((f) => f.events).join("/")} events`);
  }
  notes.push(
    `${o.daemons.length} runs, medians shown; per-run ratios ${
      o.daemons.map((r, i) => (o.floors[i].seconds / r.seconds).toFixed(2)).join(", ")
    }; ${o.detail}`,
  );
  return {
    name: o.name,
    result: rate(seconds),
    baseline: rate(floorSeconds),
    ratio: ratio.toFixed(2),
    goal: `≥ ${o.goal} of floor`,
    met: ratio >= o.goal,
    notes,
  };
}

/**
 * The config's `sources:` that the webhook benchmarks share: one webhook source,
 * `apiserver`, on an ephemeral port.
 *
 * @example
 * ```ts
 * const yaml = `${WEBHOOK_SOURCE_YAML}${outSinkYaml(`${dir}/out.log`)}`;
 * ```
 */
export const WEBHOOK_SOURCE_YAML = `sources:
  - type: webhook
    name: apiserver
    listen: 127.0.0.1:0
`;

/**
 * The config's `sources:` that the tail benchmarks share: one tail source, `audit`, reading
 * `input` from its beginning, polling every 10 ms, its checkpoint in `dir`.
 *
 * @example
 * ```ts
 * const yaml = `${tailSourceYaml(`${dir}/audit.log`, dir)}${outSinkYaml(`${dir}/out.log`)}`;
 * ```
 */
export function tailSourceYaml(input: string, dir: string): string {
  return `sources:
  - type: tail
    name: audit
    path: ${input}
    startAt: beginning
    checkpointFile: ${dir}/audit.ckpt
    pollInterval: 10ms
`;
}

/**
 * The config from `sinks:` on that the daemon benchmarks share: one blocking JSON log sink,
 * `out`, writing `path` through {@linkcode POLICY20}, never rotating; an ops server on an
 * ephemeral port for `/metrics`.
 *
 * @example
 * ```ts
 * const yaml = `sources:\n  - type: stdin\n${outSinkYaml(`${dir}/out.log`)}`;
 * ```
 */
export function outSinkYaml(
  path: string,
  o: { fsync?: "never" | "batch"; shutdownTimeout?: string; signingKey?: string } = {},
): string {
  return `sinks:
  - type: log
    name: out
    path: ${path}
    format: json
    policy: ${POLICY20}
    mode: blocking
    fsync: ${o.fsync ?? "never"}
    rotate: {maxSize: 0, maxBackup: 0, maxAge: 0}${
    o.signingKey ? `\n    integrity: {signingKey: ${o.signingKey}}` : ""
  }
server:
  listen: 127.0.0.1:0
shutdownTimeout: ${o.shutdownTimeout ?? "60s"}
`;
}

/** When a daemon wrote its last output, by {@linkcode waitForLastWrite}. */
export interface LastWrite {
  /** Whether `done()` reached the expected count (false: it stopped progressing). */
  readonly complete: boolean;
  /** The daemon's CPU seconds at the first sample that saw the output at its final size. */
  readonly cpuSeconds: number;
  /** Its CPU seconds when completion was confirmed (includes the idle wait and a scrape). */
  readonly cpuAtConfirm: number;
  /** Scrapes of the daemon made to confirm completion. */
  readonly scrapes: number;
}

/**
 * Waits until a daemon has accounted for `expected` events and says how much CPU it had used
 * at its last write. Every `everyMs` (20) the output file's size and the daemon's CPU seconds
 * are sampled from this process, which costs the daemon nothing; `done()` (a `/metrics`
 * scrape, which costs the daemon CPU) is asked only after the file has not grown for
 * `quietMs` (300). Completion is the count reaching `expected`; no growth and no progress
 * for `stallMs` (10 s) ends the wait as incomplete. The CPU at the last write excludes what
 * the daemon spends idle after the end (tail polls, timers) and on the confirming scrape,
 * which would otherwise add a wall-time-dependent amount to each run.
 *
 * @example
 * ```ts
 * const end = await waitForLastWrite(d.process.pid, out, async () => counted(await scrape(port)), n);
 * ```
 */
export async function waitForLastWrite(
  pid: number,
  output: string,
  done: () => Promise<number>,
  expected: number,
  o: { everyMs?: number; quietMs?: number; stallMs?: number } = {},
): Promise<LastWrite> {
  const everyMs = o.everyMs ?? 20;
  const quietMs = o.quietMs ?? 300;
  const stallMs = o.stallMs ?? 10_000;
  let size = -1;
  let cpuAtSize = 0;
  let grewAt = performance.now();
  let lastCount = -1;
  let progressAt = grewAt;
  let askedAt = 0;
  let scrapes = 0;
  for (;;) {
    await sleep(everyMs);
    let now = -1;
    try {
      now = (await Deno.stat(output)).size;
    } catch { /* not created yet */ }
    const t = performance.now();
    if (now !== size) {
      size = now;
      cpuAtSize = await procCpuSeconds(pid);
      grewAt = t;
      continue;
    }
    if (t - grewAt < quietMs || t - askedAt < quietMs) continue;
    askedAt = t;
    scrapes++;
    const count = await done();
    if (count >= expected) {
      return {
        complete: true,
        cpuSeconds: cpuAtSize,
        cpuAtConfirm: await procCpuSeconds(pid),
        scrapes,
      };
    }
    if (count !== lastCount) {
      lastCount = count;
      progressAt = t;
    } else if (t - Math.max(progressAt, grewAt) > stallMs) {
      return {
        complete: false,
        cpuSeconds: cpuAtSize,
        cpuAtConfirm: await procCpuSeconds(pid),
        scrapes,
      };
    }
  }
}
