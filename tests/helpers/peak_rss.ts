/**
 * Memory tests of the CLI tools on inputs far bigger than the memory they may use: a large
 * generated input, and the real program run as a subprocess whose peak resident memory
 * (VmHWM in /proc/<pid>/status, polled while it runs) is measured.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

/** One mebibyte. */
export const MiB = 1024 * 1024;

/**
 * Writes `head`, then records `record(0)`, `record(1)`, ... until `size` bytes or more are
 * written, then `tail`; 4 MiB at a time so the test itself stays small. Returns the number
 * of records.
 *
 * @example
 * ```ts
 * const n = await writeGenerated(`${dir}/audit.log`, 200 * MiB, (i) => `{"n":${i}}\n`);
 * ```
 */
export async function writeGenerated(
  path: string,
  size: number,
  record: (n: number) => string,
  frame: { head?: string; tail?: string } = {},
): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  const writeAll = async (bytes: Uint8Array) => {
    for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
    return bytes.length;
  };
  let written = 0;
  let n = 0;
  try {
    if (frame.head !== undefined) written += await writeAll(enc.encode(frame.head));
    while (written < size) {
      const parts: string[] = [];
      let len = 0;
      while (len < 4 * MiB) {
        const text = record(n++);
        parts.push(text);
        len += text.length;
      }
      written += await writeAll(enc.encode(parts.join("")));
    }
    if (frame.tail !== undefined) await writeAll(enc.encode(frame.tail));
  } finally {
    file.close();
  }
  return n;
}

/**
 * The peak resident memory of process `pid` so far (VmHWM), in bytes; 0 once it has exited.
 *
 * @example
 * ```ts
 * const peak = await peakRssBytes(child.pid);
 * ```
 */
export async function peakRssBytes(pid: number): Promise<number> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const m = status.match(/^VmHWM:\s+(\d+) kB/m);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0; // exited between polls
  }
}

/** What {@linkcode runMeasured} returns. */
export interface MeasuredRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Peak resident memory in bytes; 0 when it exited before the first poll. */
  readonly peak: number;
}

/**
 * Runs `main.ts <args>` and measures its peak resident memory.
 *
 * @example
 * ```ts
 * const r = await runMeasured(["rbac", "--user", "alice", "-f", log]);
 * assert.ok(r.peak > 0 && r.peak < 150 * MiB);
 * ```
 */
export async function runMeasured(args: string[]): Promise<MeasuredRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let peak = 0;
  let running = true;
  const poll = (async () => {
    while (running) {
      peak = Math.max(peak, await peakRssBytes(child.pid));
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const out = await child.output();
  running = false;
  await poll;
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr), peak };
}
