/**
 * A problem with a position: the one shape config errors and policy errors share, rendered
 * as `pipeline.yaml:14:7 sinks[1].batch.maxSize: must be a positive integer, got "four"`.
 *
 * @module
 */

/**
 * A key path into a YAML/JSON document: object keys and list indexes.
 *
 * @example
 * ```ts
 * const path: KeyPath = ["sinks", 1, "batch", "maxSize"]; // sinks[1].batch.maxSize
 * ```
 */
export type KeyPath = readonly (string | number)[];

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
 * One thing wrong with (or, for warnings, odd about) a file, where it is.
 *
 * @example
 * ```ts
 * const p: Problem = { file: "p.yaml", line: 3, col: 5, path: "sinks[0].type", message: "bad" };
 * ```
 */
export interface Problem {
  readonly file: string;
  /** 1-based; 0 when the position is unknown. */
  readonly line: number;
  readonly col: number;
  /** Rendered key path such as `rules[2].level`; empty for the whole file. */
  readonly path: string;
  readonly message: string;
}

/**
 * Renders a key path the way users write it (and Kubernetes field errors do).
 *
 * @example
 * ```ts
 * formatPath(["sinks", 1, "batch", "maxSize"]); // "sinks[1].batch.maxSize"
 * ```
 */
export function formatPath(path: KeyPath): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? p : `.${p}`;
  }
  return out;
}

/**
 * Joins a rendered path under a parent path, for problems found inside an embedded document
 * (an inline policy's `rules[0].level` under `sinks[1].policy`).
 *
 * @example
 * ```ts
 * joinPath("sinks[1].policy", "rules[0].level"); // "sinks[1].policy.rules[0].level"
 * joinPath("sinks[1].policy", ""); // "sinks[1].policy"
 * ```
 */
export function joinPath(parent: string, child: string): string {
  if (parent === "") return child;
  if (child === "") return parent;
  return child.startsWith("[") ? parent + child : `${parent}.${child}`;
}

/**
 * Renders one problem as one line: `file:line:col path: message`. The position is left out
 * when unknown (line 0) and the path when the problem is about the whole file.
 *
 * @example
 * ```ts
 * formatProblem({ file: "p.yaml", line: 3, col: 5, path: "sinks[0].type", message: "bad" });
 * // "p.yaml:3:5 sinks[0].type: bad"
 * ```
 */
export function formatProblem(p: Problem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file;
  return p.path === "" ? `${where}: ${p.message}` : `${where} ${p.path}: ${p.message}`;
}

/**
 * Orders problems by where they are, for listing in document order.
 *
 * @example
 * ```ts
 * problems.sort(byPosition);
 * ```
 */
export function byPosition(a: Problem, b: Problem): number {
  return a.line - b.line || a.col - b.col;
}
