/**
 * Turning a Policy into matchers built once: sets for every list, resource patterns split by
 * kind, and one frozen result per rule, so evaluation does lookups and allocates nothing.
 *
 * @module
 */
import { STAGES } from "../pipeline/core/event.ts";
import type { Level, Stage } from "../pipeline/core/event.ts";
import type { GroupResources, Policy, PolicyRule } from "./types.ts";
import type { PolicyResult } from "./result.ts";

/**
 * One `resources` entry of a rule, with its patterns sorted by how they match.
 *
 * @example
 * ```ts
 * // { group: "", resources: ["pods/*", "*\/scale"] } compiles to
 * // { anyResource: false, names: null, star: false, exact: Set {"pods/*", "*\/scale"},
 * //   anyResourceWithSub: Set {"scale"}, resourceAnySub: Set {"pods"} }
 * ```
 */
export interface CompiledGroupResources {
  /** The entry lists no resources: every resource of the group passes. */
  readonly anyResource: boolean;
  /** `resourceNames`, or `null` for any name. */
  readonly names: ReadonlySet<string> | null;
  /** A `*` pattern is present. */
  readonly star: boolean;
  /** Patterns compared whole with `resource` or `resource/subresource`. */
  readonly exact: ReadonlySet<string>;
  /** `X` of every `*\/X` pattern. */
  readonly anyResourceWithSub: ReadonlySet<string>;
  /** `R` of every `R/*` pattern (matches `R` itself too). */
  readonly resourceAnySub: ReadonlySet<string>;
}

/**
 * Non-resource URL patterns of a rule.
 *
 * @example
 * ```ts
 * // ["/healthz*", "/metrics"] compiles to
 * // { any: false, exact: Set {"/metrics"}, prefixes: ["/healthz"] }
 * ```
 */
export interface CompiledURLs {
  readonly any: boolean;
  readonly exact: ReadonlySet<string>;
  /** Patterns ending in `*`, with every trailing `*` removed. */
  readonly prefixes: readonly string[];
}

/**
 * How a rule treats the request kind: `any` (no resources, namespaces or non-resource URLs),
 * `resource` (`resources` or `namespaces` given; resource requests only) or `nonResource`
 * (only `nonResourceURLs` given; non-resource requests only).
 *
 * @example
 * ```ts
 * compilePolicy(policy).rules[0].scope; // "resource"
 * ```
 */
export type RuleScope = "any" | "resource" | "nonResource";

/**
 * A rule ready for matching; `null` sets mean "no constraint".
 *
 * @example
 * ```ts
 * const rule: CompiledRule = compilePolicy(policy).rules[0];
 * rule.result.level; // the level it gives
 * ```
 */
export interface CompiledRule {
  readonly users: ReadonlySet<string> | null;
  readonly userGroups: ReadonlySet<string> | null;
  readonly verbs: ReadonlySet<string> | null;
  readonly scope: RuleScope;
  readonly namespaces: ReadonlySet<string> | null;
  /** Entries by exact group; `null` when the rule has no `resources` (any resource passes). */
  readonly groups: ReadonlyMap<string, readonly CompiledGroupResources[]> | null;
  /** Entries whose group is `*`. */
  readonly anyGroup: readonly CompiledGroupResources[];
  readonly urls: CompiledURLs;
  readonly result: PolicyResult;
}

/**
 * A policy compiled for `evaluate`.
 *
 * @example
 * ```ts
 * const compiled: CompiledPolicy = compilePolicy(policy);
 * const result = evaluate(compiled, envelope.event); // once per event, cached by `id`
 * ```
 */
export interface CompiledPolicy {
  /** Unique per compiled policy in this process; small, so usable as an array index. */
  readonly id: number;
  readonly policy: Policy;
  readonly rules: readonly CompiledRule[];
  /** The result when no rule matches: None with the policy's stages and managed-fields value. */
  readonly noMatch: PolicyResult;
}

let nextId = 0;

function setOf(list: readonly string[] | undefined): ReadonlySet<string> | null {
  return list && list.length > 0 ? new Set(list) : null;
}

/** Stages in stage order, without repeats; the union kube-apiserver computes at load. */
function stageUnion(...lists: (readonly Stage[] | undefined)[]): readonly Stage[] {
  const wanted = new Set<string>();
  for (const l of lists) if (l) { for (const s of l) wanted.add(s); }
  return Object.freeze(STAGES.filter((s) => wanted.has(s)));
}

function compileGroupResources(gr: GroupResources): CompiledGroupResources {
  const resources = gr.resources ?? [];
  const exact = new Set<string>();
  const anyResourceWithSub = new Set<string>();
  const resourceAnySub = new Set<string>();
  let star = false;
  for (const res of resources) {
    if (res === "*") star = true;
    exact.add(res);
    if (res.startsWith("*/")) anyResourceWithSub.add(res.slice(2));
    if (res.endsWith("/*")) resourceAnySub.add(res.slice(0, -2));
  }
  return {
    anyResource: resources.length === 0,
    names: setOf(gr.resourceNames),
    star,
    exact,
    anyResourceWithSub,
    resourceAnySub,
  };
}

function compileURLs(urls: readonly string[]): CompiledURLs {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  let any = false;
  for (const u of urls) {
    if (u === "*") any = true;
    else if (u.endsWith("*")) prefixes.push(u.replace(/\*+$/, ""));
    else exact.add(u);
  }
  return { any, exact, prefixes };
}

function compileRule(
  rule: PolicyRule,
  index: number,
  policy: Policy,
): CompiledRule {
  const hasResources = (rule.resources?.length ?? 0) > 0;
  const hasNamespaces = (rule.namespaces?.length ?? 0) > 0;
  const scope = hasResources || hasNamespaces
    ? "resource"
    : (rule.nonResourceURLs?.length ?? 0) > 0
    ? "nonResource"
    : "any";
  let groups: Map<string, CompiledGroupResources[]> | null = null;
  const anyGroup: CompiledGroupResources[] = [];
  if (hasResources) {
    groups = new Map();
    for (const gr of rule.resources!) {
      const compiled = compileGroupResources(gr);
      const group = gr.group ?? "";
      if (group === "*") anyGroup.push(compiled);
      else {
        const list = groups.get(group);
        if (list) list.push(compiled);
        else groups.set(group, [compiled]);
      }
    }
  }
  const result: PolicyResult = Object.freeze({
    level: rule.level as Level,
    omitStages: stageUnion(policy.omitStages, rule.omitStages),
    omitManagedFields: rule.omitManagedFields ?? policy.omitManagedFields ?? false,
    rule: index,
  });
  return {
    users: setOf(rule.users),
    userGroups: setOf(rule.userGroups),
    verbs: setOf(rule.verbs),
    scope,
    namespaces: setOf(rule.namespaces),
    groups,
    anyGroup,
    urls: compileURLs(scope === "nonResource" ? rule.nonResourceURLs! : []),
    result,
  };
}

/**
 * Compiles a (valid) policy once; evaluate it for every event with {@linkcode evaluate}. Each
 * rule's omitStages become the union of the policy's and the rule's, in stage order.
 *
 * @example
 * ```ts
 * const compiled = compilePolicy(parsePolicy(text, "policy.yaml").policy);
 * const result = evaluate(compiled, event);
 * ```
 */
export function compilePolicy(policy: Policy): CompiledPolicy {
  const rules = policy.rules.map((r, i) => compileRule(r, i, policy));
  const noMatch: PolicyResult = Object.freeze({
    level: "None",
    omitStages: stageUnion(policy.omitStages),
    omitManagedFields: policy.omitManagedFields ?? false,
    rule: null,
  });
  return Object.freeze({ id: nextId++, policy, rules: Object.freeze(rules), noMatch });
}
