/**
 * What `integrity` costs a log sink: the same events written through a log sink with and
 * without a signed hash chain, in process (no daemon around it, so the sink's own cost is
 * all that is measured: the strictest comparison). Runs alternate; medians reported.
 *
 * Run alone with `deno run -A bench/integrity.ts [--size-mb 20] [--runs 5] [--batch 1,400]`,
 * or `--daemon` for the daemon with and without it (tail → policy20 → log, as in
 * `deno task bench`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { createLogSink } from "../backends/log.ts";
import { decodeLine } from "../pipeline/core/decode.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import { systemClock } from "../pipeline/core/clock.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import { type DataFile, ensureData } from "./generate.ts";
import { num, type Row } from "./lib.ts";
import { tailDaemonRun } from "./tail.ts";

/** One measured run. */
interface Run {
  readonly seconds: number;
  readonly bytes: number;
}

async function once(envelopes: Envelope[], batch: number, key: KeyObject | null): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-integrity-" });
  try {
    const path = `${dir}/audit.log`;
    const sink = await createLogSink(
      {
        path,
        format: "json",
        fsync: "never",
        rotate: { maxSize: 0, maxBackup: 0, maxAge: 0, compress: false },
        integrity: key ? { checkpointEvery: { events: 1000, interval: 10_000 } } : undefined,
      },
      {
        name: "audit",
        log: silentLogger,
        clock: systemClock,
        stats: new SinkStats("audit"),
        signal: new AbortController().signal,
      },
      { checkInterval: 0 },
      key ?? undefined,
    );
    const t0 = performance.now();
    for (let i = 0; i < envelopes.length; i += batch) {
      await sink.write(envelopes.slice(i, i + batch));
    }
    await sink.close();
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, bytes: (await Deno.stat(path)).size };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Measures and prints `plain: … ev/s; integrity: … ev/s; ratio …` per batch size.
 *
 * @example
 * ```ts
 * await benchIntegrity({ sizeMb: 20, runs: 5, batches: [1, 400] });
 * ```
 */
export async function benchIntegrity(
  opts: { sizeMb: number; runs: number; batches: number[] },
): Promise<{ batch: number; plain: number; signed: number; ratio: number }[]> {
  const data = await ensureData({ seed: 1, sizeMb: opts.sizeMb });
  const text = await Deno.readTextFile(data.path);
  const enc = new TextEncoder();
  const envelopes = text.split("\n").filter((l) => l !== "")
    .flatMap((l) => decodeLine(enc.encode(l)).envelopes);
  const { privateKey } = generateKeyPairSync("ed25519");
  const out = [];
  for (const batch of opts.batches) {
    await once(envelopes.slice(0, 2000), batch, privateKey); // warm-up
    await once(envelopes.slice(0, 2000), batch, null);
    const plain: number[] = [];
    const signed: number[] = [];
    let bytes = 0;
    for (let r = 0; r < opts.runs; r++) {
      const a = await once(envelopes, batch, null);
      const b = await once(envelopes, batch, privateKey);
      plain.push(envelopes.length / a.seconds);
      signed.push(envelopes.length / b.seconds);
      bytes = a.bytes;
    }
    const p = median(plain), s = median(signed);
    const mb = (rate: number) => (rate * bytes / envelopes.length / 1e6).toFixed(1);
    console.log(
      `batch ${batch}: plain ${Math.round(p).toLocaleString("en")} ev/s (${mb(p)} MB/s), ` +
        `integrity ${Math.round(s).toLocaleString("en")} ev/s (${mb(s)} MB/s), ratio ${
          (s / p).toFixed(3)
        } (${envelopes.length} events, ${opts.runs} runs, per-run plain ${
          plain.map((x) => Math.round(x)).join(",")
        } signed ${signed.map((x) => Math.round(x)).join(",")})`,
    );
    out.push({ batch, plain: p, signed: s, ratio: s / p });
  }
  return out;
}

/**
 * The daemon (tail → policy20 → log, as `deno task bench` runs it) with and without
 * `integrity` on its log sink, alternating on the same data in one run; the row has the
 * medians and their ratio against the goal (integrity costs ≤ 10% of throughput).
 *
 * @example
 * ```ts
 * const row = await integrityRow(await ensureData({ seed: 1, sizeMb: 200 }), { runs: 3, log });
 * ```
 */
export async function integrityRow(
  data: DataFile,
  opts: { runs: number; log: (msg: string) => void },
): Promise<Row> {
  const keyDir = await Deno.makeTempDir({ prefix: "auditpipe-bench-key-" });
  try {
    const { privateKey } = generateKeyPairSync("ed25519");
    const signingKey = `${keyDir}/signing.key`;
    await Deno.writeTextFile(
      signingKey,
      privateKey.export({ type: "pkcs8", format: "pem" }) as string,
      { mode: 0o600 },
    );
    const log = opts.log;
    const plain: number[] = [];
    const signed: number[] = [];
    const incomplete: string[] = [];
    for (let r = 0; r < opts.runs; r++) {
      // Alternating, so that load from other processes falls on both alike.
      const a = await tailDaemonRun(data, { log });
      const b = await tailDaemonRun(data, { log, signingKey });
      if (!a.complete || !b.complete) incomplete.push(`run ${r + 1}`);
      plain.push(a.seconds);
      signed.push(b.seconds);
      log(
        `integrity: run ${r + 1}: plain ${a.seconds.toFixed(2)} s, integrity ${
          b.seconds.toFixed(2)
        } s (ratio ${(a.seconds / b.seconds).toFixed(3)})`,
      );
    }
    const p = median(plain), s = median(signed);
    // Each pair ran back to back: the median of their ratios follows the load on a shared
    // machine better than the ratio of the medians (which the notes show as well).
    const pairs = plain.map((x, i) => x / signed[i]);
    const ratio = median(pairs);
    const rate = (sec: number) =>
      `${num(data.events / sec)} ev/s, ${num(data.bytes / 1e6 / sec, 1)} MB/s (${
        sec.toFixed(2)
      } s)`;
    const notes = [
      `checkpointEvery: 1000 events / 10s (defaults), fsync never, Ed25519 signatures`,
      `${opts.runs} runs each, alternating, medians shown; ratio = median of per-run ratios ${
        pairs.map((x) => x.toFixed(3)).join(", ")
      } (ratio of medians ${(p / s).toFixed(3)}); plain ${
        plain.map((x) => x.toFixed(2)).join(",")
      } s, integrity ${signed.map((x) => x.toFixed(2)).join(",")} s`,
    ];
    if (incomplete.length > 0) notes.push(`incomplete: ${incomplete.join(", ")}`);
    return {
      name: "tail → policy20 → log with integrity (bench/integrity.ts)",
      result: rate(s),
      baseline: `without integrity: ${rate(p)}`,
      ratio: ratio.toFixed(3),
      goal: "≥ 0.90 of without",
      met: ratio >= 0.9 && incomplete.length === 0,
      notes,
    };
  } finally {
    await Deno.remove(keyDir, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "size-mb": { type: "string", default: "20" },
      runs: { type: "string", default: "5" },
      batch: { type: "string", default: "1,400" },
      daemon: { type: "boolean", default: false },
    },
  });
  if (values.daemon) {
    const data = await ensureData({ seed: 1, sizeMb: Number(values["size-mb"]) });
    const log = (msg: string) => console.error(`[bench] ${msg}`);
    const row = await integrityRow(data, { runs: Number(values.runs), log });
    console.log(`${row.name}: ${row.result}; ${row.baseline}; ratio ${row.ratio}`);
    for (const n of row.notes) console.log(`- ${n}`);
    Deno.exit(0);
  }
  await benchIntegrity({
    sizeMb: Number(values["size-mb"]),
    runs: Number(values.runs),
    batches: values.batch.split(",").map(Number),
  });
}
