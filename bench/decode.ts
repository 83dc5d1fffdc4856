/**
 * In process, alternating in one run: the CPU per event of decode → policy20 → output bytes
 * for every line of the data, with the fast decode path (`decodeLine`: bodies validated and
 * parsed only when read) and without it (`decodeLineWhole`: `JSON.parse` of the whole
 * line). No I/O, streams or metrics: the part of the daemon's work the fast path changes,
 * measured where a loaded machine disturbs it least. Output bytes are checked equal.
 *
 * @module
 */
import process from "node:process";
import { type Decoded, decodeLine, decodeLineWhole } from "../pipeline/core/decode.ts";
import { encodeEvent, jsonBytes } from "../pipeline/core/encode.ts";
import { applyPolicy, compilePolicy, evaluate, parsePolicy } from "../policy/mod.ts";
import type { DataFile } from "./generate.ts";
import { median, num, POLICY20, type Row } from "./lib.ts";

const encoder = new TextEncoder();

/** Decodes, applies the policy and encodes every line; returns the output's size. */
function pass(
  lines: readonly Uint8Array[],
  decode: (b: Uint8Array) => Decoded,
  policy: ReturnType<typeof compilePolicy>,
): number {
  let out = 0;
  for (const l of lines) {
    const env = decode(l).envelopes[0];
    const applied = applyPolicy(evaluate(policy, env.event), env.event);
    if (typeof applied === "string") continue;
    out += applied === env.event
      ? jsonBytes(env).length
      : encoder.encode(encodeEvent(applied)).length;
  }
  return out;
}

/**
 * The decode row: CPU-µs per event with and without the fast path, medians of `runs`
 * alternating passes over the first `limitMb` MB of the data.
 *
 * @example
 * ```ts
 * const row = await benchDecode(data, { log: console.error, runs: 5 });
 * ```
 */
export async function benchDecode(
  data: DataFile,
  opts: { log: (msg: string) => void; runs: number; limitMb?: number },
): Promise<Row> {
  const policy = compilePolicy(parsePolicy(await Deno.readTextFile(POLICY20), POLICY20).policy);
  const all = await Deno.readFile(data.path);
  const bytes = all.subarray(0, Math.min(all.length, (opts.limitMb ?? 80) * 1e6));
  const lines: Uint8Array[] = [];
  for (let s = 0, nl; (nl = bytes.indexOf(10, s)) >= 0; s = nl + 1) {
    lines.push(bytes.subarray(s, nl));
  }
  const whole: number[] = [];
  const fast: number[] = [];
  const ratios: number[] = [];
  const cpu = (f: () => number) => {
    const c0 = process.cpuUsage();
    const size = f();
    const c = process.cpuUsage(c0);
    return { us: (c.user + c.system) / lines.length, size };
  };
  cpu(() => pass(lines, decodeLine, policy)); // warm-up, both paths' code compiled
  cpu(() => pass(lines, decodeLineWhole, policy));
  for (let i = 0; i < opts.runs; i++) {
    const w = cpu(() => pass(lines, decodeLineWhole, policy));
    const f = cpu(() => pass(lines, decodeLine, policy));
    if (w.size !== f.size) throw new Error(`output differs: ${w.size} vs ${f.size} bytes`);
    whole.push(w.us);
    fast.push(f.us);
    ratios.push(f.us / w.us);
    opts.log(
      `decode: run ${i + 1}/${opts.runs}: whole ${w.us.toFixed(2)}, fast ${
        f.us.toFixed(2)
      } CPU-µs/event, ratio ${(f.us / w.us).toFixed(2)}`,
    );
  }
  return {
    name: "decode → policy20 → bytes, in process (fast path vs JSON.parse of every line)",
    result: `${num(median(fast), 2)} CPU-µs/event`,
    baseline: `whole ${num(median(whole), 2)} CPU-µs/event`,
    ratio: median(ratios).toFixed(2),
    goal: "-",
    met: true,
    notes: [
      `${num(lines.length)} events (${num(bytes.length / 1e6, 0)} MB), ${opts.runs} runs ` +
      `alternating, medians; per-run ratios ${ratios.map((r) => r.toFixed(2)).join(", ")}`,
    ],
  };
}
