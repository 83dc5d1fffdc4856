/**
 * Start-up: the wall time of `deno run -A main.ts --version` and of `policy --help` (a tool
 * that must not load the daemon), and the time from spawning the daemon to its first event:
 * stdin source → stdout sink, one event on stdin, the clock stopped when its line arrives on
 * stdout. Medians of `runs`, each a fresh process (module code cached by Deno, as in
 * production after the first start).
 *
 * @module
 */
import { median, num, type Row } from "./lib.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

const EVENT = '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",' +
  '"auditID":"00000000-0000-0000-0000-000000000001","stage":"ResponseComplete",' +
  '"requestURI":"/api/v1/namespaces","verb":"list","user":{"username":"admin"},' +
  '"requestReceivedTimestamp":"2024-05-14T09:00:00.000000Z",' +
  '"stageTimestamp":"2024-05-14T09:00:00.001000Z"}\n';

/** Milliseconds from spawn to exit of `deno run -A main.ts ...args`. */
async function timeCommand(args: string[]): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const ms = performance.now() - t0;
  if (!out.success) throw new Error(`main.ts ${args.join(" ")} exited ${out.code}`);
  return ms;
}

/** Milliseconds from spawning the daemon to the first event line on its stdout. */
async function timeFirstEvent(): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-startup-" });
  try {
    await Deno.writeTextFile(
      `${dir}/pipeline.yaml`,
      "sources:\n  - type: stdin\n    name: in\nsinks:\n  - type: stdout\n    name: out\n",
    );
    const t0 = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "--config", `${dir}/pipeline.yaml`],
      cwd: dir,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      env: { NO_COLOR: "1" },
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(EVENT));
    const reader = child.stdout.getReader();
    let ms = NaN;
    let seen = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
      if (seen.includes("\n")) {
        ms = performance.now() - t0;
        break;
      }
    }
    await w.close().catch(() => {});
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    await child.status;
    if (Number.isNaN(ms)) throw new Error("the daemon wrote no event");
    return ms;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * The start-up row: medians of `runs` (`--version`, `policy --help`, time to first event).
 *
 * @example
 * ```ts
 * const row = await benchStartup({ log: console.error, runs: 5 });
 * ```
 */
export async function benchStartup(
  opts: { log: (msg: string) => void; runs: number },
): Promise<Row> {
  const version: number[] = [];
  const policy: number[] = [];
  const first: number[] = [];
  await timeCommand(["--version"]); // fills Deno's module cache
  for (let i = 0; i < opts.runs; i++) {
    version.push(await timeCommand(["--version"]));
    policy.push(await timeCommand(["policy", "--help"]));
    first.push(await timeFirstEvent());
    opts.log(
      `startup: run ${i + 1}/${opts.runs}: --version ${version[i].toFixed(0)} ms, policy --help ${
        policy[i].toFixed(0)
      } ms, first event ${first[i].toFixed(0)} ms`,
    );
  }
  const spread = (xs: number[]) => `${num(Math.min(...xs))}–${num(Math.max(...xs))}`;
  return {
    name: "start-up: --version / policy --help / first event (stdin → stdout)",
    result: `${num(median(version))} / ${num(median(policy))} / ${num(median(first))} ms`,
    baseline: "-",
    ratio: "-",
    goal: "-",
    met: true,
    notes: [
      `${opts.runs} runs, medians; --version ${spread(version)} ms, policy --help ${
        spread(policy)
      } ms, first event ${spread(first)} ms`,
    ],
  };
}
