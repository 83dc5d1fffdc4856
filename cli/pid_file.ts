/**
 * `--pid-file`: where the daemon writes its process id, so a script can signal the daemon
 * itself rather than the launcher in front of it (`npx` and `sh -c` die on SIGTERM without
 * passing it on, leaving Deno running).
 *
 * @module
 */
import { dirname } from "node:path";

/**
 * Writes `Deno.pid` and a newline to `path`; returns a function that removes the file again
 * if it still holds this process's id (a second daemon may have taken it over meanwhile).
 *
 * @example
 * ```ts
 * const remove = await writePidFile("audit-out/auditpipe.pid");
 * try { await run(); } finally { await remove(); }
 * ```
 */
export async function writePidFile(path: string): Promise<() => Promise<void>> {
  const mine = `${Deno.pid}\n`;
  try {
    await Deno.writeTextFile(path, mine, { mode: 0o644 });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    // The Quickstart's pid file sits in audit-out/, which the log sink creates only later.
    // Created only when missing, so an existing folder needs no write permission of its own.
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeTextFile(path, mine, { mode: 0o644 });
  }
  return async () => {
    try {
      if (await Deno.readTextFile(path) === mine) await Deno.remove(path);
    } catch {
      // Already gone: nothing to clean up.
    }
  };
}
