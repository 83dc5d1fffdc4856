/**
 * `deno task bench`: end-to-end benchmarks of the real daemon (started as a subprocess, as in
 * production) against floors measured in the same run on the same data, plus the policy
 * micro-benchmark. Progress goes to stderr; the results table (Markdown) to stdout.
 *
 * ```
 * deno task bench [--size-mb N] [--seed S] [--runs N]
 *                 [--only decode,cpu,tail,integrity,webhook,memory,latency,policy,diskbuffer,nats,
 *                  startup] [--cpu-prof DIR] [--backlog-mb N]
 * ```
 *
 * `--runs N` (default 5) repeats the throughput and memory measurements (floor and daemon
 * alternating) and reports medians; latency runs min(N, 3) times per fsync setting, 15 s
 * each, and reports the median p99.
 *
 * `cpu` measures CPU per event as the slope between two data sizes (start-up cancels), for
 * tail and webhook, daemon and floor alternating (`cpu.ts`).
 *
 * `decode` compares, in process, decode → policy → bytes with and without the fast decode
 * path (`decode.ts`).
 *
 * `startup` times `main.ts --version`, `main.ts policy --help` and the daemon's first event
 * (`startup.ts`).
 *
 * `integrity` runs the tail benchmark's daemon with and without `integrity` on its log sink,
 * alternating on the same data, and reports the ratio (goal: integrity costs ≤ 10%).
 *
 * `diskbuffer` runs the disk buffer in process (bench/diskbuffer.ts), the webhook → disk-buffered
 * sink case against a memory buffer, and the daemon with a backlog of `--backlog-mb` (default
 * 200; the goal is stated for 1024) while its collector is down, then draining it.
 *
 * `--cpu-prof DIR` runs the tail (and webhook) benchmark's daemon under `deno run --cpu-prof` and prints
 * where its time went (the profiled run is slower; do not compare it with the floor).
 *
 * Speed is measured here only, never asserted in tests.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { benchPolicy } from "./policy.ts";
import { ensureData } from "./generate.ts";
import { readLines, type Row } from "./lib.ts";
import { benchTail, tailDaemonRun } from "./tail.ts";
import { benchWebhook, buildBodies, daemonRun } from "./webhook.ts";
import { benchMemory } from "./memory.ts";
import { benchLatency } from "./latency.ts";
import { formatSummary, newestProfile, summarizeProfile } from "./profile.ts";
import { benchDiskBacklog, benchDiskBuffer, benchDiskE2e } from "./diskbuffer.ts";
import { integrityRow } from "./integrity.ts";
import { benchNats } from "./nats.ts";
import { benchCpuTail, benchCpuWebhook } from "./cpu.ts";
import { benchStartup } from "./startup.ts";
import { benchDecode } from "./decode.ts";

const ALL = [
  "policy",
  "decode",
  "cpu",
  "tail",
  "integrity",
  "webhook",
  "memory",
  "latency",
  "diskbuffer",
  "nats",
  "startup",
] as const;
type Bench = (typeof ALL)[number];

const log = (msg: string) => console.error(`[bench] ${msg}`);

/** The machine, for the results table. */
async function machine(): Promise<string> {
  let cpu = "unknown CPU";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpu = /^model name\s*:\s*(.*)$/m.exec(info)?.[1].trim() ?? cpu;
  } catch { /* not Linux */ }
  const mem = Deno.systemMemoryInfo().total / 2 ** 30;
  return `${navigator.hardwareConcurrency} CPUs (${cpu}), ${mem.toFixed(1)} GiB RAM, ` +
    `${Deno.build.os}/${Deno.build.arch}, Deno ${Deno.version.deno} (V8 ${Deno.version.v8})`;
}

/** Runs `benchPolicy()` and returns the line it prints. */
async function policyRow(): Promise<Row> {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  try {
    await benchPolicy();
  } finally {
    console.log = original;
  }
  const text = lines.join(" ");
  const rate = /([\d,]+) evaluations\/s/.exec(text)?.[1] ?? "?";
  return {
    name: "policy evaluate (bench/policy.ts, in process)",
    result: `${rate} evaluations/s`,
    baseline: "-",
    ratio: "-",
    goal: "-",
    met: true,
    notes: [text],
  };
}

function table(rows: readonly Row[]): string {
  const out = [
    "| benchmark | result | compared with | ratio | goal | met |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    const met = r.goal === "-" ? "-" : r.met ? "yes" : "**no**";
    out.push(`| ${r.name} | ${r.result} | ${r.baseline} | ${r.ratio} | ${r.goal} | ${met} |`);
  }
  out.push("");
  for (const r of rows) {
    for (const n of r.notes) out.push(`- ${r.name}: ${n}`);
  }
  return out.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "size-mb": { type: "string", default: "200" },
      "seed": { type: "string", default: "1" },
      "only": { type: "string", default: ALL.join(",") },
      "runs": { type: "string", default: "5" },
      "cpu-prof": { type: "string" },
      "backlog-mb": { type: "string", default: "200" },
      "help": { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "deno task bench [--size-mb N] [--seed S] [--runs N] " +
        "[--only decode,cpu,tail,integrity,webhook,memory,latency,policy,diskbuffer,nats,startup] " +
        "[--cpu-prof DIR] [--backlog-mb N]",
    );
    return;
  }
  const sizeMb = Number(values["size-mb"]);
  const seed = Number(values.seed);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs <= 0) throw new Error("--runs must be a positive integer");
  if (!Number.isInteger(sizeMb) || sizeMb <= 0) {
    throw new Error("--size-mb must be a positive integer");
  }
  const only = new Set(values.only.split(",").map((s) => s.trim()).filter(Boolean));
  for (const o of only) {
    if (!(ALL as readonly string[]).includes(o)) {
      throw new Error(`--only: unknown benchmark ${o}; known: ${ALL.join(", ")}`);
    }
  }
  const want = (b: Bench) => only.has(b);
  const started = performance.now();
  const host = await machine();
  log(host);

  const data = await ensureData({ seed, sizeMb, log });
  log(
    `data: ${data.path}: ${data.events} events, ${(data.bytes / 1e6).toFixed(1)} MB ` +
      `(levels ${JSON.stringify(data.levels)}, ${data.auditLogEvents} from the start-up audit.log)`,
  );
  // Warm the page cache so neither the floor nor the daemon pays for the first disk read.
  await Deno.readFile(data.path);

  const rows: Row[] = [];
  if (want("policy")) rows.push(await policyRow());
  if (want("startup")) rows.push(await benchStartup({ log, runs }));
  if (want("decode")) rows.push(await benchDecode(data, { log, runs }));
  if (want("cpu")) rows.push(await benchCpuTail(data, { log, runs }));
  if (want("tail")) {
    rows.push(await benchTail(data, { log, runs }));
    if (values["cpu-prof"]) {
      const dir = values["cpu-prof"];
      await Deno.mkdir(dir, { recursive: true });
      log(`tail: profiled daemon run into ${dir}`);
      await tailDaemonRun(data, { log, cpuProfDir: dir });
      const path = await newestProfile(dir);
      console.error(`\nCPU profile ${path} (tail → policy20 → log):`);
      console.error(formatSummary(summarizeProfile(JSON.parse(await Deno.readTextFile(path)), 30)));
    }
  }
  // The same tail run with and without a signed hash chain on the log sink.
  if (want("integrity")) rows.push(await integrityRow(data, { log, runs }));
  const needLines = want("cpu") || want("webhook") || want("memory") || want("latency") ||
    want("diskbuffer");
  const lines = needLines ? await readLines(data.path) : [];
  if (want("cpu")) rows.push(await benchCpuWebhook(lines, { log, runs }));
  if (want("webhook")) {
    rows.push(await benchWebhook(lines, { log, runs }));
    if (values["cpu-prof"]) {
      const dir = `${values["cpu-prof"]}/webhook`;
      await Deno.mkdir(dir, { recursive: true });
      log(`webhook: profiled daemon run into ${dir}`);
      await daemonRun(buildBodies(lines), dir);
      const path = await newestProfile(dir);
      console.error(`\nCPU profile ${path} (webhook → policy20 → log):`);
      console.error(formatSummary(summarizeProfile(JSON.parse(await Deno.readTextFile(path)), 30)));
    }
  }
  if (want("memory")) rows.push(await benchMemory(lines, { log, runs }));
  if (want("latency")) {
    const latencyRuns = Math.min(runs, 3);
    rows.push(await benchLatency(lines, "never", { log, runs: latencyRuns }));
    rows.push(await benchLatency(lines, "batch", { log, runs: latencyRuns }));
  }
  if (want("diskbuffer")) {
    const backlogMb = Number(values["backlog-mb"]);
    if (!Number.isInteger(backlogMb) || backlogMb <= 0) {
      throw new Error("--backlog-mb must be a positive integer");
    }
    rows.push(await benchDiskBuffer({ seconds: 5, producers: 32, batch: 10, backlogMb, log }));
    rows.push(await benchDiskE2e(lines, { seconds: 10, log }));
    // The daemon with a backlog: 200 MiB by default; the 1 GiB with --backlog-mb 1024.
    rows.push(await benchDiskBacklog(lines, { backlogMb, log }));
  }

  if (want("nats")) {
    const dir = values["cpu-prof"] ? `${values["cpu-prof"]}/nats` : undefined;
    rows.push(...await benchNats(data, { log, runs, cpuProfDir: dir }));
    if (dir) {
      const path = await newestProfile(dir);
      console.error(`\nCPU profile ${path} (NATS source → policy20 → log):`);
      console.error(formatSummary(summarizeProfile(JSON.parse(await Deno.readTextFile(path)), 30)));
    }
  }

  const argv = Deno.args.length ? ` ${Deno.args.join(" ")}` : "";
  console.log(`\nMachine: ${host}`);
  console.log(`Command: deno task bench${argv}`);
  console.log(
    `Data: ${data.events.toLocaleString("en-US")} events, ${(data.bytes / 1e6).toFixed(1)} MB ` +
      `(seed ${seed}); total time ${((performance.now() - started) / 1000).toFixed(0)} s\n`,
  );
  console.log(table(rows));
}

if (import.meta.main) await main();
