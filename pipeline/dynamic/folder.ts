/**
 * The config's `dynamic.dir` and what it adds to the sinks the config declares: the folder
 * (relative to the config file's folder), read into sinks, with a folder that cannot be
 * read reported at the `dynamic.dir` key, and the resources a pipeline runs with them.
 *
 * @module
 */
import { dirname, isAbsolute, resolve } from "node:path";
import type { LoadedConfig } from "../config/load.ts";
import type { Resources } from "../config/files.ts";
import type { Problem } from "../core/problem.ts";
import type { DynamicSinks } from "./load.ts";

/**
 * The AuditSink folder `loaded` names, as an absolute path, or undefined when it names none.
 *
 * @example
 * ```ts
 * dynamicDir(loaded); // "/etc/auditpipe/sinks.d" for `dynamic: {dir: sinks.d}`
 * ```
 */
export function dynamicDir(loaded: LoadedConfig): string | undefined {
  const dir = loaded.config.dynamic?.dir;
  if (dir === undefined) return undefined;
  return isAbsolute(dir) ? dir : resolve(dirname(loaded.file), dir);
}

/** A problem about the folder itself, at the `dynamic.dir` key of the config. */
function folderProblem(loaded: LoadedConfig, message: string): Problem {
  return {
    file: loaded.file,
    ...loaded.position(["dynamic", "dir"]),
    path: "dynamic.dir",
    message,
  };
}

/**
 * The AuditSinks of `loaded`'s folder (none when it names none). A folder that is missing,
 * not a folder or unreadable gives one problem at `dynamic.dir`, also as `folder`, and no
 * sinks.
 *
 * @example
 * ```ts
 * const { sinks, problems } = await loadDynamicFolder(loaded);
 * ```
 */
export async function loadDynamicFolder(
  loaded: LoadedConfig,
): Promise<DynamicSinks & { readonly folder?: Problem }> {
  const dir = dynamicDir(loaded);
  if (dir === undefined) return { sinks: [], problems: [] };
  const unusable = (message: string) => {
    const folder = folderProblem(loaded, message);
    return { sinks: [], problems: [folder], folder };
  };
  try {
    if (!(await Deno.stat(dir)).isDirectory) return unusable(`not a folder: ${dir}`);
    // Imported only for a config with a folder: it loads node:crypto (caBundle checks).
    const { loadDynamicSinks } = await import("./load.ts");
    return await loadDynamicSinks(dir, loaded.config.sinks.map((s) => s.name!));
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "folder not found"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (err as Error).message;
    return unusable(`${why}: ${dir}`);
  }
}

/**
 * `resources` with `dynamic`'s sinks after the config's own.
 *
 * @example
 * ```ts
 * await pipeline.reload(loaded, withDynamicSinks(resources, dynamic));
 * ```
 */
export function withDynamicSinks(resources: Resources, dynamic: DynamicSinks): Resources {
  return { ...resources, sinks: [...resources.sinks, ...dynamic.sinks] };
}
