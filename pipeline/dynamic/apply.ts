/**
 * Starting or reloading a pipeline with AuditSink sinks, where one AuditSink whose sink
 * cannot be opened is left out rather than refusing the whole change, as kube-apiserver
 * logged "Could not add audit sink" and went on with the others.
 *
 * @module
 */
import type { Resources } from "../config/files.ts";
import { StartError } from "../start_error.ts";
import type { DynamicSinks } from "./load.ts";
import { withDynamicSinks } from "./folder.ts";

/**
 * Calls `attempt` with `resources` and `dynamic`'s sinks. When it rejects with a
 * {@linkcode StartError} naming one of those sinks, that sink is reported to `skipped` and
 * `attempt` runs again without it; any other rejection passes through.
 *
 * @example
 * ```ts
 * const pipeline = await leavingOutFailed(resources, dynamic,
 *   (r) => Pipeline.create(loaded, r, { log }),
 *   (err) => log.error("cannot start AuditSink; skipped", err.fields));
 * ```
 */
export async function leavingOutFailed<T>(
  resources: Resources,
  dynamic: DynamicSinks,
  attempt: (resources: Resources) => Promise<T>,
  skipped: (err: StartError) => void,
): Promise<T> {
  let sinks = dynamic.sinks;
  for (;;) {
    try {
      return await attempt(withDynamicSinks(resources, { ...dynamic, sinks }));
    } catch (err) {
      const failed = err instanceof StartError && err.component === "sink"
        ? sinks.find((s) => s.config.name === err.componentName)
        : undefined;
      if (!failed) throw err;
      skipped(err as StartError);
      sinks = sinks.filter((s) => s !== failed);
    }
  }
}
