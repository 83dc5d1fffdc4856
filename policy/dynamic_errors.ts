/**
 * Kubernetes field errors (`k8s.io/apimachinery/pkg/util/validation/field`) as AuditSink
 * validation reports them: a path into the object and `Invalid value: ...`, `Required value`
 * messages.
 *
 * @module
 */
import type { KeyPath } from "../pipeline/core/problem.ts";

/**
 * One thing wrong with an object, at a field path of it.
 *
 * @example
 * ```ts
 * const e: FieldError = { path: ["spec", "policy", "level"], message: "Required value" };
 * ```
 */
export interface FieldError {
  readonly path: KeyPath;
  readonly message: string;
}

/** Go's `%v`/`%q` of a value in a field error. */
function shown(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/**
 * `field.Invalid`: `value` at `path` is wrong because `why`.
 *
 * @example
 * ```ts
 * invalid(["spec", "webhook", "throttle", "qps"], 0, "qps must be a positive number");
 * // { path: [...], message: "Invalid value: 0: qps must be a positive number" }
 * ```
 */
export const invalid = (path: KeyPath, value: unknown, why: string): FieldError => ({
  path,
  message: `Invalid value: ${shown(value)}: ${why}`,
});

/**
 * `field.Required`: nothing at `path`, which needs a value.
 *
 * @example
 * ```ts
 * required(["spec", "policy", "stages"]); // { path: [...], message: "Required value" }
 * ```
 */
export const required = (path: KeyPath, why = ""): FieldError => ({
  path,
  message: why ? `Required value: ${why}` : "Required value",
});

/**
 * `field.NotSupported`: `value` is not one of `supported`.
 *
 * @example
 * ```ts
 * notSupported(["level"], "All", ["Metadata", "None"]);
 * // 'Unsupported value: "All": supported values: "Metadata", "None"'
 * ```
 */
export const notSupported = (
  path: KeyPath,
  value: unknown,
  supported: readonly string[],
): FieldError => ({
  path,
  message: `Unsupported value: ${shown(value)}: supported values: ${
    supported.map((l) => `"${l}"`).join(", ")
  }`,
});
