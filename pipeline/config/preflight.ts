/**
 * What `--check` can tell about starting without starting anything: ports out of range or
 * taken twice by the config itself, and folders the daemon would write to that are files or
 * not writable. Only looks (stat, permission queries): binds no port, creates no file.
 *
 * @module
 */
import { dirname } from "node:path";
import type { LoadedConfig } from "./load.ts";
import { type ConfigProblem, formatPath, type KeyPath } from "./errors.ts";
import { parseListen } from "../core/listen.ts";

/** The user and group the daemon runs as, for reading permission bits. */
export interface ProcessIds {
  readonly uid: number;
  readonly gid: number;
}

/** What {@linkcode preflight} may be told instead of asking the system. */
export interface PreflightOptions {
  /**
   * The process's ids; by default `Deno.uid()` and `Deno.gid()`. When they cannot be read
   * (no `--allow-sys`, Windows) permission bits are not judged: Deno's write permission is.
   */
  readonly ids?: ProcessIds | null;
}

/**
 * Problems the config would meet at startup that can be seen without side effects, each at
 * the key it is about.
 *
 * @example
 * ```ts
 * const problems = await preflight(loaded);
 * // [{ file: "pipeline.yaml", line: 4, col: 13, path: "sources[0].listen",
 * //    message: "port 99999 is out of range: must be 0-65535" }]
 * ```
 */
export async function preflight(
  loaded: LoadedConfig,
  opts: PreflightOptions = {},
): Promise<ConfigProblem[]> {
  const { config, file } = loaded;
  const problems: ConfigProblem[] = [];
  const problem = (path: KeyPath, message: string) =>
    problems.push({ file, ...loaded.position(path), path: formatPath(path), message });
  const ids = opts.ids === undefined ? processIds() : opts.ids;

  // Ports: in range, and not taken twice by this config (port 0 is any free port).
  const listens: { path: KeyPath; listen: string }[] = [];
  config.sources.forEach((s, i) => {
    if (s.type === "webhook") listens.push({ path: ["sources", i, "listen"], listen: s.listen });
  });
  if (config.server.listen) {
    listens.push({ path: ["server", "listen"], listen: config.server.listen });
  }
  const taken = new Map<number, KeyPath>();
  for (const { path, listen } of listens) {
    const { port } = parseListen(listen);
    if (port > 65535) {
      problem(path, `port ${port} is out of range: must be 0-65535`);
      continue;
    }
    if (port === 0) continue;
    const first = taken.get(port);
    if (first) problem(path, `port ${port} is already used by ${formatPath(first)}`);
    else taken.set(port, path);
  }

  // Files the daemon creates or appends to.
  // Files the daemon creates or appends to; dead letters are appended to a folder that must
  // exist, the others make their folders.
  const outputs: { path: KeyPath; file: string; makesFolders: boolean; folder?: boolean }[] = [];
  config.sources.forEach((s, i) => {
    if (s.type === "webhook" && s.deadLetterFile) {
      const path = ["sources", i, "deadLetterFile"];
      outputs.push({ path, file: s.deadLetterFile, makesFolders: false });
    }
    if (s.type === "tail" && s.checkpointFile) {
      const path = ["sources", i, "checkpointFile"];
      outputs.push({ path, file: s.checkpointFile, makesFolders: true });
    }
  });
  config.sinks.forEach((s, i) => {
    if (s.type === "log") {
      outputs.push({ path: ["sinks", i, "path"], file: s.path, makesFolders: true });
    }
    if (s.buffer.type === "disk" && s.buffer.path !== undefined) {
      // The buffer's own folder: made if missing, then segments are created in it.
      const path = ["sinks", i, "buffer", "path"];
      outputs.push({ path, file: s.buffer.path, makesFolders: true, folder: true });
    }
  });
  for (const { path, file, makesFolders, folder } of outputs) {
    const why = await unwritable(file, makesFolders, ids, folder);
    if (why) problem(path, why);
  }
  return problems;
}

function processIds(): ProcessIds | null {
  try {
    const uid = Deno.uid();
    const gid = Deno.gid();
    return uid === null || gid === null ? null : { uid, gid };
  } catch {
    return null; // no --allow-sys: the bits are not judged
  }
}

/** `stat`, or null when `path` does not exist; undefined when it cannot be looked at. */
async function statOf(path: string): Promise<Deno.FileInfo | null | undefined> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    // A file in the way of the path (`a-file/x`) reads as "not a directory".
    if (err instanceof Deno.errors.NotADirectory) return null;
    return undefined;
  }
}

/**
 * Why `file` could not be created or appended to, or null when nothing says so. Deno checks
 * its permission on the path written; the system checks the first ancestor that exists,
 * which must be a folder the daemon may write in.
 */
async function unwritable(
  file: string,
  makesFolders: boolean,
  ids: ProcessIds | null,
  folder = false,
): Promise<string | null> {
  if (Deno.permissions.querySync({ name: "write", path: file }).state !== "granted") {
    return `cannot write ${file}: Deno's --allow-write does not include it`;
  }
  const st = await statOf(file);
  if (st === undefined) return null;
  if (st && folder) {
    if (!st.isDirectory) return `${file} is a file, not a folder`;
    const why = denied(st, 0o3, ids);
    return why && `${file} is not writable: ${why}`;
  }
  if (st) {
    if (st.isDirectory) return `${file} is a directory, not a file`;
    const why = denied(st, 0o2, ids);
    return why && `${file} is not writable: ${why}`;
  }
  for (let dir = dirname(file);; dir = dirname(dir)) {
    const d = await statOf(dir);
    if (d === undefined) return null;
    if (d === null) {
      if (!makesFolders) return `cannot create ${file}: folder ${dir} does not exist`;
      if (dirname(dir) === dir) return null;
      continue;
    }
    if (!d.isDirectory) return `cannot create ${file}: ${dir} is a file, not a folder`;
    // Creating an entry needs write and search permission on the folder.
    const why = denied(d, 0o3, ids);
    return why && `cannot create ${file}: ${dir} is not writable: ${why}`;
  }
}

/**
 * Why the permission bits `bits` (of rwx: 2 write, 1 search) deny `ids`, or null. Says so
 * only when sure: the groups the process holds besides its own are not known, so group bits
 * that allow never deny.
 */
function denied(st: Deno.FileInfo, bits: number, ids: ProcessIds | null): string | null {
  if (ids === null || st.mode === null || st.uid === null || ids.uid === 0) return null;
  const mode = st.mode;
  const has = (shift: number) => ((mode >> shift) & bits) === bits;
  const octal = (mode & 0o777).toString(8).padStart(3, "0");
  const owner = `mode ${octal}, owner ${st.uid}:${st.gid}, running as ${ids.uid}:${ids.gid}`;
  if (st.uid === ids.uid) return has(6) ? null : owner;
  return has(0) || has(3) ? null : owner;
}
