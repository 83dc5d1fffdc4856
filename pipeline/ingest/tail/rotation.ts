/**
 * Finding files across rotations, the way kube-apiserver's lumberjack rotates: it renames
 * `audit.log` to `audit-<UTC time>.log` and creates a new `audit.log`. Which file follows a
 * finished one, and where a checkpointed file went while auditpipe was down.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { type Checkpoint, fingerprintMatches } from "../checkpoint.ts";
import { type OpenFile, type OpenFiles, statOrNull } from "./open_file.ts";

/** lumberjack's backup time stamp, `2006-01-02T15-04-05.000`. */
const BACKUP_STAMP = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}$/;

/**
 * A file's path and identity.
 *
 * @example
 * ```ts
 * const b: FileId = { path: "/var/log/audit-2024-03-01T12-00-00.000.log", dev: 2049, ino: 131 };
 * ```
 */
export interface FileId {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

/**
 * The lumberjack backups next to `path`, oldest first, with their identities.
 *
 * @example
 * ```ts
 * const [oldest] = await backups("/var/log/audit.log");
 * ```
 */
export async function backups(path: string): Promise<FileId[]> {
  const dir = dirname(path);
  const base = basename(path);
  const dot = base.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, ""];
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.startsWith(stem + "-") || !e.name.endsWith(ext)) continue;
      const stamp = e.name.slice(stem.length + 1, e.name.length - ext.length);
      if (BACKUP_STAMP.test(stamp)) names.push(e.name);
    }
  } catch {
    return [];
  }
  // The stamp is fixed-width UTC, so name order is time order.
  names.sort();
  const out: FileId[] = [];
  for (const name of names) {
    const st = await statOrNull(`${dir}/${name}`);
    if (st !== null) out.push({ path: `${dir}/${name}`, dev: st.dev, ino: st.ino ?? 0 });
  }
  return out;
}

/**
 * Opens the file that follows `done` in kube-apiserver's rotation of `path`: the oldest
 * lumberjack backup (`<name>-<UTC time><ext>`) after `done`'s own backup name, else the path
 * itself. A file that is not among the backups (deleted, truncated away) is followed by the
 * path. Null when there is no such file now.
 *
 * @example
 * ```ts
 * const next = await openSuccessor(files, "/var/log/audit.log", cur.h);
 * ```
 */
export async function openSuccessor(
  files: OpenFiles,
  path: string,
  done: OpenFile,
): Promise<OpenFile | null> {
  const after = async () => {
    const all = await backups(path);
    const i = all.findIndex((b) => done.is(b));
    return i < 0 ? null : all[i + 1] ?? null;
  };
  // A backup may be compressed or pruned, or the path rotated again, between looking and
  // opening: check what was opened and look again.
  for (let attempt = 0; attempt < 5; attempt++) {
    const next = await after();
    let h: OpenFile;
    try {
      h = await files.open(next?.path ?? path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        if (next === null) return null;
        continue;
      }
      throw err;
    }
    if (next !== null) {
      if (h.is(next)) return h;
    } else {
      // The path was the next file when we looked; if it has been rotated since, the
      // backups now show a successor, and it is not what we opened.
      const now = await after();
      if (now === null || h.is(now)) return h;
    }
    files.release(h);
  }
  return null;
}

/**
 * The checkpointed file under another name in the directory of `path` (a rotated backup),
 * opened; null when it is not there.
 *
 * @example
 * ```ts
 * const old = await findRotated(files, "/var/log/audit.log", cp);
 * ```
 */
export async function findRotated(
  files: OpenFiles,
  path: string,
  cp: Checkpoint,
): Promise<OpenFile | null> {
  const dir = dirname(path);
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return null;
  }
  for (const e of entries) {
    if (!e.isFile) continue;
    const candidate = `${dir}/${e.name}`;
    const st = await statOrNull(candidate);
    if (st === null || st.dev !== cp.dev || (st.ino ?? 0) !== cp.ino) continue;
    let h: OpenFile;
    try {
      h = await files.open(candidate);
    } catch {
      continue;
    }
    if (h.is(cp) && await fingerprintMatches(h.head, cp)) return h;
    files.release(h);
  }
  return null;
}
