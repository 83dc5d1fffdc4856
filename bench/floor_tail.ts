/**
 * The floor of the tail benchmark: the least a Deno program must do to move an audit log
 * through JSON. It reads the file in 256 KiB reads (as the tail source does), splits lines,
 * `JSON.parse`s each one and writes the lines back out, one write per read. No policy, no
 * streams, no acks: whatever auditpipe does beyond this is its overhead.
 *
 * Usage: `deno run -A bench/floor_tail.ts IN OUT [IN2...]`; prints
 * `{"events","bytes","seconds","cpu","cpuStart","cpuAfter","eventsIn"}`,
 * timed from opening the input to closing the output (the process start is not counted, as
 * it is not for the daemon); `cpu` is the process's CPU seconds (user + system) at the end,
 * start-up included, `cpuStart` before opening the input; with more inputs, they are read one
 * after the other into the same output, and `cpuAfter[i]` is the CPU after input `i` (the
 * CPU benchmark times the second input after a warm-up on the first, as it does the daemon).
 *
 * @module
 */

import { copyLines, READ_SIZE } from "./line_loop.ts";

const [inPath, outPath, ...more] = Deno.args;
const started = performance.now();
const cpuStart = cpuSeconds();
const output = await Deno.open(outPath, { write: true, create: true, truncate: true });
const decoder = new TextDecoder();
const buf = new Uint8Array(READ_SIZE);
let events = 0;
let bytes = 0;
let parsed = 0;
/** CPU seconds after each input file. */
const cpuAfter: number[] = [];
/** Events in each input file. */
const eventsIn: number[] = [];
for (const path of [inPath, ...more]) {
  const before = events;
  bytes += await copyLines(path, output, buf, (line) => {
    const doc = JSON.parse(decoder.decode(line));
    // Touch the result so the parse cannot be optimized away.
    if (doc.kind === "Event") parsed++;
    events++;
  });
  cpuAfter.push(cpuSeconds());
  eventsIn.push(events - before);
}
output.close();
const seconds = (performance.now() - started) / 1000;
const cpu = cpuSeconds();
console.log(JSON.stringify({ events, parsed, bytes, seconds, cpu, cpuStart, cpuAfter, eventsIn }));

/** This process's CPU seconds (user + system, every thread) so far. */
function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}
