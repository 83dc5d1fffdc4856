/**
 * Turning requests into rules and a role's rules into few, as audit2rbac does: each rule is
 * broken into one per group, resource, verb and name (or path and verb); those differing only
 * in verbs are joined; then rules differing only in names, or only in resources, are merged;
 * the result is sorted by API group, then by its compact text.
 *
 * audit2rbac joins verbs through a Go map, whose order is random, and the merge that follows
 * depends on that order; here the order is that of first appearance, so output is stable.
 *
 * @module
 */
import type { Attributes } from "./attributes.ts";
import type { PolicyRule } from "./objects.ts";

/**
 * The verbs a request's verb brings along, as audit2rbac grants them: a client that watches
 * also lists and gets, one that updates also gets and patches.
 *
 * @example
 * ```ts
 * VERB_EXPANSIONS.get("list"); // ["get", "watch"]
 * ```
 */
export const VERB_EXPANSIONS: ReadonlyMap<string, readonly string[]> = new Map([
  ["watch", ["get", "list"]],
  ["list", ["get", "watch"]],
  ["update", ["get", "patch"]],
  ["patch", ["get", "update"]],
]);

/**
 * The rule that allows a resource request: its verb (with {@linkcode VERB_EXPANSIONS}), group,
 * `resource/subresource`, and its name when it has one.
 *
 * @example
 * ```ts
 * resourceRule(attrs); // { verbs: ["get"], apiGroups: [""], resources: ["pods"], resourceNames: ["p1"] }
 * ```
 */
export function resourceRule(a: Attributes): PolicyRule {
  const rule: PolicyRule = {
    verbs: [a.verb, ...(VERB_EXPANSIONS.get(a.verb) ?? [])],
    apiGroups: [a.apiGroup],
    resources: [a.subresource === "" ? a.resource : `${a.resource}/${a.subresource}`],
  };
  if (a.name !== "") rule.resourceNames = [a.name];
  return rule;
}

/**
 * The rule that allows a non-resource request: its verb on its path.
 *
 * @example
 * ```ts
 * nonResourceRule(attrs); // { verbs: ["get"], nonResourceURLs: ["/metrics"] }
 * ```
 */
export function nonResourceRule(a: Attributes): PolicyRule {
  return { verbs: [a.verb], nonResourceURLs: [a.path] };
}

function list(v: string[] | undefined): string[] {
  return v ?? [];
}

/**
 * One rule per group, resource, verb and name; or per path and verb.
 *
 * @example
 * ```ts
 * breakdownRule({ verbs: ["get", "list"], apiGroups: [""], resources: ["pods"] }).length; // 2
 * ```
 */
export function breakdownRule(rule: PolicyRule): PolicyRule[] {
  const out: PolicyRule[] = [];
  for (const g of list(rule.apiGroups)) {
    for (const r of list(rule.resources)) {
      for (const v of rule.verbs) {
        const names = list(rule.resourceNames);
        if (names.length === 0) out.push({ verbs: [v], apiGroups: [g], resources: [r] });
        for (const n of names) {
          out.push({ verbs: [v], apiGroups: [g], resources: [r], resourceNames: [n] });
        }
      }
    }
  }
  for (const u of list(rule.nonResourceURLs)) {
    for (const v of rule.verbs) out.push({ verbs: [v], nonResourceURLs: [u] });
  }
  return out;
}

function sameList(a: string[] | undefined, b: string[] | undefined): boolean {
  const x = list(a), y = list(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function sortedSet(...lists: (string[] | undefined)[]): string[] {
  return [...new Set(lists.flatMap(list))].sort(goCompare);
}

/** Go's strings.Compare order: by UTF-8 bytes, which is code point order. */
function goCompare(a: string, b: string): number {
  const x = [...a], y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Go's `%q` of a []string: `["a" "b"]`. */
function quoted(v: string[]): string {
  return `[${v.map((s) => JSON.stringify(s)).join(" ")}]`;
}

/**
 * The text Kubernetes shows a rule as (its `CompactString`), by which rules are sorted.
 *
 * @example
 * ```ts
 * compactString({ verbs: ["get"], apiGroups: [""], resources: ["pods"] });
 * // '{APIGroups:[""], Resources:["pods"], Verbs:["get"]}'
 * ```
 */
export function compactString(r: PolicyRule): string {
  const parts: string[] = [];
  if (list(r.apiGroups).length > 0) parts.push(`APIGroups:${quoted(r.apiGroups!)}`);
  if (list(r.resources).length > 0) parts.push(`Resources:${quoted(r.resources!)}`);
  if (list(r.nonResourceURLs).length > 0) {
    parts.push(`NonResourceURLs:${quoted(r.nonResourceURLs!)}`);
  }
  if (list(r.resourceNames).length > 0) parts.push(`ResourceNames:${quoted(r.resourceNames!)}`);
  if (r.verbs.length > 0) parts.push(`Verbs:${quoted(r.verbs)}`);
  return `{${parts.join(", ")}}`;
}

/** Joins rules of one group, resource and (at most one) name that differ only in verbs. */
function joinVerbs(rules: PolicyRule[]): PolicyRule[] {
  const complex: PolicyRule[] = [];
  const simple = new Map<string, PolicyRule>();
  for (const rule of rules) {
    const isSimple = list(rule.resourceNames).length <= 1 &&
      list(rule.nonResourceURLs).length === 0 && list(rule.apiGroups).length === 1 &&
      list(rule.resources).length === 1;
    if (!isSimple) {
      complex.push(rule);
      continue;
    }
    const key = JSON.stringify([rule.apiGroups, rule.resources, list(rule.resourceNames)]);
    const seen = simple.get(key);
    if (seen !== undefined) seen.verbs.push(...rule.verbs);
    else simple.set(key, { ...rule, verbs: [...rule.verbs] });
  }
  return [...complex, ...simple.values()].map((r) => ({ ...r, verbs: sortedSet(r.verbs) }));
}

/** A rule being accumulated: its names and resources as sets, sorted when done. */
interface Accumulating {
  readonly rule: PolicyRule;
  readonly resources: Set<string>;
  readonly names: Set<string>;
}

function sameSet(set: Set<string>, items: string[] | undefined): boolean {
  const l = list(items);
  return set.size === l.length && l.every((x) => set.has(x));
}

function sameSets(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

/**
 * The rules of one role made few (see the module doc); they allow exactly what the input did.
 *
 * @example
 * ```ts
 * compactRules([
 *   { verbs: ["get"], apiGroups: [""], resources: ["pods"] },
 *   { verbs: ["get"], apiGroups: [""], resources: ["configmaps"] },
 * ]); // [{ verbs: ["get"], apiGroups: [""], resources: ["configmaps", "pods"] }]
 * ```
 */
export function compactRules(rules: readonly PolicyRule[]): PolicyRule[] {
  const joined = joinVerbs(rules.flatMap(breakdownRule));
  // Sets, not sorted lists as in audit2rbac, so merging many names stays linear; equal sets
  // are equal sorted lists, so the decisions are the same.
  const acc: Accumulating[] = [];
  for (const rule of joined) {
    const names = new Set(list(rule.resourceNames));
    if (list(rule.resources).length === 0) {
      acc.push({ rule, resources: new Set(), names });
      continue;
    }
    let merged = false;
    for (const other of acc) {
      if (other.resources.size === 0) continue; // non-resource rules only accumulate
      const sameRest = sameList(rule.verbs, other.rule.verbs) &&
        sameList(rule.apiGroups, other.rule.apiGroups) &&
        sameList(rule.nonResourceURLs, other.rule.nonResourceURLs);
      if (!sameRest) continue;
      if (sameSet(other.resources, rule.resources)) {
        for (const n of names) other.names.add(n);
        merged = true;
        break;
      }
      if (sameSets(other.names, names)) {
        for (const r of list(rule.resources)) other.resources.add(r);
        merged = true;
        break;
      }
    }
    if (!merged) acc.push({ rule, resources: new Set(rule.resources), names });
  }
  const done = acc.map(({ rule, resources, names }): PolicyRule => {
    const out: PolicyRule = { ...rule };
    if (resources.size > 0) out.resources = [...resources].sort(goCompare);
    if (names.size > 0) out.resourceNames = [...names].sort(goCompare);
    else delete out.resourceNames;
    return out;
  });
  const groups = (r: PolicyRule) => list(r.apiGroups).join(",");
  // Array.prototype.sort is stable, as Go's sort.SliceStable.
  return done.sort((a, b) =>
    goCompare(groups(a), groups(b)) || goCompare(compactString(a), compactString(b))
  );
}
