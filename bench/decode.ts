/**
 * In process, alternating in one run: the CPU per event of decode → policy20 → output bytes
 * for every event of the data, on the two ways events come in:
 *
 * - audit.log lines: `decodeLine` (the fast path: bodies validated and parsed only when read)
 *   against `decodeLineWhole` (`JSON.parse` of the whole line);
 * - webhook `EventList` bodies of {@linkcode BODY_ITEMS} items: `BodyParts` (each item
 *   decoded on its own, bodies left unparsed) against `decodeWholeBody` (`JSON.parse` of the
 *   whole body).
 *
 * No I/O, streams or metrics: the part of the daemon's work decoding changes, measured where
 * a loaded machine disturbs it least. Output bytes are checked equal. With
 * `AUDITPIPE_BENCH_DECODE_BEFORE` naming the root of an older checkout (e.g. a worktree of
 * `main`), its `decodeLine` and `BodyParts` run too, alternating with these: before/after in
 * one sitting.
 *
 * @module
 */
import process from "node:process";
import { pathToFileURL } from "node:url";
import {
  type Decoded,
  decodeLine,
  decodeLineWhole,
  decodeWholeBody,
} from "../pipeline/core/decode.ts";
import { BodyParts } from "../pipeline/body_parts.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import { encodeEvent, jsonBytes } from "../pipeline/core/encode.ts";
import { decodeUtf8 } from "../pipeline/core/utf8.ts";
import { applyPolicy, compilePolicy, evaluate } from "../policy/mod.ts";
import { parsePolicy } from "../policy/mod.ts";
import type { DataFile } from "./generate.ts";
import { median, num, POLICY20, type Row } from "./lib.ts";

/** Items per webhook body: kube-apiserver's default `--audit-webhook-batch-max-size`. */
export const BODY_ITEMS = 400;

const encoder = new TextEncoder();
type Policy = ReturnType<typeof compilePolicy>;

/** Applies the policy to one envelope and encodes it; the output's size (0 when dropped). */
function output(env: Envelope, policy: Policy): number {
  const applied = applyPolicy(evaluate(policy, env.event), env.event);
  if (typeof applied === "string") return 0;
  return applied === env.event
    ? jsonBytes(env).length
    : encoder.encode(encodeEvent(applied)).length;
}

function linePass(
  lines: readonly Uint8Array[],
  decode: (b: Uint8Array) => Decoded,
  policy: Policy,
): number {
  let out = 0;
  for (const l of lines) out += output(decode(l).envelopes[0], policy);
  return out;
}

/** What decodes a body: every piece's envelopes handed to `each`, in order. */
type BodyDecoder = (body: Uint8Array, each: (envs: readonly Envelope[]) => void) => void;

interface PartsLike {
  next(): { envelopes: Envelope[] } | null;
}
type PartsClass = new (bytes: Uint8Array) => PartsLike;

function pieces(Parts: PartsClass): BodyDecoder {
  return (body, each) => {
    const parts = new Parts(body);
    for (let p; (p = parts.next()) !== null;) each(p.envelopes);
  };
}

const whole: BodyDecoder = (body, each) => {
  const { text, bytes } = decodeUtf8(body);
  each(decodeWholeBody(text, bytes).envelopes);
};

function bodyPass(bodies: readonly Uint8Array[], decode: BodyDecoder, policy: Policy): number {
  let out = 0;
  const each = (envs: readonly Envelope[]) => {
    for (const env of envs) out += output(env, policy);
  };
  for (const b of bodies) decode(b, each);
  return out;
}

const PREFIX = encoder.encode('{"kind":"Event","apiVersion":"audit.k8s.io/v1",');

/** The lines as `EventList` bodies of `size` items, as kube-apiserver's webhook sends them. */
function eventLists(lines: readonly Uint8Array[], size: number): Uint8Array[] {
  const head = encoder.encode(
    '{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[',
  );
  const bodies: Uint8Array[] = [];
  for (let i = 0; i < lines.length; i += size) {
    const items = lines.slice(i, i + size).map((l) => {
      const typed = PREFIX.every((b, k) => l[k] === b);
      if (!typed) return l;
      const item = l.slice(PREFIX.length - 1);
      item[0] = 0x7b; // `{` where the prefix's last comma was
      return item;
    });
    const length = head.length + items.reduce((n, it) => n + it.length + 1, 0) + 1;
    const body = new Uint8Array(length);
    body.set(head);
    let at = head.length;
    items.forEach((it, k) => {
      if (k > 0) body[at++] = 0x2c;
      body.set(it, at);
      at += it.length;
    });
    body[at++] = 0x5d;
    body[at++] = 0x7d;
    bodies.push(body.subarray(0, at));
  }
  return bodies;
}

interface Variant {
  readonly name: string;
  readonly run: () => number;
}

/**
 * Runs `variants` alternating, `runs` times after one warm-up pass each; CPU-µs per event
 * of each pass, by variant. Throws when two variants' outputs differ in size.
 */
function alternate(
  variants: readonly Variant[],
  events: number,
  runs: number,
  log: (msg: string) => void,
  what: string,
): Map<string, number[]> {
  const us = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  for (const v of variants) v.run();
  for (let r = 0; r < runs; r++) {
    let size = -1;
    const line: string[] = [];
    for (const v of variants) {
      const c0 = process.cpuUsage();
      const out = v.run();
      const c = process.cpuUsage(c0);
      if (size >= 0 && out !== size) {
        throw new Error(`${what}: output differs: ${v.name} ${out} vs ${size} bytes`);
      }
      size = out;
      const x = (c.user + c.system) / events;
      us.get(v.name)!.push(x);
      line.push(`${v.name} ${x.toFixed(2)}`);
    }
    log(`decode: ${what}: run ${r + 1}/${runs}: ${line.join(", ")} CPU-µs/event`);
  }
  return us;
}

function ratios(a: readonly number[], b: readonly number[]): number[] {
  return a.map((x, i) => x / b[i]);
}

/** Loads an older checkout's decoders, for before/after in one sitting. */
async function before(
  root: string,
): Promise<{ decodeLine: (b: Uint8Array) => Decoded; BodyParts: PartsClass }> {
  const base = pathToFileURL(root.endsWith("/") ? root : `${root}/`).href;
  const d = await import(`${base}pipeline/core/decode.ts`);
  const p = await import(`${base}pipeline/body_parts.ts`);
  return { decodeLine: d.decodeLine, BodyParts: p.BodyParts };
}

/**
 * The decode row: CPU-µs per event with and without the fast path, for lines and for webhook
 * bodies, medians of `runs` alternating passes over the first `limitMb` MB of the data.
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
  const bodies = eventLists(lines, BODY_ITEMS);
  const older = Deno.env.get("AUDITPIPE_BENCH_DECODE_BEFORE");
  const old = older ? await before(older) : undefined;

  const lineVariants: Variant[] = [
    { name: "whole", run: () => linePass(lines, decodeLineWhole, policy) },
    { name: "fast", run: () => linePass(lines, decodeLine, policy) },
  ];
  const bodyVariants: Variant[] = [
    { name: "whole", run: () => bodyPass(bodies, whole, policy) },
    { name: "fast", run: () => bodyPass(bodies, pieces(BodyParts), policy) },
  ];
  if (old) {
    lineVariants.push({ name: "before", run: () => linePass(lines, old.decodeLine, policy) });
    bodyVariants.push({
      name: "before",
      run: () => bodyPass(bodies, pieces(old.BodyParts), policy),
    });
  }
  const l = alternate(lineVariants, lines.length, opts.runs, opts.log, "lines");
  const b = alternate(bodyVariants, lines.length, opts.runs, opts.log, "webhook");
  const lineRatios = ratios(l.get("fast")!, l.get("whole")!);
  const bodyRatios = ratios(b.get("fast")!, b.get("whole")!);
  const med = (m: Map<string, number[]>, k: string) => num(median(m.get(k)!), 2);
  const notes = [
    `${num(lines.length)} events (${num(bytes.length / 1e6, 0)} MB), ${opts.runs} runs ` +
    `alternating, medians; per-run ratios ${lineRatios.map((r) => r.toFixed(2)).join(", ")}`,
    `webhook: EventList bodies of ${BODY_ITEMS} items: BodyParts ${med(b, "fast")}, ` +
    `JSON.parse of the whole body ${med(b, "whole")} CPU-µs/event, ratio ` +
    `${median(bodyRatios).toFixed(2)} (per run ${bodyRatios.map((r) => r.toFixed(2)).join(", ")})`,
  ];
  if (old) {
    const lr = ratios(l.get("fast")!, l.get("before")!);
    const br = ratios(b.get("fast")!, b.get("before")!);
    notes.push(
      `before/after (${older}): lines ${med(l, "before")} → ${med(l, "fast")} CPU-µs/event ` +
        `(ratio ${median(lr).toFixed(2)}; per run ${lr.map((r) => r.toFixed(2)).join(", ")}); ` +
        `webhook ${med(b, "before")} → ${med(b, "fast")} (ratio ${median(br).toFixed(2)}; ` +
        `per run ${br.map((r) => r.toFixed(2)).join(", ")})`,
    );
  }
  return {
    name: "decode → policy20 → bytes, in process (fast path vs JSON.parse of every line)",
    result: `${med(l, "fast")} CPU-µs/event`,
    baseline: `whole ${med(l, "whole")} CPU-µs/event`,
    ratio: median(lineRatios).toFixed(2),
    goal: "-",
    met: true,
    notes,
  };
}
