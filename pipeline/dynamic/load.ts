/**
 * The sinks an AuditSink folder declares: its valid objects (see `read.ts`) resolved into
 * sinks (see `sink.ts`), less those whose name is taken (by an earlier object, or by a sink of
 * the config) or whose `caBundle` holds no usable certificate. Each left out is a problem at
 * its file and line; the others run.
 *
 * @module
 */
import type { Problem } from "../core/problem.ts";
import type { ResolvedSink } from "../config/files.ts";
import { readSinkFolder } from "./read.ts";
import { AUDIT_SINK_PREFIX, caBundleProblem, resolveAuditSink } from "./sink.ts";

/**
 * What an AuditSink folder gives: sinks to run and problems to report.
 *
 * @example
 * ```ts
 * const { sinks, problems }: DynamicSinks = await loadDynamicSinks(dir, ["local"]);
 * ```
 */
export interface DynamicSinks {
  readonly sinks: ResolvedSink[];
  readonly problems: Problem[];
}

/**
 * Reads `dir` and resolves its AuditSinks; `taken` are the names of the config's sinks.
 * Rejects when the folder cannot be read at all.
 *
 * @example
 * ```ts
 * const { sinks, problems } = await loadDynamicSinks("/etc/auditpipe/sinks.d", ["local"]);
 * ```
 */
export async function loadDynamicSinks(
  dir: string,
  taken: Iterable<string>,
): Promise<DynamicSinks> {
  const { sinks: found, problems } = await readSinkFolder(dir);
  const used = new Map<string, string>([...taken].map((n) => [n, "a sink of the config"]));
  const sinks: ResolvedSink[] = [];
  for (const f of found) {
    const where = { file: f.file, line: f.line, col: f.col };
    const name = AUDIT_SINK_PREFIX + f.sink.metadata.name;
    const other = used.get(name);
    if (other !== undefined) {
      problems.push({
        ...where,
        path: "metadata.name",
        message: `Duplicate value: "${f.sink.metadata.name}": ${name} is already ${other}`,
      });
      continue;
    }
    const ca = f.sink.spec.webhook.clientConfig.caBundle;
    const bad = ca === undefined ? undefined : caBundleProblem(ca);
    if (bad !== undefined) {
      problems.push({ ...where, path: "spec.webhook.clientConfig.caBundle", message: bad });
      continue;
    }
    used.set(name, `declared at ${f.file}:${f.line}:${f.col}`);
    sinks.push(resolveAuditSink(f));
  }
  return { sinks, problems };
}
