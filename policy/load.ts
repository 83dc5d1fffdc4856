/**
 * Loading a Policy from text (YAML or JSON) or from an already parsed object, as
 * kube-apiserver's `LoadPolicyFromBytes` does: lenient about unknown and duplicate fields
 * (warnings), strict about `apiVersion`/`kind`, validation, and a policy with no rules.
 * Every problem is reported at once, each with its position and field.
 *
 * @module
 */
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { AUDIT_API_VERSION } from "../pipeline/core/event.ts";
import type { Policy } from "./types.ts";
import {
  byPosition,
  type FieldPath,
  formatField,
  formatProblem,
  PolicyError,
  type PolicyProblem,
  type Position,
  type PositionLookup,
} from "./errors.ts";
import { readPolicyShape, show } from "./shape.ts";
import { locate, validatePolicy } from "./validate.ts";

/**
 * A usable policy and what was odd about it (`file:line:col field: ...` strings).
 *
 * @example
 * ```ts
 * const { policy, warnings }: LoadedPolicy = parsePolicy(text, "policy.yaml");
 * for (const w of warnings) log.warn(w);
 * ```
 */
export interface LoadedPolicy {
  readonly policy: Policy;
  readonly warnings: string[];
}

const REMOVED_VERSIONS: ReadonlySet<string> = new Set([
  "audit.k8s.io/v1alpha1",
  "audit.k8s.io/v1beta1",
]);

function typeProblems(policy: Policy, file: string, at?: PositionLookup): PolicyProblem[] {
  const out: PolicyProblem[] = [];
  const expected = `expected apiVersion: ${AUDIT_API_VERSION} and kind: Policy`;
  const v: unknown = policy.apiVersion;
  if (v === undefined || v === null || v === "") {
    out.push(
      locate(
        file,
        ["apiVersion"],
        `Required value: unknown group version field in policy: ${expected}`,
        at,
      ),
    );
  } else if (v !== AUDIT_API_VERSION) {
    const why = typeof v === "string" && REMOVED_VERSIONS.has(v)
      ? `this version was removed in Kubernetes 1.24; ${expected}`
      : `unknown group version field in policy: ${expected}`;
    out.push(locate(file, ["apiVersion"], `Unsupported value: ${show(v)}: ${why}`, at));
  }
  const k: unknown = policy.kind;
  if (k === undefined || k === null || k === "") {
    out.push(locate(file, ["kind"], `Required value: ${expected}`, at));
  } else if (k !== "Policy") {
    out.push(locate(file, ["kind"], `Unsupported value: ${show(k)}: ${expected}`, at));
  }
  return out;
}

/**
 * The checks shared by text and object input. `at` places field paths; `keyAt`, when given,
 * places the key of a field rather than its value (for unknown-field warnings).
 */
function check(
  doc: unknown,
  file: string,
  at: PositionLookup | undefined,
  keyAt: PositionLookup | undefined,
  extraWarnings: PolicyProblem[],
): LoadedPolicy {
  const shape = readPolicyShape(doc);
  const problems: PolicyProblem[] = [];
  const isDoc = typeof doc === "object" && doc !== null && !Array.isArray(doc);
  if (isDoc) problems.push(...typeProblems(shape.policy, file, at));
  for (const e of shape.errors) problems.push(locate(file, e.path, e.reason, at));
  problems.push(...validatePolicy(shape.policy, at, file));
  const rulesBroken = shape.errors.some((e) => e.path.length === 1 && e.path[0] === "rules");
  if (isDoc && shape.policy.rules.length === 0 && !rulesBroken) {
    problems.push(locate(file, ["rules"], "loaded illegal policy with 0 rules", at));
  }
  if (problems.length) throw new PolicyError(problems.sort(byPosition));
  const warnings = [
    ...extraWarnings,
    ...shape.warnings.map((w) => locate(file, w.path, w.reason, keyAt ?? at)),
  ].sort(byPosition).map(formatProblem);
  return { policy: shape.policy, warnings };
}

/** Field path → position of the value (or, for a missing value, the key) and of the key. */
class PositionIndex {
  readonly values = new Map<string, Position>();
  readonly keys = new Map<string, Position>();
  readonly duplicates: PolicyProblem[] = [];

  constructor(readonly file: string, readonly lines: LineCounter) {}

  pos(offset: number): Position {
    const { line, col } = this.lines.linePos(offset);
    return { line, col };
  }

  walk(node: unknown, path: FieldPath): void {
    const field = formatField(path);
    if (node && typeof node === "object" && "range" in node) {
      const range = (node as Node).range;
      if (range) this.values.set(field, this.pos(range[0]));
    }
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const p = [...path, key];
        const keyNode = pair.key as Node | null;
        const keyPos = keyNode?.range ? this.pos(keyNode.range[0]) : undefined;
        if (keyPos) this.keys.set(formatField(p), keyPos);
        if (seen.has(key)) {
          this.duplicates.push({
            file: this.file,
            line: keyPos?.line ?? 0,
            col: keyPos?.col ?? 0,
            path: formatField(p),
            message: `duplicate field "${key}" (the last one is used)`,
          });
        }
        seen.add(key);
        this.walk(pair.value, p);
        if (!this.values.has(formatField(p)) && keyPos) this.values.set(formatField(p), keyPos);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => this.walk(item, [...path, i]));
    }
  }
}

/**
 * Parses a policy file's text (YAML or JSON). Returns the policy and its warnings (unknown or
 * duplicate fields, YAML oddities), or throws a {@linkcode PolicyError} listing every problem,
 * one per line, as `file:line:col field: reason`.
 *
 * @example
 * ```ts
 * const { policy, warnings } = parsePolicy(
 *   "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
 *   "policy.yaml",
 * );
 * // policy.rules[0].level === "Metadata"
 * ```
 */
export function parsePolicy(text: string, file: string): LoadedPolicy {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const whole = (message: string, line = 1, col = 1): PolicyProblem => ({
    file,
    line,
    col,
    path: "",
    message,
  });
  if (doc.errors.length) {
    throw new PolicyError(doc.errors.map((e) => {
      const { line, col } = lines.linePos(e.pos[0]);
      return whole(`not valid YAML or JSON: ${e.message}`, line, col);
    }));
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    throw new PolicyError([
      whole(
        `policy file is empty: loaded illegal policy with 0 rules ` +
          `(expected apiVersion: ${AUDIT_API_VERSION}, kind: Policy and a list of rules)`,
      ),
    ]);
  }
  const index = new PositionIndex(file, lines);
  index.walk(doc.contents, []);
  const yamlWarnings = doc.warnings.map((w) => {
    const { line, col } = lines.linePos(w.pos[0]);
    return whole(w.message, line, col);
  });
  const at: PositionLookup = (path) =>
    path.length === 0 ? { line: 1, col: 1 } : index.values.get(formatField(path));
  const keyAt: PositionLookup = (path) =>
    path.length === 0 ? { line: 1, col: 1 } : index.keys.get(formatField(path));
  return check(doc.toJS(), file, at, keyAt, [...yamlWarnings, ...index.duplicates]);
}

/**
 * Checks a policy that is already a plain object, such as one written inline in the pipeline
 * config. Same rules and errors as {@linkcode parsePolicy}; positions come from `positions`
 * (paths are relative to the policy object), else problems carry line 0 and render as
 * `file field: reason`.
 *
 * @example
 * ```ts
 * const { policy } = policyFromObject(
 *   { apiVersion: "audit.k8s.io/v1", kind: "Policy", rules: [{ level: "None" }] },
 *   "pipeline.yaml",
 *   (path) => configPositions(["sinks", 0, "policy", ...path]),
 * );
 * ```
 */
export function policyFromObject(
  obj: unknown,
  file: string,
  positions?: PositionLookup,
): LoadedPolicy {
  if (obj === undefined || obj === null) {
    throw new PolicyError([
      locate(file, [], "policy is empty: loaded illegal policy with 0 rules", positions),
    ]);
  }
  return check(obj, file, positions, undefined, []);
}
