/**
 * Summarizes a V8 `.cpuprofile` (as written by `deno run --cpu-prof`): self time per
 * function and per source file, heaviest first.
 *
 * Run alone: `deno run -A bench/profile.ts DIR_OR_FILE [TOP]`.
 *
 * @module
 */

/** The repository's root as a file URL, so that its files print as repository paths. */
const ROOT_URL = new URL("../", import.meta.url).href;

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

/** One line of the summary. */
export interface Hot {
  readonly name: string;
  readonly samples: number;
  readonly share: number;
}

/** Self samples by function and by file (shares of the busy samples), and the totals. */
export interface ProfileSummary {
  readonly total: number;
  /** Samples where the thread was busy (not `(idle)`): the base of every share. */
  readonly busy: number;
  readonly seconds: number;
  readonly functions: Hot[];
  readonly files: Hot[];
}

function shortUrl(url: string): string {
  if (url === "") return "(native)";
  if (url.startsWith(ROOT_URL)) return url.slice(ROOT_URL.length);
  const npm = url.indexOf("/npm/registry.npmjs.org/");
  if (npm >= 0) return `npm:${url.slice(npm + "/npm/registry.npmjs.org/".length)}`;
  return url.replace(/^.*\/(ext:|node:)/, "$1");
}

/**
 * Aggregates self time (hit counts) of `profile`.
 *
 * @example
 * ```ts
 * const s = summarizeProfile(JSON.parse(await Deno.readTextFile("x.cpuprofile")), 20);
 * ```
 */
export function summarizeProfile(profile: Profile, top = 25): ProfileSummary {
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    total += hits;
    const f = n.callFrame;
    // Idle time is waiting (for I/O, for the other core); shares are of the time spent working.
    if (f.functionName === "(idle)") {
      idle += hits;
      continue;
    }
    const file = shortUrl(f.url);
    const name = `${f.functionName || "(anonymous)"} ${file}${f.url ? `:${f.lineNumber + 1}` : ""}`;
    byFn.set(name, (byFn.get(name) ?? 0) + hits);
    byFile.set(file, (byFile.get(file) ?? 0) + hits);
  }
  const rank = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, samples]) => ({
      name,
      samples,
      share: samples / (total - idle),
    }));
  return {
    total,
    busy: total - idle,
    seconds: (profile.endTime - profile.startTime) / 1e6,
    functions: rank(byFn),
    files: rank(byFile),
  };
}

/** Formats a summary as text. */
export function formatSummary(s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)}%`;
  return [
    `${s.total} samples over ${s.seconds.toFixed(1)} s, ${
      ((s.busy / s.total) * 100).toFixed(0)
    }% busy; shares below are of the busy samples`,
    "self time by function:",
    ...s.functions.map((h) => `  ${pct(h.share)}  ${h.name}`),
    "self time by file:",
    ...s.files.map((h) => `  ${pct(h.share)}  ${h.name}`),
  ].join("\n");
}

/** The newest `.cpuprofile` in `dir`, or `dir` itself when it is a file. */
export async function newestProfile(dir: string): Promise<string> {
  if ((await Deno.stat(dir)).isFile) return dir;
  let best: { path: string; mtime: number } | null = null;
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".cpuprofile")) continue;
    const path = `${dir}/${e.name}`;
    const mtime = (await Deno.stat(path)).mtime?.getTime() ?? 0;
    if (!best || mtime > best.mtime) best = { path, mtime };
  }
  if (!best) throw new Error(`no .cpuprofile in ${dir}`);
  return best.path;
}

if (import.meta.main) {
  if (Deno.args.length === 0) {
    console.error("usage: deno run -A bench/profile.ts DIR_OR_FILE [TOP]");
    Deno.exit(2);
  }
  const path = await newestProfile(Deno.args[0]);
  const profile = JSON.parse(await Deno.readTextFile(path)) as Profile;
  console.log(path);
  console.log(formatSummary(summarizeProfile(profile, Number(Deno.args[1] ?? 25))));
}
