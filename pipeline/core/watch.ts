/**
 * Watching folders for changes, debounced: one save is several events (write, create,
 * rename), and config managers and editors replace files by renaming over them, so folders are
 * watched rather than files, and the callback runs once the folder has been quiet for a moment.
 *
 * @module
 */

/**
 * Calls `onChange` once changes in `dirs` (not their sub-folders) settle for `debounceMs`;
 * with `accept`, only changes to paths it accepts count. Returns a function that stops
 * watching. Throws when a folder cannot be watched (it does not exist).
 *
 * @example
 * ```ts
 * const stop = watchDirs(["/etc/auditpipe/sinks.d"], () => reload(), { debounceMs: 100 });
 * ```
 */
export function watchDirs(
  dirs: readonly string[],
  onChange: () => void,
  opts: { debounceMs: number; accept?: (path: string) => boolean },
): () => void {
  const watcher = Deno.watchFs([...dirs], { recursive: false });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const events = async () => {
    for await (const ev of watcher) {
      if (ev.kind === "access") continue;
      if (opts.accept && !ev.paths.some(opts.accept)) continue;
      clearTimeout(timer);
      timer = setTimeout(onChange, opts.debounceMs);
    }
  };
  // Ends when closed, or when a folder goes away: the owner's next reload reports that.
  events().catch(() => {});
  return () => {
    clearTimeout(timer);
    try {
      watcher.close();
    } catch {
      // Already closed.
    }
  };
}
