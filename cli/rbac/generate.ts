/**
 * Generating the Roles, ClusterRoles and bindings that allow a set of requests, as
 * audit2rbac's `Generator` does: requests are taken broadest first; one already allowed by
 * the existing objects or by what was generated so far is skipped; a non-resource request
 * becomes a ClusterRole rule; a resource request made on several names (or in several
 * namespaces) with otherwise equal attributes is widened to any name (any namespace) when
 * the options say so; a cluster-scoped one goes into the ClusterRole, a namespaced one into
 * the Role of its namespace. Each role's rules are compacted at the end.
 *
 * @module
 */
import { type Attributes, compareRequests } from "./attributes.ts";
import { RbacAuthorizer, ruleAllows } from "./authorize.ts";
import { compactRules, nonResourceRule, resourceRule } from "./compact.ts";
import {
  type BindingObject,
  emptyObjects,
  type ObjectMeta,
  type PolicyRule,
  RBAC_GROUP,
  type RbacObjects,
  type RoleObject,
  userSubject,
} from "./objects.ts";

/**
 * How objects are generated.
 *
 * @example
 * ```ts
 * const opts: GenerateOptions = { ...DEFAULT_GENERATE_OPTIONS, name: "audit2rbac:alice" };
 * ```
 */
export interface GenerateOptions {
  /** Same request on several names: allow it on any name. */
  readonly expandMultipleNames: boolean;
  /** Same request in several namespaces: allow it in every namespace. */
  readonly expandMultipleNamespaces: boolean;
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * The library defaults (the CLI's name, labels and annotations are set by its flags).
 *
 * @example
 * ```ts
 * generateRbac(requests, discoveryObjects(), DEFAULT_GENERATE_OPTIONS);
 * ```
 */
export const DEFAULT_GENERATE_OPTIONS: GenerateOptions = {
  expandMultipleNames: true,
  expandMultipleNamespaces: true,
  name: "audit2rbac",
};

/**
 * What kube-apiserver lets every user get without further grants (its
 * `system:discovery` ClusterRole, bound to all authenticated and unauthenticated users), so
 * these requests never need a rule.
 *
 * @example
 * ```ts
 * const existing = discoveryObjects();
 * ```
 */
export function discoveryObjects(): RbacObjects {
  const objs = emptyObjects();
  objs.clusterRoles.push({
    metadata: { name: "system:discovery" },
    rules: [{
      verbs: ["get"],
      nonResourceURLs: ["/healthz", "/version", "/swagger*", "/openapi*", "/api*"],
    }],
  });
  objs.clusterRoleBindings.push({
    metadata: { name: "system:discovery" },
    roleRef: { apiGroup: RBAC_GROUP, kind: "ClusterRole", name: "system:discovery" },
    subjects: [
      { kind: "Group", apiGroup: RBAC_GROUP, name: "system:authenticated" },
      { kind: "Group", apiGroup: RBAC_GROUP, name: "system:unauthenticated" },
    ],
  });
  return objs;
}

/** The attributes that must be equal for two requests to widen each other. */
function widenKey(a: Attributes, opts: GenerateOptions): string {
  return JSON.stringify([
    a.user,
    a.groups,
    a.verb,
    a.apiGroup,
    a.apiVersion,
    a.resource,
    a.subresource,
    opts.expandMultipleNamespaces ? "" : a.namespace,
    opts.expandMultipleNames ? "" : a.name,
  ]);
}

/** Non-empty namespaces and names seen under one widen key. */
interface Seen {
  readonly namespaces: Set<string>;
  readonly names: Set<string>;
}

/**
 * The rules generated so far for one scope, found by what they name: each has one group and
 * resource (or one path) and at most one name until compaction, so a request is checked
 * against the few rules that can allow it, not all of them.
 */
class RuleIndex {
  readonly #nonResource: PolicyRule[] = [];
  readonly #byResource = new Map<string, { any: PolicyRule[]; named: Map<string, PolicyRule[]> }>();

  add(rule: PolicyRule): void {
    if (rule.nonResourceURLs !== undefined) {
      this.#nonResource.push(rule);
      return;
    }
    const key = `${rule.apiGroups![0]}\0${rule.resources![0]}`;
    let entry = this.#byResource.get(key);
    if (entry === undefined) this.#byResource.set(key, entry = { any: [], named: new Map() });
    const name = rule.resourceNames?.[0];
    if (name === undefined) entry.any.push(rule);
    else {
      const named = entry.named.get(name);
      if (named === undefined) entry.named.set(name, [rule]);
      else named.push(rule);
    }
  }

  allows(a: Attributes): boolean {
    if (!a.resourceRequest) return this.#nonResource.some((r) => ruleAllows(r, a));
    const resource = a.subresource === "" ? a.resource : `${a.resource}/${a.subresource}`;
    const entry = this.#byResource.get(`${a.apiGroup}\0${resource}`);
    if (entry === undefined) return false;
    if (entry.any.some((r) => ruleAllows(r, a))) return true;
    return entry.named.get(a.name)?.some((r) => ruleAllows(r, a)) ?? false;
  }
}

function hasOther(set: Set<string>, own: string): boolean {
  return set.size > 1 || (set.size === 1 && !set.has(own));
}

/**
 * The objects that allow every request not allowed by `existing`, in write order.
 *
 * @example
 * ```ts
 * const out = generateRbac(requests, discoveryObjects(), { ...DEFAULT_GENERATE_OPTIONS, name: "x" });
 * console.log(out.clusterRoles.length);
 * ```
 */
export function generateRbac(
  requests: readonly Attributes[],
  existing: RbacObjects,
  opts: GenerateOptions,
): RbacObjects {
  const existingAuthz = new RbacAuthorizer(existing);
  const sorted = [...requests].sort(compareRequests);

  const seen = new Map<string, Seen>();
  for (const a of sorted) {
    if (!a.resourceRequest) continue;
    const key = widenKey(a, opts);
    let s = seen.get(key);
    if (s === undefined) seen.set(key, s = { namespaces: new Set(), names: new Set() });
    if (a.namespace !== "") s.namespaces.add(a.namespace);
    if (a.name !== "") s.names.add(a.name);
  }

  const out = emptyObjects();
  const meta = (namespace?: string): ObjectMeta => {
    const m: ObjectMeta = { name: opts.name };
    if (namespace !== undefined) m.namespace = namespace;
    if (opts.labels !== undefined) m.labels = { ...opts.labels };
    if (opts.annotations !== undefined) m.annotations = { ...opts.annotations };
    return m;
  };
  let clusterRole: RoleObject | undefined;
  const roles = new Map<string, RoleObject>();
  /** By namespace, "" for the ClusterRole. */
  const indexes = new Map<string, RuleIndex>();
  const addRule = (role: RoleObject, namespace: string, rule: PolicyRule) => {
    role.rules.push(rule);
    let index = indexes.get(namespace);
    if (index === undefined) indexes.set(namespace, index = new RuleIndex());
    index.add(rule);
  };
  const binding = (kind: string, user: string, namespace?: string): BindingObject => ({
    metadata: meta(namespace),
    roleRef: { apiGroup: RBAC_GROUP, kind, name: opts.name },
    subjects: [userSubject(user)],
  });
  const ensureClusterRole = (user: string): RoleObject => {
    if (clusterRole !== undefined) return clusterRole;
    clusterRole = { metadata: meta(), rules: [] };
    out.clusterRoles.push(clusterRole);
    out.clusterRoleBindings.push(binding("ClusterRole", user));
    return clusterRole;
  };
  const ensureRole = (user: string, namespace: string): RoleObject => {
    let role = roles.get(namespace);
    if (role !== undefined) return role;
    role = { metadata: meta(namespace), rules: [] };
    roles.set(namespace, role);
    out.roles.push(role);
    out.roleBindings.push(binding("Role", user, namespace));
    return role;
  };
  // Generated bindings name the requests' own user, so only scope matters here.
  const generatedAllows = (a: Attributes): boolean =>
    (indexes.get("")?.allows(a) ?? false) ||
    (a.namespace !== "" && (indexes.get(a.namespace)?.allows(a) ?? false));

  for (const request of sorted) {
    if (existingAuthz.allows(request) || generatedAllows(request)) continue;
    if (!request.resourceRequest) {
      addRule(ensureClusterRole(request.user), "", nonResourceRule(request));
      continue;
    }
    let { namespace, name } = request;
    const s = seen.get(widenKey(request, opts))!;
    if (opts.expandMultipleNamespaces && namespace !== "" && hasOther(s.namespaces, namespace)) {
      namespace = "";
    }
    if (opts.expandMultipleNames && name !== "" && hasOther(s.names, name)) name = "";
    const rule = resourceRule({ ...request, namespace, name });
    if (namespace === "") addRule(ensureClusterRole(request.user), "", rule);
    else addRule(ensureRole(request.user, namespace), namespace, rule);
  }

  for (const r of [...out.clusterRoles, ...out.roles]) r.rules = compactRules(r.rules);
  return out;
}
