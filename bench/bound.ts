/**
 * What the tail floor costs when its `JSON.parse` is replaced by the daemon's own work, in a
 * bare loop (no streams, acks, stages or metrics): the least CPU per event any daemon built
 * on this decoder and policy engine can use on the tail → policy → log path, to set against
 * issue 18's goal 1 (≤ 0.5× the floor).
 *
 * Modes, each one process reading the data file twice (the first pass warms up; CPU per event
 * is taken over the second), in 256 KiB reads, one write of the whole lines per read:
 *
 * - `io`: read, split lines, write; nothing parsed.
 * - `parse`: `JSON.parse` of each line: the floor (`floor_tail.ts`).
 * - `decode`: the daemon's `decodeLine` instead (validates every byte, parses what the policy
 *   reads, leaves bodies unparsed).
 * - `policy`: `decodeLine`, then policy20 evaluated and applied.
 *
 * Run: `deno run -A bench/bound.ts [--size-mb 100] [--runs 3]` (the modes alternate per run;
 * medians). Child processes run `bench/bound.ts --child MODE IN OUT`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { decodeLine } from "../pipeline/core/decode.ts";
import { applyPolicy, compilePolicy, evaluate, parsePolicy } from "../policy/mod.ts";
import { ensureData } from "./generate.ts";
import { median, num, POLICY20, procCpuSeconds, runJson } from "./lib.ts";
import { copyLines, READ_SIZE } from "./line_loop.ts";

const MODES = ["io", "parse", "decode", "policy"] as const;
type Mode = (typeof MODES)[number];

/** One child's result: CPU-µs per event over the second pass. */
interface Result {
  readonly mode: Mode;
  readonly events: number;
  readonly us: number;
}

async function child(mode: Mode, inPath: string, outPath: string): Promise<Result> {
  const policy = compilePolicy(parsePolicy(await Deno.readTextFile(POLICY20), POLICY20).policy);
  const decoder = new TextDecoder();
  const output = await Deno.open(outPath, { write: true, create: true, truncate: true });
  const buf = new Uint8Array(READ_SIZE);
  let events = 0;
  let kept = 0;
  const cpu: number[] = [];
  for (let pass = 0; pass < 2; pass++) {
    await copyLines(inPath, output, buf, (line) => {
      if (mode === "parse") {
        if (JSON.parse(decoder.decode(line)).kind === "Event") kept++;
      } else if (mode === "decode") {
        kept += decodeLine(line).envelopes.length;
      } else if (mode === "policy") {
        for (const env of decodeLine(line).envelopes) {
          if (typeof applyPolicy(evaluate(policy, env.event), env.event) !== "string") kept++;
        }
      }
      if (pass === 1) events++;
    });
    cpu.push(await procCpuSeconds("self"));
  }
  output.close();
  // `kept` is read so that no mode's work can be optimized away.
  if (kept < 0) throw new Error("unreachable");
  return { mode, events, us: (cpu[1] - cpu[0]) * 1e6 / events };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "size-mb": { type: "string", default: "100" },
      runs: { type: "string", default: "3" },
      seed: { type: "string", default: "1" },
    },
  });
  const log = (msg: string) => console.error(`[bound] ${msg}`);
  const data = await ensureData({
    seed: Number(values.seed),
    sizeMb: Number(values["size-mb"]),
    log,
  });
  const out = await Deno.makeTempFile({ prefix: "auditpipe-bound-" });
  const script = new URL(import.meta.url).pathname;
  const us = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  try {
    for (let run = 1; run <= Number(values.runs); run++) {
      for (const mode of MODES) {
        const r = await runJson<Result>(script, ["--child", mode, data.path, out]);
        us.get(mode)!.push(r.us);
        log(`run ${run}: ${mode} ${num(r.us, 2)} CPU-µs/event`);
      }
    }
  } finally {
    await Deno.remove(out);
  }
  const floor = median(us.get("parse")!);
  console.log(`| mode | CPU-µs/event (median; runs) | ÷ floor (parse) |`);
  console.log(`| --- | --- | --- |`);
  for (const mode of MODES) {
    const xs = us.get(mode)!;
    console.log(
      `| ${mode} | ${num(median(xs), 2)} (${xs.map((x) => num(x, 2)).join(", ")}) | ${
        num(median(xs) / floor, 2)
      } |`,
    );
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--child") {
    const [, mode, inPath, outPath] = Deno.args;
    console.log(JSON.stringify(await child(mode as Mode, inPath, outPath)));
  } else {
    await main();
  }
}
