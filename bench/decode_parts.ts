/**
 * The steps of decoding, each measured on its own against an older checkout's, alternating
 * in one process: `decodeLine` on the lines without bodies (most events) and on those with
 * bodies, the byte validator on every line, and `eventProblem` on parsed events. CPU-µs per
 * item (`process.cpuUsage()`), medians and minimums of `--runs` passes after a warm-up, and
 * the median of the per-pass ratios new ÷ old. Where `deno task bench --only decode` says how
 * much the whole changed, this says which step did.
 *
 * ```sh
 * deno run -A bench/decode_parts.ts --before ../old-checkout [--size-mb 100] [--limit-mb 40] [--runs 12]
 * ```
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { decodeLine } from "../pipeline/core/decode.ts";
import { eventProblem } from "../pipeline/core/event.ts";
import { jsonValueEnd } from "../pipeline/core/json_validate.ts";
import { ensureData } from "./generate.ts";
import { median } from "./lib.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    before: { type: "string" },
    "size-mb": { type: "string", default: "100" },
    "limit-mb": { type: "string", default: "40" },
    runs: { type: "string", default: "12" },
  },
});
if (!values.before) throw new Error("--before DIR: the root of the checkout to compare with");
const root = pathToFileURL(values.before.endsWith("/") ? values.before : `${values.before}/`);
const old = {
  decode: await import(new URL("pipeline/core/decode.ts", root).href),
  validate: await import(new URL("pipeline/core/json_validate.ts", root).href),
  event: await import(new URL("pipeline/core/event.ts", root).href),
};

const data = await ensureData({ seed: 1, sizeMb: Number(values["size-mb"]) });
const all = await Deno.readFile(data.path);
const bytes = all.subarray(0, Math.min(all.length, Number(values["limit-mb"]) * 1e6));
const decoder = new TextDecoder();
const plain: Uint8Array[] = [];
const withBodies: Uint8Array[] = [];
const lines: Uint8Array[] = [];
for (let s = 0, nl; (nl = bytes.indexOf(10, s)) >= 0; s = nl + 1) {
  const line = bytes.subarray(s, nl);
  const text = decoder.decode(line);
  lines.push(line);
  const bodies = text.includes('"requestObject"') || text.includes('"responseObject"');
  (bodies ? withBodies : plain).push(line);
}
const parsed: unknown[] = plain.map((l) => JSON.parse(decoder.decode(l)));

type Step = [string, readonly unknown[], (x: never) => unknown, (x: never) => unknown];
const steps: Step[] = [
  ["decodeLine, lines without bodies", plain, old.decode.decodeLine, decodeLine],
  ["decodeLine, lines with bodies", withBodies, old.decode.decodeLine, decodeLine],
  [
    "validator (jsonValueEnd), every line",
    lines,
    (l: Uint8Array) => old.validate.jsonValueEnd(l, 0, l.length),
    (l: Uint8Array) => jsonValueEnd(l, 0, l.length),
  ],
  ["eventProblem", parsed, old.event.eventProblem, eventProblem],
];

console.log(
  `${plain.length} lines without bodies, ${withBodies.length} with, first ${
    values["limit-mb"]
  } MB of ${data.path}; ${values.runs} runs alternating; CPU-µs per item`,
);
const runs = Number(values.runs);
for (const [name, items, before, after] of steps) {
  const us: Record<"old" | "new", number[]> = { old: [], new: [] };
  for (let r = 0; r <= runs; r++) {
    for (const [k, f] of [["old", before], ["new", after]] as const) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < items.length; i++) f(items[i] as never);
      const c = process.cpuUsage(c0);
      if (r > 0) us[k].push((c.user + c.system) / items.length); // the first pass warms up
    }
  }
  const ratios = us.old.map((o, i) => us.new[i] / o);
  console.log(
    `${name}: old ${median(us.old).toFixed(2)} → new ${median(us.new).toFixed(2)} ` +
      `(min ${Math.min(...us.old).toFixed(2)} → ${Math.min(...us.new).toFixed(2)}), ` +
      `ratio ${median(ratios).toFixed(2)}`,
  );
}
