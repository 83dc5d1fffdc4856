/**
 * Start-up: the wall time of `deno run -A main.ts --version` and of `policy --help` (a tool
 * that must not load the daemon), and the time from spawning the daemon to its first event:
 * stdin source → stdout sink, one event on stdin, the clock stopped when its line arrives on
 * stdout; with the daemon's CPU time until then (from `/proc/<pid>/stat`, less sensitive to
 * other load than wall time). Medians of `runs`, each a fresh process (module code cached by
 * Deno, as in production after the first start).
 *
 * With `AUDITPIPE_BENCH_ENTRY` set (another checkout's `main.ts`), both are measured in the
 * same run, alternating (this, other, other, this, ...), and the row compares them.
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

/** Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** Milliseconds from spawn to exit of `deno run -A main ...args`. */
async function timeCommand(main: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const ms = performance.now() - t0;
  if (!out.success) throw new Error(`${main} ${args.join(" ")} exited ${out.code}`);
  return ms;
}

/** CPU milliseconds (user + system) `pid` has used, or NaN where `/proc` is missing. */
async function cpuMs(pid: number): Promise<number> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces), from field 3 on.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 1000 / TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/**
 * Milliseconds from spawning the daemon to the first event line on its stdout, and the CPU
 * milliseconds it used until then.
 */
async function timeFirstEvent(main: string): Promise<{ wall: number; cpu: number }> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-startup-" });
  try {
    await Deno.writeTextFile(
      `${dir}/pipeline.yaml`,
      "sources:\n  - type: stdin\n    name: in\nsinks:\n  - type: stdout\n    name: out\n",
    );
    const t0 = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "--config", `${dir}/pipeline.yaml`],
      cwd: dir,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      env: { NO_COLOR: "1" },
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(EVENT));
    const reader = child.stdout.getReader();
    let wall = NaN;
    let cpu = NaN;
    let seen = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
      if (seen.includes("\n")) {
        wall = performance.now() - t0;
        cpu = await cpuMs(child.pid);
        break;
      }
    }
    await w.close().catch(() => {});
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    await child.status;
    if (Number.isNaN(wall)) throw new Error(`${main}: the daemon wrote no event`);
    return { wall, cpu };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The numbers of one `main.ts` over the runs. */
interface Series {
  readonly main: string;
  readonly version: number[];
  readonly policy: number[];
  readonly first: number[];
  readonly firstCpu: number[];
}

async function measureOnce(s: Series): Promise<void> {
  s.version.push(await timeCommand(s.main, ["--version"]));
  s.policy.push(await timeCommand(s.main, ["policy", "--help"]));
  const { wall, cpu } = await timeFirstEvent(s.main);
  s.first.push(wall);
  s.firstCpu.push(cpu);
}

const medians = (s: Series) =>
  `${num(median(s.version))} / ${num(median(s.policy))} / ${num(median(s.first))} ms`;
const spread = (xs: number[]) => `${num(Math.min(...xs))}–${num(Math.max(...xs))}`;
const describe = (s: Series) =>
  `--version ${spread(s.version)} ms, policy --help ${spread(s.policy)} ms, first event ${
    spread(s.first)
  } ms (CPU ${num(median(s.firstCpu))} ms, ${spread(s.firstCpu)})`;

/**
 * The start-up row: medians of `runs` (`--version`, `policy --help`, time to first event),
 * compared with `AUDITPIPE_BENCH_ENTRY`'s when it is set.
 *
 * @example
 * ```ts
 * const row = await benchStartup({ log: console.error, runs: 5 });
 * ```
 */
export async function benchStartup(
  opts: { log: (msg: string) => void; runs: number },
): Promise<Row> {
  const other = Deno.env.get("AUDITPIPE_BENCH_ENTRY") || undefined;
  const series = (main: string): Series => ({
    main,
    version: [],
    policy: [],
    first: [],
    firstCpu: [],
  });
  const self = series(MAIN);
  const before = other === undefined ? undefined : series(other);
  const all = before ? [self, before] : [self];
  // Fills Deno's module caches (code cache included) for every module each one loads.
  for (const s of all) await timeFirstEvent(s.main);
  for (const s of all) await timeCommand(s.main, ["policy", "--help"]);
  for (let i = 0; i < opts.runs; i++) {
    // Alternating which goes first, so neither always follows the other.
    for (const s of i % 2 === 0 ? all : [...all].reverse()) {
      await measureOnce(s);
      const n = s.version.length - 1;
      opts.log(
        `startup: run ${i + 1}/${opts.runs}${s === before ? " (AUDITPIPE_BENCH_ENTRY)" : ""}: ` +
          `--version ${s.version[n].toFixed(0)} ms, policy --help ${s.policy[n].toFixed(0)} ms, ` +
          `first event ${s.first[n].toFixed(0)} ms (CPU ${s.firstCpu[n].toFixed(0)} ms)`,
      );
    }
  }
  return {
    name: "start-up: --version / policy --help / first event (stdin → stdout)",
    result: medians(self),
    baseline: before ? `${medians(before)} (AUDITPIPE_BENCH_ENTRY)` : "-",
    ratio: before
      ? `first event ${(median(self.first) / median(before.first)).toFixed(2)}×, CPU ${
        (median(self.firstCpu) / median(before.firstCpu)).toFixed(2)
      }×`
      : "-",
    goal: "-",
    met: true,
    notes: [
      `${opts.runs} runs, medians; ${describe(self)}`,
      ...(before ? [`AUDITPIPE_BENCH_ENTRY ${other}: ${describe(before)}`] : []),
    ],
  };
}
