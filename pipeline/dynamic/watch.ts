/**
 * Watching an AuditSink folder: any change in it (a file written, created, removed or
 * renamed; an editor's write-then-rename; a ConfigMap's `..data` link swapped) calls back once
 * things are quiet for a moment. What changed is not looked at: the folder is read again
 * whole, and only sinks whose object changed are rebuilt.
 *
 * @module
 */
import { watchDirs } from "../core/watch.ts";

/**
 * How long the folder must be quiet before it is read: one save is several events.
 *
 * @example
 * ```ts
 * watchFolder(dir, reload, DEBOUNCE_MS);
 * ```
 */
export const DEBOUNCE_MS = 100;

/**
 * Calls `onChange` after changes in `dir` settle. Returns a function that stops watching.
 * Throws when `dir` cannot be watched (it does not exist).
 *
 * @example
 * ```ts
 * const stop = watchFolder("/etc/auditpipe/sinks.d", () => reloadSinks());
 * ```
 */
export function watchFolder(
  dir: string,
  onChange: () => void,
  debounceMs = DEBOUNCE_MS,
): () => void {
  return watchDirs([dir], onChange, { debounceMs });
}
