/**
 * A one-line summary of a rule's conditions, for reports and logs.
 *
 * @module
 */
import type { GroupResources, PolicyRule } from "./types.ts";

function groupResources(gr: GroupResources): string {
  const group = gr.group === undefined || gr.group === "" ? "core" : gr.group;
  const resources = gr.resources?.length ? gr.resources.join("|") : "*";
  const names = gr.resourceNames?.length ? `[${gr.resourceNames.join("|")}]` : "";
  return `${group}/${resources}${names}`;
}

function list(key: string, v: readonly string[] | undefined): string | null {
  return v && v.length > 0 ? `${key}=${v.map((s) => (s === "" ? '""' : s)).join(",")}` : null;
}

/**
 * The rule's conditions as `key=value,...` words (`core` for the core group, `|` between
 * resources of one group); `(any request)` for a rule without conditions.
 *
 * @example
 * ```ts
 * describeRule({ level: "Metadata", users: ["alice"], verbs: ["get", "list"],
 *   resources: [{ group: "", resources: ["pods"] }] });
 * // "users=alice verbs=get,list resources=core/pods"
 * ```
 */
export function describeRule(rule: PolicyRule): string {
  const parts = [
    list("users", rule.users),
    list("userGroups", rule.userGroups),
    list("verbs", rule.verbs),
    rule.resources?.length ? `resources=${rule.resources.map(groupResources).join(",")}` : null,
    list("namespaces", rule.namespaces),
    list("nonResourceURLs", rule.nonResourceURLs),
    list("omitStages", rule.omitStages),
    rule.omitManagedFields === undefined ? null : `omitManagedFields=${rule.omitManagedFields}`,
  ].filter((p): p is string => p !== null);
  return parts.length ? parts.join(" ") : "(any request)";
}
