/**
 * `--watch-config`: reload when the config or a file it names changes. Folders are watched,
 * not files, because editors and config managers replace files by renaming over them.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { watchDirs } from "../pipeline/core/watch.ts";

/**
 * Calls `onChange` (debounced) whenever one of `files` is written, created or replaced.
 * Returns a function that stops watching.
 *
 * @example
 * ```ts
 * const stop = watchFiles(["/etc/auditpipe/pipeline.yaml"], () => reload());
 * ```
 */
export function watchFiles(
  files: readonly string[],
  onChange: () => void,
  debounceMs = 200,
): () => void {
  const wanted = new Set(files.map((f) => resolve(f)));
  const dirs = [...new Set([...wanted].map((f) => dirname(f)))];
  return watchDirs(dirs, onChange, { debounceMs, accept: (p) => wanted.has(resolve(p)) });
}
