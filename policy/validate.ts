/**
 * The checks of k8s.io/apiserver `pkg/apis/audit/validation/validation.go`, with its messages,
 * reporting every problem rather than the first.
 *
 * @module
 */
import { LEVELS, STAGES } from "../pipeline/core/event.ts";
import type { Policy, PolicyRule } from "./types.ts";
import { type FieldPath, formatField, type PolicyProblem, type PositionLookup } from "./errors.ts";

const LEVEL_SET: ReadonlySet<string> = new Set(LEVELS);
const STAGE_SET: ReadonlySet<string> = new Set(STAGES);

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_SUBDOMAIN_MSG = "a lowercase RFC 1123 subdomain must consist of lower case " +
  "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character " +
  "(e.g. 'example.com', regex used for validation is " +
  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/** A validation problem before positions are attached. */
interface Issue {
  readonly path: FieldPath;
  readonly reason: string;
}

function invalid(path: FieldPath, value: unknown, detail: string): Issue {
  return { path, reason: `Invalid value: ${JSON.stringify(value)}: ${detail}` };
}

function checkOmitStages(stages: readonly string[] | undefined, path: FieldPath, out: Issue[]) {
  if (!stages) return;
  for (let i = 0; i < stages.length; i++) {
    if (!STAGE_SET.has(stages[i])) {
      out.push(invalid([...path, i], stages[i], `allowed stages are ${STAGES.join(",")}`));
    }
  }
}

function checkRule(rule: PolicyRule, path: FieldPath, out: Issue[]): void {
  // Typed as Level, but a policy read from a file may carry anything here.
  const level: string = rule.level ?? "";
  if (level === "") {
    out.push({
      path: [...path, "level"],
      reason: `Required value: must be one of ${LEVELS.map((l) => `"${l}"`).join(", ")}`,
    });
  } else if (!LEVEL_SET.has(level)) {
    out.push({
      path: [...path, "level"],
      reason: `Unsupported value: ${JSON.stringify(level)}: supported values: ${
        LEVELS.map((l) => `"${l}"`).join(", ")
      }`,
    });
  }
  const urls = rule.nonResourceURLs ?? [];
  for (let i = 0; i < urls.length; i++) {
    const url = urls[i];
    if (url === "*") continue;
    const p = [...path, "nonResourceURLs", i];
    if (!url.startsWith("/")) {
      out.push(invalid(p, url, "non-resource URL rules must begin with a '/' character"));
    }
    if (url !== "" && url.slice(0, -1).includes("*")) {
      out.push(
        invalid(p, url, "non-resource URL wildcards '*' must be the final character of the rule"),
      );
    }
  }
  const resources = rule.resources ?? [];
  for (let i = 0; i < resources.length; i++) {
    const gr = resources[i];
    const group = gr.group ?? "";
    // "" is the core group; "*" (every group) is accepted since Kubernetes 1.36.
    if (group !== "" && group !== "*") {
      const msgs: string[] = [];
      if (group.length > 253) msgs.push("must be no more than 253 characters");
      if (!DNS1123_SUBDOMAIN.test(group)) msgs.push(DNS1123_SUBDOMAIN_MSG);
      if (msgs.length) out.push(invalid([...path, "resources", i, "group"], group, msgs.join(",")));
    }
    if ((gr.resourceNames?.length ?? 0) > 0 && (gr.resources?.length ?? 0) === 0) {
      out.push(
        invalid(
          [...path, "resources", i, "resourceNames"],
          gr.resourceNames,
          "using resourceNames requires at least one resource",
        ),
      );
    }
  }
  checkOmitStages(rule.omitStages, [...path, "omitStages"], out);
  if (
    urls.length > 0 && ((rule.resources?.length ?? 0) > 0 || (rule.namespaces?.length ?? 0) > 0)
  ) {
    out.push(
      invalid(
        [...path, "nonResourceURLs"],
        urls,
        "rules cannot apply to both regular resources and non-resource URLs",
      ),
    );
  }
}

/**
 * Every validation problem of a policy, in document order; empty when it is valid. Checks
 * what kube-apiserver checks and nothing more: verbs, users, groups, namespaces and resource
 * strings are free-form. `apiVersion`, `kind` and the rule count are the loader's business.
 *
 * @param positions maps a field path to where it was written; without it, or when it knows
 *   neither the path nor any parent, problems have line 0.
 * @param file the name problems are reported under.
 *
 * @example
 * ```ts
 * const problems = validatePolicy({
 *   apiVersion: "audit.k8s.io/v1", kind: "Policy", rules: [{ level: "Loud" as Level }],
 * });
 * // [{ file: "policy", line: 0, col: 0, path: "rules[0].level", message: 'Unsupported value: "Loud": ...' }]
 * ```
 */
export function validatePolicy(
  policy: Policy,
  positions?: PositionLookup,
  file = "policy",
): PolicyProblem[] {
  const issues: Issue[] = [];
  checkOmitStages(policy.omitStages, ["omitStages"], issues);
  for (let i = 0; i < policy.rules.length; i++) checkRule(policy.rules[i], ["rules", i], issues);
  return issues.map((issue) => locate(file, issue.path, issue.reason, positions));
}

/**
 * A problem at `path`, positioned at the path or its nearest parent `positions` knows.
 *
 * @example
 * ```ts
 * locate("p.yaml", ["rules", 0, "level"], "Required value", () => ({ line: 4, col: 3 }));
 * // { file: "p.yaml", line: 4, col: 3, path: "rules[0].level", message: "Required value" }
 * ```
 */
export function locate(
  file: string,
  path: FieldPath,
  reason: string,
  positions?: PositionLookup,
): PolicyProblem {
  const field = formatField(path);
  if (positions) {
    for (let n = path.length; n >= 0; n--) {
      const pos = positions(path.slice(0, n));
      if (pos) return { file, line: pos.line, col: pos.col, path: field, message: reason };
    }
  }
  return { file, line: 0, col: 0, path: field, message: reason };
}
