/**
 * CPU per event in steady state: one process is given the first third of the data file's
 * events (the warm-up: module loading is done, the JIT has compiled the hot paths, the heap
 * has grown), then the other two thirds, and the CPU seconds (user + system, all threads,
 * from `/proc/<pid>/stat`) it spends on those, from just before they appear to its last
 * write (tail) or last answer (webhook), are divided by their events. The tail daemon gets
 * them as a rotation (the first file renamed away, the rest linked at the path); the tail
 * floor reads the two files one after the other; the webhook daemon and floor are sent the
 * two sets of `EventList`s one after the other. Measured for the daemon and for its floor on
 * the same data, in the same run, alternating:
 *
 * - tail → policy20 → log against `floor_tail.ts` (read, `JSON.parse` every line, write the
 *   original bytes): µs per event and the ratio daemon ÷ floor (goal: ≤ 0.5);
 * - webhook → policy20 → log against `floor_webhook.ts`: events per CPU-second, and the ratio
 *   to the floor's, which is how a run on another day is compared with the "before" figure
 *   in bench/README.md (goal: ≥ 1.5× that).
 *
 * With `AUDITPIPE_BENCH_BEFORE` set to an older checkout's `main.ts`, that daemon runs too,
 * in the same alternation (floor, before, after), and the row also gives the per-run ratios
 * after ÷ before: a before/after comparison in one sitting.
 *
 * One process measured after its own warm-up, rather than the slope between two processes
 * on two sizes: the slope is the difference of two noisy numbers (on a shared machine each
 * varies by ±10%), divided by the smaller difference of their sizes. Contention only ever
 * adds CPU time, so besides the medians of per-run values the notes give the ratio of the
 * least CPU per event over the runs ("least").
 *
 * @module
 */
import type { DataFile } from "./generate.ts";
import { median, num, type Row, runJson } from "./lib.ts";
import { FLOOR, tailDaemonPhases } from "./tail.ts";
import { buildBodies, daemonPhases, floorPhases } from "./webhook.ts";

/** Options of {@linkcode benchCpuTail}. */
export interface CpuOptions {
  readonly log: (msg: string) => void;
  readonly runs: number;
}

/** The "before" daemon of an A/B run (`AUDITPIPE_BENCH_BEFORE`), or undefined. */
function beforeEntry(): string | undefined {
  return Deno.env.get("AUDITPIPE_BENCH_BEFORE") || undefined;
}

/**
 * The first `events` lines of `data` and the rest, as data files of their own (cached next
 * to it).
 */
async function splitData(data: DataFile, events: number): Promise<[DataFile, DataFile]> {
  const bytes = await Deno.readFile(data.path);
  let end = 0;
  for (let i = 0; i < events; i++) end = bytes.indexOf(10, end) + 1;
  const part = async (path: string, from: number, to: number, n: number) => {
    try {
      if ((await Deno.stat(path)).size === to - from) {
        return { ...data, path, events: n, bytes: to - from };
      }
    } catch { /* not there yet */ }
    await Deno.writeFile(path, bytes.subarray(from, to));
    return { ...data, path, events: n, bytes: to - from };
  };
  return [
    await part(`${data.path}.first${events}.jsonl`, 0, end, events),
    await part(`${data.path}.after${events}.jsonl`, end, bytes.length, data.events - events),
  ];
}

/** CPU seconds of the floor on `rest` after a warm-up on `first`. */
async function floorTail(first: DataFile, rest: DataFile): Promise<number> {
  const tmp = await Deno.makeTempDir({ prefix: "auditpipe-bench-floor-" });
  try {
    const r = await runJson<{ cpuAfter: number[]; eventsIn: number[] }>(FLOOR, [
      first.path,
      `${tmp}/out.log`,
      rest.path,
    ]);
    if (r.eventsIn[1] !== rest.events) {
      throw new Error(`floor saw ${r.eventsIn[1]} of ${rest.events}`);
    }
    return r.cpuAfter[1] - r.cpuAfter[0];
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Spread of per-run values: `min–max`. */
function spread(xs: readonly number[], digits: number): string {
  return `${num(Math.min(...xs), digits)}–${num(Math.max(...xs), digits)}`;
}

/** A contender: what it is called and how to measure its CPU seconds on the measured part. */
interface Contender {
  readonly name: string;
  readonly measure: () => Promise<number>;
}

/**
 * Measures every contender `runs` times, alternating; returns each one's µs per event per
 * run and the least.
 */
async function steady(
  label: string,
  events: number,
  contenders: Contender[],
  opts: CpuOptions,
): Promise<Map<string, { perRun: number[]; least: number }>> {
  const out = new Map(contenders.map((c) => [c.name, { perRun: [] as number[], least: 0 }]));
  for (let i = 0; i < opts.runs; i++) {
    const line: string[] = [];
    for (const c of contenders) {
      const cpu = await c.measure();
      out.get(c.name)!.perRun.push(cpu * 1e6 / events);
      line.push(`${c.name} ${(cpu * 1e6 / events).toFixed(2)} µs/event (${cpu.toFixed(2)} s)`);
    }
    opts.log(`cpu ${label}: run ${i + 1}/${opts.runs}: ${line.join(", ")}`);
  }
  for (const v of out.values()) v.least = Math.min(...v.perRun);
  return out;
}

const fixed = (xs: readonly number[]) => xs.map((r) => r.toFixed(2)).join(", ");

/**
 * Tail: per run, the floor and the daemon (and the "before" daemon, if set) on the small and
 * the large file, alternating; the row gives the median slopes and the median of the
 * per-run ratios.
 *
 * @example
 * ```ts
 * const row = await benchCpuTail(data, { log: console.error, runs: 5 });
 * ```
 */
export async function benchCpuTail(data: DataFile, opts: CpuOptions): Promise<Row> {
  const [first, rest] = await splitData(data, Math.round(data.events / 3));
  const daemonCpu = async (entry?: string) => {
    const [, r] = await tailDaemonPhases([first, rest], { log: () => {}, entry });
    if (!r?.complete) throw new Error("cpu tail: the daemon did not finish");
    return r.cpuSeconds - r.cpuAtStart;
  };
  const before = beforeEntry();
  const contenders: Contender[] = [
    { name: "floor", measure: () => floorTail(first, rest) },
    ...(before ? [{ name: "before", measure: () => daemonCpu(before) }] : []),
    { name: "daemon", measure: () => daemonCpu() },
  ];
  const r = await steady("tail", rest.events, contenders, opts);
  const floor = r.get("floor")!;
  const daemon = r.get("daemon")!;
  const ratios = daemon.perRun.map((d, i) => d / floor.perRun[i]);
  const ratio = median(ratios);
  const notes = [
    `${num(rest.events)} events after a warm-up on ${num(first.events)}; ${opts.runs} runs, ` +
    `medians; per-run ratios ${fixed(ratios)}; daemon ${spread(daemon.perRun, 2)}, floor ${
      spread(floor.perRun, 2)
    } µs/event; least: daemon ${daemon.least.toFixed(2)}, floor ${
      floor.least.toFixed(2)
    } µs/event, ratio ${(daemon.least / floor.least).toFixed(2)}`,
  ];
  const b = r.get("before");
  if (b) {
    const ab = daemon.perRun.map((d, i) => d / b.perRun[i]);
    notes.push(
      `before (${before}): ${num(median(b.perRun), 2)} µs/event (${spread(b.perRun, 2)}), ÷ floor ${
        median(b.perRun.map((x, i) => x / floor.perRun[i])).toFixed(2)
      }; after ÷ before per run ${fixed(ab)}, median ${median(ab).toFixed(2)}; least ${
        (daemon.least / b.least).toFixed(2)
      }`,
    );
  }
  return {
    name: "CPU per event: tail → policy20 → log (after warm-up)",
    result: `${num(median(daemon.perRun), 2)} µs/event`,
    baseline: `floor ${num(median(floor.perRun), 2)} µs/event`,
    ratio: ratio.toFixed(2),
    goal: "≤ 0.5 of floor",
    met: ratio <= 0.5,
    notes,
  };
}

/**
 * Webhook: per run, the floor and the daemon (and the "before" daemon, if set) on bodies of
 * the small and the large data, alternating; events per CPU-second from the slope, and the
 * ratio daemon ÷ floor.
 *
 * @example
 * ```ts
 * const row = await benchCpuWebhook(lines, { log: console.error, runs: 5 });
 * ```
 */
export async function benchCpuWebhook(lines: readonly string[], opts: CpuOptions): Promise<Row> {
  const cut = Math.round(lines.length / 3);
  const parts = [buildBodies(lines.slice(0, cut)), buildBodies(lines.slice(cut))];
  const events = parts[1].events;
  const checked = (r: { failed: number; cpuSeconds: number; cpuAtStart: number }[]) => {
    for (const p of r) if (p.failed) throw new Error(`cpu webhook: ${p.failed} posts failed`);
    return r[1].cpuSeconds - r[1].cpuAtStart;
  };
  const before = beforeEntry();
  const contenders: Contender[] = [
    { name: "floor", measure: async () => checked(await floorPhases(parts)) },
    ...(before
      ? [{
        name: "before",
        measure: async () => checked(await daemonPhases(parts, undefined, before)),
      }]
      : []),
    { name: "daemon", measure: async () => checked(await daemonPhases(parts)) },
  ];
  const r = await steady("webhook", events, contenders, opts);
  const rate = (us: number) => 1e6 / us;
  const floor = r.get("floor")!.perRun.map(rate);
  const d = r.get("daemon")!;
  const daemon = d.perRun.map(rate);
  const ratios = daemon.map((x, i) => x / floor[i]);
  const ratio = median(ratios);
  const notes = [
    `${num(events)} events after a warm-up on ${num(parts[0].events)}; ${opts.runs} runs, ` +
    `medians; per-run ratios ${fixed(ratios)}; daemon ${spread(daemon, 0)}, floor ${
      spread(floor, 0)
    } events/CPU-s; least: daemon ${num(rate(d.least))}, floor ${
      num(rate(r.get("floor")!.least))
    } events/CPU-s, ratio ${(r.get("floor")!.least / d.least).toFixed(2)}; ` +
    `senders share the machine but not the process measured`,
  ];
  const b = r.get("before");
  if (b) {
    const ab = daemon.map((x, i) => x / rate(b.perRun[i]));
    notes.push(
      `before (${before}): ${num(median(b.perRun.map(rate)))} events/CPU-s, ÷ floor ${
        median(b.perRun.map((x, i) => rate(x) / floor[i])).toFixed(2)
      }; after ÷ before (events per CPU-second) per run ${fixed(ab)}, median ${
        median(ab).toFixed(2)
      }; least ${(b.least / d.least).toFixed(2)} (goal 2: ≥ 1.5)`,
    );
  }
  return {
    name: "CPU: webhook (EventLists of 400) → policy20 → log (after warm-up)",
    result: `${num(median(daemon))} events/CPU-s`,
    baseline: `floor ${num(median(floor))} events/CPU-s`,
    ratio: ratio.toFixed(2),
    goal: "≥ 1.5× the ratio before (bench/README.md)",
    met: ratio >= 1.5 * WEBHOOK_RATIO_BEFORE,
    notes,
  };
}

/**
 * The webhook daemon's events per CPU-second ÷ its floor's before the issue-18 work (median
 * of the runs in bench/README.md), the reference for goal 2 on any day.
 */
export const WEBHOOK_RATIO_BEFORE = 0.92;
