/**
 * Config problems that point at the file, line, column and key path they are about, as
 * `pipeline.yaml:14:7 sinks[1].batch.maxSize: must be a positive integer, got "four"`.
 *
 * @module
 */
import { formatProblem, type Problem } from "../core/problem.ts";

export { formatPath, formatProblem, type KeyPath } from "../core/problem.ts";

/**
 * One thing wrong with a config or a file it names; a policy file's problems keep that file.
 *
 * @example
 * ```ts
 * const p: ConfigProblem = { file: "pipeline.yaml", line: 6, col: 13, path: "sinks[0].batch.maxSize", message: "must be a positive integer" };
 * ```
 */
export type ConfigProblem = Problem;

/**
 * A config that cannot be used, with every problem found.
 *
 * @example
 * ```ts
 * try { loadConfigText(text, "p.yaml"); } catch (e) {
 *   if (e instanceof ConfigError) for (const p of e.problems) console.error(formatProblem(p));
 * }
 * ```
 */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(problems.map(formatProblem).join("\n"));
  }
}

/**
 * Levenshtein distance, for did-you-mean suggestions.
 *
 * @example
 * ```ts
 * editDistance("maxSise", "maxSize"); // 1
 * ```
 */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(
        prev[j] + 1,
        prev[j - 1] + 1,
        diag + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1),
      );
      diag = tmp;
    }
  }
  return prev[b.length];
}

/**
 * The closest candidate to a misspelt word, if one is close enough to be meant.
 *
 * @example
 * ```ts
 * suggest("bufersize", ["bufferSize", "maxSize"]); // "bufferSize"
 * ```
 */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}
