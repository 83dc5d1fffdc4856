/**
 * Why a source, a sink or the ops server could not start, said the way config problems are:
 * which one, where it is configured and the operating system's reason, as
 * `source "apiserver" cannot start: pipeline.yaml:4:5 sources[0].listen: Address already in use (os error 98)`.
 *
 * @module
 */
import type { LoadedConfig } from "./config/load.ts";
import { formatPath, type KeyPath } from "./config/errors.ts";
import type { SinkConfig, SourceConfig } from "./config/schema.ts";
import { errorMessage } from "./core/errors.ts";

/** What failed to start. */
export type Component = "source" | "sink" | "server";

/**
 * A start failure, with the fields of the one log line that reports it.
 *
 * @example
 * ```ts
 * const err = new StartError("source", "apiserver", "pipeline.yaml:4:5 sources[0].listen", "Address already in use (os error 98)");
 * log.error(`cannot start ${err.component}`, err.fields);
 * ```
 */
export class StartError extends Error {
  override name = "StartError";
  constructor(
    readonly component: Component,
    /** The source's or sink's name; empty for the ops server. */
    readonly componentName: string,
    /** `file:line:col key.path` of the setting that names what could not be had. */
    readonly at: string,
    /** The operating system's (or Deno's) reason. */
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(
      `${component}${componentName ? ` "${componentName}"` : ""} cannot start: ${at}: ${reason}`,
      options,
    );
  }

  /** Log fields: `{ source: "apiserver", at, error }`, or `{ at, error }` for the server. */
  get fields(): Record<string, string> {
    return this.component === "server"
      ? { at: this.at, error: this.reason }
      : { [this.component]: this.componentName, at: this.at, error: this.reason };
  }
}

/**
 * `file:line:col key.path` of `path` in `loaded`, as config problems name places.
 *
 * @example
 * ```ts
 * configAt(loaded, ["sources", 0, "listen"]); // "pipeline.yaml:4:5 sources[0].listen"
 * ```
 */
export function configAt(loaded: LoadedConfig, path: KeyPath): string {
  const { line, col } = loaded.position(path);
  return `${loaded.file}:${line}:${col} ${formatPath(path)}`;
}

/** The key that names what a source needs from the system (its socket, its file). */
const SOURCE_KEY: Record<SourceConfig["type"], string | null> = {
  webhook: "listen",
  tail: "path",
  nats: "servers",
  stdin: null,
};

/** The key that names what a sink needs from the system. */
const SINK_KEY: Record<SinkConfig["type"], string | null> = {
  log: "path",
  webhook: "kubeconfig",
  nats: "servers",
  stdout: null,
};

/**
 * Where source `i` or sink `i` is configured: the key of what it opens, else the item.
 *
 * @example
 * ```ts
 * componentAt(loaded, "sink", 1); // "pipeline.yaml:9:11 sinks[1].path"
 * ```
 */
export function componentAt(loaded: LoadedConfig, component: "source" | "sink", i: number): string {
  const key = component === "source"
    ? SOURCE_KEY[loaded.config.sources[i].type]
    : SINK_KEY[loaded.config.sinks[i].type];
  const list = component === "source" ? "sources" : "sinks";
  return configAt(loaded, key === null ? [list, i] : [list, i, key]);
}

/**
 * Wraps what `err` says into a {@linkcode StartError}; one already is passes unchanged.
 *
 * @example
 * ```ts
 * try { Deno.serve(...) } catch (e) { throw startError("server", "", at, e); }
 * ```
 */
export function startError(
  component: Component,
  name: string,
  at: string,
  err: unknown,
): StartError {
  if (err instanceof StartError) return err;
  const reason = errorMessage(err);
  return new StartError(component, name, at, reason, { cause: err });
}
