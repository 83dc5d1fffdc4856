/**
 * Kubernetes RBAC authorization of request attributes against RBAC objects, as
 * kube-apiserver's RBAC authorizer decides it: rules of ClusterRoles bound by a
 * ClusterRoleBinding apply everywhere, rules bound by a RoleBinding only in its namespace;
 * a binding applies to a user through a User, Group or ServiceAccount subject.
 *
 * @module
 */
import type { Attributes } from "./attributes.ts";
import type { BindingObject, PolicyRule, RbacObjects, RoleObject, Subject } from "./objects.ts";
import { serviceAccountUser } from "./objects.ts";

/**
 * Whether `rule` allows the request (verb, group, resource/subresource, name; or verb, path).
 *
 * @example
 * ```ts
 * ruleAllows({ verbs: ["get"], apiGroups: [""], resources: ["pods"] }, attrs);
 * ```
 */
export function ruleAllows(rule: PolicyRule, a: Attributes): boolean {
  if (!rule.verbs.some((v) => v === "*" || v === a.verb)) return false;
  if (!a.resourceRequest) {
    return (rule.nonResourceURLs ?? []).some((u) =>
      u === "*" || u === a.path || (u.endsWith("*") && a.path.startsWith(u.replace(/\*+$/, "")))
    );
  }
  if (!(rule.apiGroups ?? []).some((g) => g === "*" || g === a.apiGroup)) return false;
  const combined = a.subresource === "" ? a.resource : `${a.resource}/${a.subresource}`;
  const resourceOk = (rule.resources ?? []).some((r) =>
    r === "*" || r === combined ||
    (a.subresource !== "" && r.length === a.subresource.length + 2 && r.startsWith("*/") &&
      r.endsWith(a.subresource))
  );
  if (!resourceOk) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || names.includes(a.name);
}

/**
 * Whether `subject` of a binding (in `bindingNamespace`, "" for a ClusterRoleBinding)
 * stands for the user.
 *
 * @example
 * ```ts
 * subjectApplies({ kind: "Group", name: "system:authenticated" }, "", "bob", ["system:authenticated"]);
 * ```
 */
export function subjectApplies(
  subject: Subject,
  bindingNamespace: string,
  user: string,
  groups: readonly string[],
): boolean {
  switch (subject.kind) {
    case "User":
      return subject.name === user;
    case "Group":
      return groups.includes(subject.name);
    case "ServiceAccount": {
      const ns = subject.namespace || bindingNamespace;
      return ns !== "" && serviceAccountUser(ns, subject.name) === user;
    }
    default:
      return false;
  }
}

/**
 * One rule a binding grants, with where it came from.
 *
 * @example
 * ```ts
 * for (const g of grants(objects)) console.log(g.binding.metadata.name, g.index, g.rule);
 * ```
 */
export interface Grant {
  readonly bindingKind: "RoleBinding" | "ClusterRoleBinding";
  readonly binding: BindingObject;
  /** The role it refers to, with its kind. */
  readonly roleKind: "Role" | "ClusterRole";
  readonly role: RoleObject;
  /** The rule's index in the role. */
  readonly index: number;
  readonly rule: PolicyRule;
  /** The namespace the rule applies in; "" for everywhere. */
  readonly namespace: string;
}

/**
 * A binding whose roleRef names no role in the objects.
 *
 * @example
 * ```ts
 * const d: Dangling = { bindingKind: "RoleBinding", binding, reason: "Role ns1/x not found" };
 * ```
 */
export interface Dangling {
  readonly bindingKind: "RoleBinding" | "ClusterRoleBinding";
  readonly binding: BindingObject;
  readonly reason: string;
}

/**
 * Every rule granted by a binding of `objects`, in the order of the bindings and rules;
 * bindings whose role is missing go to `dangling` when given.
 *
 * @example
 * ```ts
 * const all = grants(objects);
 * ```
 */
export function grants(objects: RbacObjects, dangling?: Dangling[]): Grant[] {
  const clusterRoles = new Map(objects.clusterRoles.map((r) => [r.metadata.name, r]));
  const roles = new Map(
    objects.roles.map((r) => [`${r.metadata.namespace ?? ""}/${r.metadata.name}`, r]),
  );
  const out: Grant[] = [];
  const add = (
    bindingKind: "RoleBinding" | "ClusterRoleBinding",
    binding: BindingObject,
    namespace: string,
  ) => {
    const ref = binding.roleRef;
    let role: RoleObject | undefined;
    let roleKind: "Role" | "ClusterRole";
    if (ref.kind === "ClusterRole") {
      role = clusterRoles.get(ref.name);
      roleKind = "ClusterRole";
    } else if (ref.kind === "Role" && bindingKind === "RoleBinding") {
      role = roles.get(`${namespace}/${ref.name}`);
      roleKind = "Role";
    } else {
      dangling?.push({ bindingKind, binding, reason: `roleRef kind ${ref.kind} is not allowed` });
      return;
    }
    if (role === undefined) {
      const where = roleKind === "Role" ? `${namespace}/${ref.name}` : ref.name;
      dangling?.push({ bindingKind, binding, reason: `${roleKind} ${where} not found` });
      return;
    }
    role.rules.forEach((rule, index) =>
      out.push({ bindingKind, binding, roleKind, role: role!, index, rule, namespace })
    );
  };
  for (const b of objects.clusterRoleBindings) add("ClusterRoleBinding", b, "");
  for (const b of objects.roleBindings) add("RoleBinding", b, b.metadata.namespace ?? "");
  return out;
}

/**
 * Whether a grant applies to the request: its binding names the request's user, and it is
 * cluster-wide or in the request's namespace.
 *
 * @example
 * ```ts
 * const allowed = grantApplies(g, attrs) && ruleAllows(g.rule, attrs);
 * ```
 */
export function grantApplies(g: Grant, a: Attributes): boolean {
  if (g.namespace !== "" && g.namespace !== a.namespace) return false;
  return bindingNamesUser(g.binding, g.namespace, a.user, a.groups);
}

/**
 * Whether a binding (in `bindingNamespace`, "" for a ClusterRoleBinding) has a subject that
 * stands for the user.
 *
 * @example
 * ```ts
 * bindingNamesUser(binding, "ns1", "alice", ["system:authenticated"]);
 * ```
 */
export function bindingNamesUser(
  binding: BindingObject,
  bindingNamespace: string,
  user: string,
  groups: readonly string[],
): boolean {
  return binding.subjects.some((s) => subjectApplies(s, bindingNamespace, user, groups));
}

/**
 * An RBAC authorizer over a fixed set of objects.
 *
 * @example
 * ```ts
 * const authz = new RbacAuthorizer(objects);
 * if (authz.allows(attrs)) console.log("already allowed");
 * ```
 */
export class RbacAuthorizer {
  readonly #grants: Grant[];

  constructor(objects: RbacObjects) {
    this.#grants = grants(objects);
  }

  allows(a: Attributes): boolean {
    return this.#grants.some((g) => grantApplies(g, a) && ruleAllows(g.rule, a));
  }
}
