/**
 * CPU per event in steady state: the slope of a process's CPU seconds (user + system, all
 * threads, from `/proc/<pid>/stat`) between two data sizes, so start-up, module loading and
 * the warm-up of the JIT cancel. Measured for the daemon and for its floor on the same
 * data, in the same run, alternating:
 *
 * - tail → policy20 → log against `floor_tail.ts` (read, `JSON.parse` every line, write the
 *   original bytes): µs per event and the ratio daemon ÷ floor (goal: ≤ 0.5);
 * - webhook → policy20 → log against `floor_webhook.ts`: events per CPU-second, and the ratio
 *   to the floor's, which is how a run on another day is compared with the "before" figure
 *   in bench/README.md (goal: ≥ 1.5× that).
 *
 * The small size is the first third of the data file's events (a file of its own, cached
 * next to it); the large size is the whole file.
 *
 * @module
 */
import type { DataFile } from "./generate.ts";
import { median, num, type Row, runJson } from "./lib.ts";
import { FLOOR, tailDaemonRun } from "./tail.ts";
import { buildBodies, daemonRun, floorRun } from "./webhook.ts";

/** Options of {@linkcode benchCpu}. */
export interface CpuOptions {
  readonly log: (msg: string) => void;
  readonly runs: number;
}

/** The first `events` lines of `data`, as a data file of their own (cached). */
async function prefixData(data: DataFile, events: number): Promise<DataFile> {
  const path = `${data.path}.first${events}.jsonl`;
  const bytes = await Deno.readFile(data.path);
  let end = 0;
  for (let i = 0; i < events; i++) end = bytes.indexOf(10, end) + 1;
  try {
    if ((await Deno.stat(path)).size === end) return { ...data, path, events, bytes: end };
  } catch { /* not there yet */ }
  await Deno.writeFile(path, bytes.subarray(0, end));
  return { ...data, path, events, bytes: end };
}

/** CPU µs per event between two (events, CPU seconds) measurements. */
function slopeUs(small: { events: number; cpu: number }, large: { events: number; cpu: number }) {
  return (large.cpu - small.cpu) * 1e6 / (large.events - small.events);
}

async function floorTail(data: DataFile): Promise<number> {
  const tmp = await Deno.makeTempDir({ prefix: "auditpipe-bench-floor-" });
  try {
    const r = await runJson<{ events: number; cpu: number; cpuStart: number }>(FLOOR, [
      data.path,
      `${tmp}/out.log`,
    ]);
    if (r.events !== data.events) throw new Error(`floor saw ${r.events} of ${data.events}`);
    return r.cpu - r.cpuStart;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Spread of per-run values: `min–max`. */
function spread(xs: readonly number[], digits: number): string {
  return `${num(Math.min(...xs), digits)}–${num(Math.max(...xs), digits)}`;
}

/**
 * Tail: per run, the floor and the daemon on the small and the large file (alternating);
 * the row gives the median slopes and the median of the per-run ratios.
 *
 * @example
 * ```ts
 * const row = await benchCpuTail(data, { log: console.error, runs: 5 });
 * ```
 */
export async function benchCpuTail(data: DataFile, opts: CpuOptions): Promise<Row> {
  const small = await prefixData(data, Math.round(data.events / 3));
  const floors: number[] = [];
  const daemons: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < opts.runs; i++) {
    const f0 = await floorTail(small);
    const d0 = await tailDaemonRun(small, { log: opts.log });
    const f1 = await floorTail(data);
    const d1 = await tailDaemonRun(data, { log: opts.log });
    if (!d0.complete || !d1.complete) throw new Error("cpu tail: the daemon did not finish");
    const f = slopeUs({ events: small.events, cpu: f0 }, { events: data.events, cpu: f1 });
    const d = slopeUs({ events: small.events, cpu: d0.cpuSeconds - d0.cpuAtStart }, {
      events: data.events,
      cpu: d1.cpuSeconds - d1.cpuAtStart,
    });
    floors.push(f);
    daemons.push(d);
    ratios.push(d / f);
    opts.log(
      `cpu tail: run ${i + 1}/${opts.runs}: floor ${f.toFixed(2)} µs/event ` +
        `(${f0.toFixed(2)} → ${f1.toFixed(2)} s), daemon ${d.toFixed(2)} µs/event ` +
        `(${(d0.cpuSeconds - d0.cpuAtStart).toFixed(2)} → ${
          (d1.cpuSeconds - d1.cpuAtStart).toFixed(2)
        } s), ratio ${(d / f).toFixed(2)}`,
    );
  }
  const ratio = median(ratios);
  return {
    name: "CPU per event: tail → policy20 → log (slope)",
    result: `${num(median(daemons), 2)} µs/event`,
    baseline: `floor ${num(median(floors), 2)} µs/event`,
    ratio: ratio.toFixed(2),
    goal: "≤ 0.5 of floor",
    met: ratio <= 0.5,
    notes: [
      `slope between ${num(small.events)} and ${num(data.events)} events; ${opts.runs} runs, ` +
      `medians; per-run ratios ${ratios.map((r) => r.toFixed(2)).join(", ")}; daemon ${
        spread(daemons, 2)
      }, floor ${spread(floors, 2)} µs/event`,
    ],
  };
}

/**
 * Webhook: per run, the floor and the daemon on bodies of the small and the large data
 * (alternating); events per CPU-second from the slope, and the ratio daemon ÷ floor.
 *
 * @example
 * ```ts
 * const row = await benchCpuWebhook(lines, { log: console.error, runs: 5 });
 * ```
 */
export async function benchCpuWebhook(lines: readonly string[], opts: CpuOptions): Promise<Row> {
  const smallBodies = buildBodies(lines.slice(0, Math.round(lines.length / 3)));
  const largeBodies = buildBodies(lines);
  const floors: number[] = [];
  const daemons: number[] = [];
  const ratios: number[] = [];
  const at = (events: number, cpu: number) => ({ events, cpu });
  for (let i = 0; i < opts.runs; i++) {
    const f0 = await floorRun(smallBodies);
    const d0 = await daemonRun(smallBodies);
    const f1 = await floorRun(largeBodies);
    const d1 = await daemonRun(largeBodies);
    for (const r of [f0, d0, f1, d1]) {
      if (r.failed) throw new Error(`cpu webhook: ${r.failed} posts failed`);
    }
    const f = 1e6 /
      slopeUs(at(smallBodies.events, f0.cpuSeconds), at(largeBodies.events, f1.cpuSeconds));
    const d = 1e6 /
      slopeUs(at(smallBodies.events, d0.cpuSeconds), at(largeBodies.events, d1.cpuSeconds));
    floors.push(f);
    daemons.push(d);
    ratios.push(d / f);
    opts.log(
      `cpu webhook: run ${i + 1}/${opts.runs}: floor ${num(f)} ev/CPU-s, daemon ${num(d)} ` +
        `ev/CPU-s (${d0.cpuSeconds.toFixed(2)} → ${d1.cpuSeconds.toFixed(2)} s), ratio ${
          (d / f).toFixed(2)
        }`,
    );
  }
  const ratio = median(ratios);
  return {
    name: "CPU: webhook (EventLists of 400) → policy20 → log (slope)",
    result: `${num(median(daemons))} events/CPU-s`,
    baseline: `floor ${num(median(floors))} events/CPU-s`,
    ratio: ratio.toFixed(2),
    goal: "≥ 1.5× the ratio before (bench/README.md)",
    met: ratio >= 1.5 * WEBHOOK_RATIO_BEFORE,
    notes: [
      `slope between ${num(smallBodies.events)} and ${
        num(largeBodies.events)
      } events; ${opts.runs} runs, medians; per-run ratios ${
        ratios.map((r) => r.toFixed(2)).join(", ")
      }; daemon ${spread(daemons, 0)}, floor ${spread(floors, 0)} events/CPU-s; ` +
      `senders share the machine but not the process measured`,
    ],
  };
}

/**
 * The webhook daemon's events per CPU-second ÷ its floor's before the issue-18 work (median
 * of the runs in bench/README.md), the reference for goal 2 on any day.
 */
export const WEBHOOK_RATIO_BEFORE = 0.92;
