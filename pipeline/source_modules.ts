/**
 * The modules of the source types, each imported when a config first uses its type, so a
 * daemon loads only the sources it runs: no HTTP server for a stdin source, no NATS client for
 * a tail source (that loading was most of the daemon's start-up). Importing is asynchronous
 * and opening a source is not (a reload rebuilds a source at once when its successor cannot
 * start), so the builder loads the types of a config before it prepares its sources.
 *
 * @module
 */
import type { SourceConfig } from "./config/schema.ts";
import type { webhookSource } from "./ingest/webhook.ts";
import type { tailSource } from "./ingest/tail/mod.ts";
import type { stdinSource } from "./ingest/stdin.ts";
import type { natsSource } from "./ingest/nats.ts";

/** A source type, as `sources[].type` names it. */
type SourceType = SourceConfig["type"];

/** What each source type's module exports. */
interface SourceModules {
  webhook: { readonly webhookSource: typeof webhookSource };
  tail: { readonly tailSource: typeof tailSource };
  stdin: { readonly stdinSource: typeof stdinSource };
  nats: { readonly natsSource: typeof natsSource };
}

// Literal specifiers, so `deno bundle` and `deno compile` include every source.
const importers: { readonly [T in SourceType]: () => Promise<SourceModules[T]> } = {
  webhook: () => import("./ingest/webhook.ts"),
  tail: () => import("./ingest/tail/mod.ts"),
  stdin: () => import("./ingest/stdin.ts"),
  nats: () => import("./ingest/nats.ts"),
};

const loaded: Partial<SourceModules> = {};

async function loadOne<T extends SourceType>(type: T): Promise<void> {
  loaded[type] ??= await importers[type]();
}

/**
 * Imports the modules of `types` not imported yet.
 *
 * @example
 * ```ts
 * await loadSourceModules(resources.sources.map((s) => s.config.type));
 * sourceModule("stdin").stdinSource(cfg, deps);
 * ```
 */
export async function loadSourceModules(types: Iterable<SourceType>): Promise<void> {
  await Promise.all([...new Set(types)].map(loadOne));
}

/**
 * The module of source type `type`; {@linkcode loadSourceModules} must have imported it.
 *
 * @example
 * ```ts
 * const { tailSource } = sourceModule("tail");
 * ```
 */
export function sourceModule<T extends SourceType>(type: T): SourceModules[T] {
  const m = loaded[type];
  if (m === undefined) {
    throw new Error(`source type "${type}" used before its module was loaded`);
  }
  return m as SourceModules[T];
}
