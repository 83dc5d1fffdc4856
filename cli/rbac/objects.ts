/**
 * The RBAC objects (`rbac.authorization.k8s.io/v1`) the command reads and writes, as plain
 * JSON-shaped values, and the subject a username stands for.
 *
 * @module
 */

/**
 * The API group of RBAC objects.
 *
 * @example
 * ```ts
 * const apiVersion = `${RBAC_GROUP}/v1`;
 * ```
 */
export const RBAC_GROUP = "rbac.authorization.k8s.io";

/**
 * The apiVersion of the objects written.
 *
 * @example
 * ```ts
 * const role = { apiVersion: RBAC_API_VERSION, kind: "Role" };
 * ```
 */
export const RBAC_API_VERSION = `${RBAC_GROUP}/v1`;

/**
 * A `PolicyRule`. Empty lists are left out, as Kubernetes writes them.
 *
 * @example
 * ```ts
 * const rule: PolicyRule = { verbs: ["get"], apiGroups: [""], resources: ["pods"] };
 * ```
 */
export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

/**
 * A binding's subject.
 *
 * @example
 * ```ts
 * const s: Subject = { kind: "ServiceAccount", name: "sa1", namespace: "ns1" };
 * ```
 */
export interface Subject {
  kind: string;
  name: string;
  apiGroup?: string;
  namespace?: string;
}

/**
 * A binding's `roleRef`.
 *
 * @example
 * ```ts
 * const ref: RoleRef = { apiGroup: RBAC_GROUP, kind: "ClusterRole", name: "view" };
 * ```
 */
export interface RoleRef {
  apiGroup: string;
  kind: string;
  name: string;
}

/**
 * The metadata fields that matter here.
 *
 * @example
 * ```ts
 * const m: ObjectMeta = { name: "audit2rbac:alice", namespace: "ns1" };
 * ```
 */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/**
 * A Role or ClusterRole.
 *
 * @example
 * ```ts
 * const r: RoleObject = { metadata: { name: "view" }, rules: [] };
 * ```
 */
export interface RoleObject {
  metadata: ObjectMeta;
  rules: PolicyRule[];
}

/**
 * A RoleBinding or ClusterRoleBinding.
 *
 * @example
 * ```ts
 * const b: BindingObject = {
 *   metadata: { name: "view" },
 *   roleRef: { apiGroup: RBAC_GROUP, kind: "ClusterRole", name: "view" },
 *   subjects: [{ kind: "User", apiGroup: RBAC_GROUP, name: "alice" }],
 * };
 * ```
 */
export interface BindingObject {
  metadata: ObjectMeta;
  roleRef: RoleRef;
  subjects: Subject[];
}

/**
 * Lists of RBAC objects, in the order they are written: Roles, ClusterRoles, RoleBindings,
 * ClusterRoleBindings.
 *
 * @example
 * ```ts
 * const none: RbacObjects = emptyObjects();
 * ```
 */
export interface RbacObjects {
  roles: RoleObject[];
  clusterRoles: RoleObject[];
  roleBindings: BindingObject[];
  clusterRoleBindings: BindingObject[];
}

/**
 * No objects.
 *
 * @example
 * ```ts
 * const objs = emptyObjects();
 * objs.clusterRoles.push({ metadata: { name: "x" }, rules: [] });
 * ```
 */
export function emptyObjects(): RbacObjects {
  return { roles: [], clusterRoles: [], roleBindings: [], clusterRoleBindings: [] };
}

const SA_PREFIX = "system:serviceaccount:";

/**
 * The namespace and name of a service account's username
 * (`system:serviceaccount:NAMESPACE:NAME`), or null for any other username.
 *
 * @example
 * ```ts
 * splitServiceAccount("system:serviceaccount:ns1:sa1"); // { namespace: "ns1", name: "sa1" }
 * ```
 */
export function splitServiceAccount(user: string): { namespace: string; name: string } | null {
  if (!user.startsWith(SA_PREFIX)) return null;
  const parts = user.slice(SA_PREFIX.length).split(":");
  if (parts.length !== 2 || parts[0] === "" || parts[1] === "") return null;
  return { namespace: parts[0], name: parts[1] };
}

/**
 * The username of a service account.
 *
 * @example
 * ```ts
 * serviceAccountUser("ns1", "sa1"); // "system:serviceaccount:ns1:sa1"
 * ```
 */
export function serviceAccountUser(namespace: string, name: string): string {
  return `${SA_PREFIX}${namespace}:${name}`;
}

/**
 * The binding subject for a username: a ServiceAccount for a service account's, else a User.
 *
 * @example
 * ```ts
 * userSubject("alice"); // { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "alice" }
 * ```
 */
export function userSubject(user: string): Subject {
  const sa = splitServiceAccount(user);
  if (sa !== null) return { kind: "ServiceAccount", name: sa.name, namespace: sa.namespace };
  return { kind: "User", apiGroup: RBAC_GROUP, name: user };
}
