/**
 * The generated test corpus: every shape of audit data the project reads, made by the
 * generators here instead of taken from outside the repository. Tests import the event
 * lists below; `writeCorpus` lays the files out on disk for tests (and people) that read
 * files, e.g. `deno run -A tests/data/corpus.ts /tmp/corpus`.
 *
 * @module
 */
import { apiserverLog } from "./apiserver_log.ts";
import { aksSamples, kubectlSamples, legacyLog, ruleFixtures, type SampleFile } from "./samples.ts";

export type { SampleFile } from "./samples.ts";

/** Lines in the generated kube-apiserver `audit.log`. */
export const AUDIT_LOG_LINES = 3000;

let auditLog: string[] | undefined;

/**
 * The first `limit` lines (no line ends) of the generated kube-apiserver `audit.log`
 * ({@linkcode AUDIT_LOG_LINES} in all): Metadata events of a starting cluster, every stage.
 *
 * @example
 * ```ts
 * const lines = auditLogLines(100);
 * ```
 */
export function auditLogLines(limit = Infinity): string[] {
  auditLog ??= apiserverLog({ events: AUDIT_LOG_LINES });
  return auditLog.slice(0, limit);
}

/** Parses every event of a file of JSON lines. */
function parseLines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}

let fixtureEvents: Record<string, unknown>[] | undefined;

/**
 * Events of varied shapes, parsed: the rule-test fixtures first (sorted by auditID: bodies,
 * sorted keys, v1beta1 fields, exec and attach), then lines of the `audit.log`.
 *
 * @example
 * ```ts
 * const events = sampleEvents(200); // 46 fixtures, then 154 audit.log events
 * ```
 */
export function sampleEvents(limit = 200): Record<string, unknown>[] {
  fixtureEvents ??= ruleFixtures().flatMap((f) => parseLines(f.text))
    .sort((a, b) => String(a.auditID).localeCompare(String(b.auditID)));
  const out = fixtureEvents.slice(0, limit);
  if (out.length < limit) {
    out.push(...auditLogLines(limit - out.length).map((l) => JSON.parse(l)));
  }
  return out;
}

/**
 * The rule-test fixtures alone, parsed, in file order.
 *
 * @example
 * ```ts
 * const events = ruleFixtureEvents(); // 46 events, most with request or response objects
 * ```
 */
export function ruleFixtureEvents(): Record<string, unknown>[] {
  return ruleFixtures().flatMap((f) => parseLines(f.text));
}

/**
 * Every file of the corpus, by name: the `audit.log`, the legacy logs, the rule fixtures,
 * the AKS samples and the kubectl and pretty-printed samples.
 *
 * @example
 * ```ts
 * const names = corpusFiles().map((f) => f.name); // ["aks/pretty-event.json", ...]
 * ```
 */
export function corpusFiles(): SampleFile[] {
  return [
    { name: "apiserver/audit.log", text: auditLogLines().join("\n") + "\n" },
    { name: "legacy/v1beta1.log", text: legacyLog() },
    { name: "legacy/v1-relabelled.log", text: legacyLog({ relabelled: true }) },
    ...ruleFixtures(),
    ...aksSamples(),
    ...kubectlSamples(),
  ].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Writes {@linkcode corpusFiles} under `dir` (created as needed); returns their names.
 *
 * @example
 * ```ts
 * const dir = await Deno.makeTempDir();
 * const names = await writeCorpus(dir);
 * ```
 */
export async function writeCorpus(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const f of corpusFiles()) {
    const path = `${dir}/${f.name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, f.text);
    names.push(f.name);
  }
  return names;
}

if (import.meta.main) {
  const dir = Deno.args[0];
  if (!dir) {
    console.error("usage: deno run -A tests/data/corpus.ts DIR");
    Deno.exit(2);
  }
  for (const name of await writeCorpus(dir)) console.log(`${dir}/${name}`);
}
