/**
 * Replacing a small state file (a tail checkpoint, a disk buffer's cursor) so that a crash at
 * any moment leaves the old or the new one, never a torn file: write a temporary file next
 * to it, fsync, rename over, fsync the folder.
 *
 * @module
 */
import { dirname } from "node:path";

/**
 * Options of {@linkcode writeFileAtomic}.
 *
 * @example
 * ```ts
 * const opts: AtomicWriteOptions = { mode: 0o600, dirSync: "best-effort" };
 * ```
 */
export interface AtomicWriteOptions {
  /** Permissions of a newly created file (default: the process's default, as Deno.open). */
  readonly mode?: number;
  /**
   * The temporary file (default `PATH.tmp`): one name per writer, so a leftover from a crash
   * is overwritten or removed by the next run instead of piling up.
   */
  readonly tmp?: string;
  /**
   * `"required"` (default): a folder that cannot be fsynced fails the write. `"best-effort"`:
   * for state that is still correct (just older) when the rename is lost, on platforms where
   * a folder cannot be opened.
   */
  readonly dirSync?: "required" | "best-effort";
}

/**
 * Replaces `path` with `data` atomically and durably.
 *
 * @example
 * ```ts
 * await writeFileAtomic("/var/lib/auditpipe/tail.json", new TextEncoder().encode("{}\n"));
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = opts.tmp ?? `${path}.tmp`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: opts.mode });
  try {
    let at = 0;
    while (at < data.length) at += await f.write(data.subarray(at));
    await f.sync();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
  // The rename is durable only once the folder's entry is.
  if (opts.dirSync === "best-effort") {
    try {
      await syncDir(dirname(path));
    } catch { /* best effort, see AtomicWriteOptions.dirSync */ }
  } else {
    await syncDir(dirname(path));
  }
}

/**
 * Makes renames and new files in `dir` survive a crash (fsync of the folder).
 *
 * @example
 * ```ts
 * await syncDir("/var/lib/auditpipe/buf");
 * ```
 */
export async function syncDir(dir: string): Promise<void> {
  const f = await Deno.open(dir, { read: true });
  try {
    await f.sync();
  } finally {
    f.close();
  }
}
