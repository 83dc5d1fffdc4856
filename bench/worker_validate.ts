/**
 * Candidate (d) of issue 18, measured on its own: JSON validation on a worker thread. The
 * data file is read in 64 KiB chunks (as the tail source reads); each chunk's lines are
 * validated (`isJson` of `pipeline/core/json_validate.ts`) either on the main thread or on
 * a worker, which gets the chunk transferred and answers with one verdict byte per line.
 * Reports the process's CPU (all threads, `process.cpuUsage()`) and wall time per event for
 * both, alternating, medians of `--runs`. A worker moves CPU off the main thread; it cannot
 * lower the process's CPU, and the messages add to it.
 *
 * ```sh
 * deno run -A bench/worker_validate.ts [--size-mb 200] [--runs 5]
 * ```
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { isJson } from "../pipeline/core/json_validate.ts";
import { ensureData } from "./generate.ts";
import { median } from "./lib.ts";

const CHUNK = 64 * 1024;

/** Validates every complete line of `chunk`; one byte per line, 1 when valid. */
function validateLines(chunk: Uint8Array): Uint8Array<ArrayBuffer> {
  const verdicts: number[] = [];
  for (let s = 0, nl; (nl = chunk.indexOf(10, s)) >= 0; s = nl + 1) {
    verdicts.push(isJson(chunk.subarray(s, nl)) ? 1 : 0);
  }
  return new Uint8Array(verdicts);
}

// Worker side (import.meta.main is true in a worker's entry module too: the name tells):
// validate what comes, answer with the verdicts.
const WORKER_NAME = "auditpipe-bench-validate";
const inWorker = (globalThis as { name?: string }).name === WORKER_NAME;
if (inWorker) {
  const self = globalThis as unknown as {
    onmessage: (e: MessageEvent<Uint8Array<ArrayBuffer>>) => void;
    postMessage: (m: Uint8Array, t: Transferable[]) => void;
  };
  self.onmessage = (e) => {
    const v = validateLines(e.data);
    self.postMessage(v, [v.buffer]);
  };
}

/** Chunks of whole lines of `bytes`, each about `CHUNK` bytes, as a tail read gives. */
function chunks(bytes: Uint8Array): Uint8Array<ArrayBuffer>[] {
  const out: Uint8Array<ArrayBuffer>[] = [];
  for (let s = 0; s < bytes.length;) {
    let e = bytes.indexOf(10, Math.min(bytes.length - 1, s + CHUNK));
    e = e < 0 ? bytes.length : e + 1;
    out.push(bytes.slice(s, e));
    s = e;
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "size-mb": { type: "string", default: "200" },
      runs: { type: "string", default: "5" },
    },
  });
  const data = await ensureData({ seed: 1, sizeMb: Number(values["size-mb"]) });
  const bytes = await Deno.readFile(data.path);
  const runs = Number(values.runs);
  const worker = new Worker(import.meta.url, { type: "module", name: WORKER_NAME });
  const inThread: { cpu: number; wall: number }[] = [];
  const onWorker: { cpu: number; wall: number }[] = [];
  for (let r = 0; r < runs; r++) {
    // Fresh copies each run: transferring detaches them.
    let parts = chunks(bytes);
    let c0 = process.cpuUsage();
    let t0 = performance.now();
    let valid = 0;
    for (const p of parts) for (const v of validateLines(p)) valid += v;
    let c = process.cpuUsage(c0);
    inThread.push({
      cpu: (c.user + c.system) / data.events,
      wall: (performance.now() - t0) * 1e3 / data.events,
    });
    if (valid !== data.events) throw new Error(`in thread: ${valid} of ${data.events} valid`);

    parts = chunks(bytes);
    c0 = process.cpuUsage();
    t0 = performance.now();
    valid = 0;
    // Up to 4 chunks in flight, as a source reading ahead would keep them.
    let next = 0;
    await new Promise<void>((resolve) => {
      let pending = 0;
      const send = () => {
        while (pending < 4 && next < parts.length) {
          const p = parts[next++];
          pending++;
          worker.postMessage(p, [p.buffer]);
        }
        if (pending === 0) resolve();
      };
      worker.onmessage = (e: MessageEvent<Uint8Array>) => {
        for (const v of e.data) valid += v;
        pending--;
        send();
      };
      send();
    });
    c = process.cpuUsage(c0);
    onWorker.push({
      cpu: (c.user + c.system) / data.events,
      wall: (performance.now() - t0) * 1e3 / data.events,
    });
    if (valid !== data.events) throw new Error(`worker: ${valid} of ${data.events} valid`);
    console.error(
      `run ${r + 1}/${runs}: in thread ${inThread[r].cpu.toFixed(2)} CPU-µs/event ` +
        `(${inThread[r].wall.toFixed(2)} µs wall), worker ${
          onWorker[r].cpu.toFixed(2)
        } CPU-µs/event ` +
        `(${onWorker[r].wall.toFixed(2)} µs wall)`,
    );
  }
  worker.terminate();
  const m = (xs: { cpu: number; wall: number }[], k: "cpu" | "wall") => median(xs.map((x) => x[k]));
  console.log(JSON.stringify({
    events: data.events,
    inThread: { cpuUs: m(inThread, "cpu"), wallUs: m(inThread, "wall") },
    worker: { cpuUs: m(onWorker, "cpu"), wallUs: m(onWorker, "wall") },
    cpuRatio: m(onWorker, "cpu") / m(inThread, "cpu"),
  }));
}

if (import.meta.main && !inWorker) await main();
