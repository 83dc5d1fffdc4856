/**
 * Whether SIGUSR1 can reach this process. Since Deno 2.9.2 a SIGUSR1 starts the V8 inspector
 * on 127.0.0.1:9229, unauthenticated, and neither a flag, an environment variable nor a
 * signal listener turns that off. Only a SIGUSR1 blocked in every thread's signal mask stays
 * pending and never reaches it; the mask survives exec, so launchers start Deno through
 * `env --block-signal=USR1`. Ignoring the signal (`env --ignore-signal=USR1`) does not help:
 * Deno installs its own handler over SIG_IGN.
 *
 * @module
 */

/** SIGUSR1 is 10 on Linux; /proc masks put signal n at bit n-1. */
const SIGUSR1_BIT = 1n << 9n;

/** The fix the warning names, as a launcher would write it. */
export const BLOCK_SIGUSR1 = "env --block-signal=USR1";

/**
 * Whether the `SigBlk` mask in the text of a `/proc/<pid>/task/<tid>/status` file blocks
 * SIGUSR1; `undefined` when the text has no such line.
 *
 * @example
 * ```ts
 * sigusr1Blocked("SigBlk:\t0000000000000200\n"); // true
 * sigusr1Blocked("SigBlk:\t0000000000000000\n"); // false
 * ```
 */
export function sigusr1Blocked(status: string): boolean | undefined {
  const m = /^SigBlk:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  if (!m) return undefined;
  return (BigInt(`0x${m[1]}`) & SIGUSR1_BIT) !== 0n;
}

/**
 * `blocked`: every thread blocks SIGUSR1, so no signal can open the debugger.
 * `deliverable`: some thread would take it, and a SIGUSR1 would open the debugger.
 * `unknown`: not Linux, or the masks cannot be read (Deno grants `/proc/self` only under
 * `--allow-all`, so under least-privilege flags the launcher is the only guard).
 */
export type DebuggerSignalState = "blocked" | "deliverable" | "unknown";

/**
 * Reads the signal mask of every thread of this process.
 *
 * @example
 * ```ts
 * if (debuggerSignalState() === "deliverable") console.error("start through env --block-signal=USR1");
 * ```
 */
export function debuggerSignalState(): DebuggerSignalState {
  if (Deno.build.os !== "linux") return "unknown";
  try {
    let threads = 0;
    for (const t of Deno.readDirSync("/proc/self/task")) {
      const blocked = sigusr1Blocked(Deno.readTextFileSync(`/proc/self/task/${t.name}/status`));
      if (blocked === undefined) return "unknown";
      if (!blocked) return "deliverable";
      threads++;
    }
    return threads > 0 ? "blocked" : "unknown";
  } catch {
    // NotCapable without --allow-all, or a thread that ended while being read.
    return "unknown";
  }
}
