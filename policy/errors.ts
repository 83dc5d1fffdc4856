/**
 * Policy problems that point at the file, line, column and field they are about, as
 * `policy.yaml:14:7 rules[2].level: Unsupported value: "Everything": ...`.
 *
 * @module
 */
import {
  formatPath,
  formatProblem,
  type KeyPath,
  type Position,
  type Problem,
} from "../pipeline/core/problem.ts";

export { byPosition, formatProblem, type Position } from "../pipeline/core/problem.ts";

/**
 * A field path into a policy document: object keys and list indexes.
 *
 * @example
 * ```ts
 * const path: FieldPath = ["rules", 2, "level"]; // rules[2].level
 * ```
 */
export type FieldPath = KeyPath;

/**
 * Maps a field path of the policy object to where it was written, or `undefined` when it is
 * not known (the caller then tries the path's parents).
 *
 * @example
 * ```ts
 * const lookup: PositionLookup = (path) => path.length === 0 ? { line: 1, col: 1 } : undefined;
 * ```
 */
export type PositionLookup = (path: (string | number)[]) => Position | undefined;

/**
 * One thing wrong with (or, for warnings, odd about) a policy: the problem type config
 * errors use too, so a policy's problems are listed with the config's under their own file.
 *
 * @example
 * ```ts
 * const p: PolicyProblem = { file: "p.yaml", line: 3, col: 5, path: "rules[0].level", message: "Required value" };
 * ```
 */
export type PolicyProblem = Problem;

/**
 * Renders a field path the way Kubernetes field errors do.
 *
 * @example
 * ```ts
 * formatField(["rules", 2, "resources", 0, "group"]); // "rules[2].resources[0].group"
 * ```
 */
export const formatField: (path: FieldPath) => string = formatPath;

/**
 * A policy that cannot be used. `problems` lists everything found, in document order; `file`,
 * `line`, `col` and `field` are those of the first, and `message` has one line per problem.
 *
 * @example
 * ```ts
 * try {
 *   parsePolicy(text, "policy.yaml");
 * } catch (err) {
 *   if (err instanceof PolicyError) console.error(err.message);
 * }
 * ```
 */
export class PolicyError extends Error {
  override name = "PolicyError";
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** The first problem's field path. */
  readonly field: string;
  readonly problems: readonly PolicyProblem[];

  constructor(problems: readonly PolicyProblem[]) {
    if (problems.length === 0) throw new RangeError("PolicyError needs at least one problem");
    super(problems.map(formatProblem).join("\n"));
    this.problems = problems;
    const first = problems[0];
    this.file = first.file;
    this.line = first.line;
    this.col = first.col;
    this.field = first.path;
  }
}
