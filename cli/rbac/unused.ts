/**
 * The `--unused` report: every rule the existing objects grant the subject, with the number
 * of requests in the logs it allows; rules with none are the least-privilege gap.
 * A request counts for every granted rule that allows it, so a rule is unused only when
 * no request needed it.
 *
 * @module
 */
import { stringify } from "yaml";
import type { CountedRequest } from "./attributes.ts";
import {
  bindingNamesUser,
  type Dangling,
  type Grant,
  grantApplies,
  grants,
  ruleAllows,
} from "./authorize.ts";
import type { PolicyRule, RbacObjects } from "./objects.ts";

/**
 * One granted rule and its use.
 *
 * @example
 * ```ts
 * const u: RuleUse = {
 *   binding: "ClusterRoleBinding/view-alice", role: "ClusterRole/view", rule: 0,
 *   namespace: "", grants: { verbs: ["get"], apiGroups: [""], resources: ["pods"] }, requests: 0,
 * };
 * ```
 */
export interface RuleUse {
  /** `KIND/[NAMESPACE/]NAME` of the binding. */
  readonly binding: string;
  /** `KIND/[NAMESPACE/]NAME` of the role. */
  readonly role: string;
  /** The rule's index in the role. */
  readonly rule: number;
  /** Where the rule applies: a RoleBinding's namespace, or "" for everywhere. */
  readonly namespace: string;
  readonly grants: PolicyRule;
  /** Requests the rule allows. */
  readonly requests: number;
}

/**
 * The report.
 *
 * @example
 * ```ts
 * const r = usageReport("alice", requests, existing);
 * console.log(r.unusedRules, "of", r.rules.length, "rules unused");
 * ```
 */
export interface UsageReport {
  readonly user: string;
  /** Requests of the subject read (an event per stage counts once). */
  readonly requests: number;
  readonly rules: RuleUse[];
  readonly unusedRules: number;
  /** Bindings naming the subject whose role is not in the existing objects. */
  readonly dangling: string[];
}

function ref(kind: string, name: string, namespace?: string): string {
  return namespace ? `${kind}/${namespace}/${name}` : `${kind}/${name}`;
}

/** Whether a binding names the subject with any of the groups it was seen with. */
function namesSubject(g: Grant | Dangling, user: string, groups: readonly string[]): boolean {
  const ns = g.bindingKind === "RoleBinding" ? g.binding.metadata.namespace ?? "" : "";
  return bindingNamesUser(g.binding, ns, user, groups);
}

/**
 * Every rule `existing` grants `user` (bound to the user, or to a group the user's requests
 * carried), in binding order, with the requests that used it.
 *
 * @example
 * ```ts
 * const report = usageReport("alice", set.requests(), existing);
 * ```
 */
export function usageReport(
  user: string,
  requests: readonly CountedRequest[],
  existing: RbacObjects,
): UsageReport {
  const groups = [...new Set(requests.flatMap((r) => r.attrs.groups))];
  const dangling: Dangling[] = [];
  const all = grants(existing, dangling);
  const mine = all.filter((g) => namesSubject(g, user, groups));
  const rules = mine.map((g): RuleUse => {
    let used = 0;
    for (const r of requests) {
      if (grantApplies(g, r.attrs) && ruleAllows(g.rule, r.attrs)) used += r.count;
    }
    return {
      binding: ref(g.bindingKind, g.binding.metadata.name, g.binding.metadata.namespace),
      role: ref(g.roleKind, g.role.metadata.name, g.role.metadata.namespace),
      rule: g.index,
      namespace: g.namespace,
      grants: g.rule,
      requests: used,
    };
  });
  return {
    user,
    requests: requests.reduce((n, r) => n + r.count, 0),
    rules,
    unusedRules: rules.filter((r) => r.requests === 0).length,
    dangling: dangling.filter((d) => namesSubject(d, user, groups)).map((d) =>
      `${ref(d.bindingKind, d.binding.metadata.name, d.binding.metadata.namespace)}: ${d.reason}`
    ),
  };
}

/**
 * The report as text: YAML (a document) or JSON, fields in the order above.
 *
 * @example
 * ```ts
 * await out.write(encoder.encode(formatUsageReport(report, "yaml")));
 * ```
 */
export function formatUsageReport(report: UsageReport, format: "yaml" | "json"): string {
  if (format === "json") return JSON.stringify(report, null, 2) + "\n";
  return stringify(report, { indentSeq: false, lineWidth: 0, minContentWidth: 0 });
}
