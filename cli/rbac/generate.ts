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
  const generatedAllows = (a: Attributes): boolean => {
    if (clusterRole?.rules.some((r) => ruleAllows(r, a))) return true;
    if (a.namespace === "") return false;
    return roles.get(a.namespace)?.rules.some((r) => ruleAllows(r, a)) ?? false;
  };

  for (const request of sorted) {
    if (existingAuthz.allows(request) || generatedAllows(request)) continue;
    if (!request.resourceRequest) {
      ensureClusterRole(request.user).rules.push(nonResourceRule(request));
      continue;
    }
    let { namespace, name } = request;
    const s = seen.get(widenKey(request, opts))!;
    if (opts.expandMultipleNamespaces && namespace !== "" && hasOther(s.namespaces, namespace)) {
      namespace = "";
    }
    if (opts.expandMultipleNames && name !== "" && hasOther(s.names, name)) name = "";
    const rule = resourceRule({ ...request, namespace, name });
    if (namespace === "") ensureClusterRole(request.user).rules.push(rule);
    else ensureRole(request.user, namespace).rules.push(rule);
  }

  for (const r of [...out.clusterRoles, ...out.roles]) r.rules = compactRules(r.rules);
  return out;
}
