/**
 * Policy problems that point at the file, line, column and field they are about, as
 * `policy.yaml:14:7 rules[2].level: Unsupported value: "Everything": ...`.
 *
 * @module
 */

/**
 * A field path into a policy document: object keys and list indexes.
 *
 * @example
 * ```ts
 * const path: FieldPath = ["rules", 2, "level"]; // rules[2].level
 * ```
 */
export type FieldPath = readonly (string | number)[];

/**
 * A 1-based position in a source text.
 *
 * @example
 * ```ts
 * const at: Position = { line: 14, col: 7 };
 * ```
 */
export interface Position {
  readonly line: number;
  readonly col: number;
}

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
 * One thing wrong with (or, for warnings, odd about) a policy.
 *
 * @example
 * ```ts
 * const p: PolicyProblem = { file: "p.yaml", line: 3, col: 5, field: "rules[0].level", reason: "Required value" };
 * ```
 */
export interface PolicyProblem {
  readonly file: string;
  /** 1-based; 0 when the position is unknown. */
  readonly line: number;
  readonly col: number;
  /** Rendered field path such as `rules[2].level`; empty for the whole document. */
  readonly field: string;
  readonly reason: string;
}

/**
 * Renders a field path the way Kubernetes field errors do.
 *
 * @example
 * ```ts
 * formatField(["rules", 2, "resources", 0, "group"]); // "rules[2].resources[0].group"
 * ```
 */
export function formatField(path: FieldPath): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? p : `.${p}`;
  }
  return out;
}

/**
 * Renders one problem as one line: `file:line:col field: reason`. The position is left out
 * when unknown (line 0) and the field when the problem is about the whole document.
 *
 * @example
 * ```ts
 * formatProblem({ file: "p.yaml", line: 3, col: 5, field: "rules[0].level", reason: "Required value" });
 * // "p.yaml:3:5 rules[0].level: Required value"
 * ```
 */
export function formatProblem(p: PolicyProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file;
  return p.field === "" ? `${where}: ${p.reason}` : `${where} ${p.field}: ${p.reason}`;
}

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
    this.field = first.field;
  }
}
