/**
 * Watching an AuditSink folder: any change in it (a file written, created, removed or
 * renamed; an editor's write-then-rename; a ConfigMap's `..data` link swapped) calls back once
 * things are quiet for a moment. What changed is not looked at: the folder is read again
 * whole, and only sinks whose object changed are rebuilt.
 *
 * @module
 */

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
  const watcher = Deno.watchFs(dir, { recursive: false });
  let timer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    try {
      for await (const ev of watcher) {
        if (ev.kind === "access") continue;
        clearTimeout(timer);
        timer = setTimeout(onChange, debounceMs);
      }
    } catch {
      // Closed, or the folder went away: the next reload reports it.
    }
  })();
  return () => {
    clearTimeout(timer);
    try {
      watcher.close();
    } catch {
      // Already closed.
    }
  };
}
