/**
 * Writing RBAC objects as Kubernetes writes them: YAML documents separated by `---` (map keys
 * sorted, lists not indented under their key, empty fields left out), in the order Roles,
 * ClusterRoles, RoleBindings, ClusterRoleBindings; or JSON, one `v1` `List` of them.
 *
 * @module
 */
import { stringify } from "yaml";
import {
  type BindingObject,
  type ObjectMeta,
  RBAC_API_VERSION,
  type RbacObjects,
  type RoleObject,
} from "./objects.ts";

/**
 * The output formats.
 *
 * @example
 * ```ts
 * const f: OutputFormat = "json";
 * ```
 */
export type OutputFormat = "yaml" | "json";

/** A JSON value with every map's keys sorted (Kubernetes' YAML does so; JSON follows). */
function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== undefined) out[k] = sorted(x);
  }
  return out;
}

function meta(m: ObjectMeta): Record<string, unknown> {
  const out: Record<string, unknown> = { name: m.name };
  if (m.namespace !== undefined) out.namespace = m.namespace;
  if (m.labels !== undefined && Object.keys(m.labels).length > 0) out.labels = m.labels;
  if (m.annotations !== undefined && Object.keys(m.annotations).length > 0) {
    out.annotations = m.annotations;
  }
  return out;
}

function role(kind: string, r: RoleObject): Record<string, unknown> {
  return { apiVersion: RBAC_API_VERSION, kind, metadata: meta(r.metadata), rules: r.rules };
}

function binding(kind: string, b: BindingObject): Record<string, unknown> {
  const out: Record<string, unknown> = {
    apiVersion: RBAC_API_VERSION,
    kind,
    metadata: meta(b.metadata),
    roleRef: b.roleRef,
  };
  if (b.subjects.length > 0) out.subjects = b.subjects;
  return out;
}

/**
 * The objects as manifests (plain values with `apiVersion` and `kind`), in write order.
 *
 * @example
 * ```ts
 * const docs = manifests(generated);
 * ```
 */
export function manifests(objs: RbacObjects): Record<string, unknown>[] {
  return [
    ...objs.roles.map((r) => role("Role", r)),
    ...objs.clusterRoles.map((r) => role("ClusterRole", r)),
    ...objs.roleBindings.map((b) => binding("RoleBinding", b)),
    ...objs.clusterRoleBindings.map((b) => binding("ClusterRoleBinding", b)),
  ].map((m) => sorted(m) as Record<string, unknown>);
}

/**
 * One value as Kubernetes-style YAML (sorted keys, unindented lists, no line folding).
 *
 * @example
 * ```ts
 * toYaml({ b: [1], a: "true" }); // 'a: "true"\nb:\n- 1\n'
 * ```
 */
export function toYaml(v: unknown): string {
  return stringify(sorted(v), { indentSeq: false, lineWidth: 0, minContentWidth: 0 });
}

/**
 * The objects as text in `format`: YAML documents separated by `---`, or one JSON `List`.
 * Empty objects give "" in YAML and an empty List in JSON.
 *
 * @example
 * ```ts
 * await Deno.stdout.write(new TextEncoder().encode(formatObjects(generated, "yaml")));
 * ```
 */
export function formatObjects(objs: RbacObjects, format: OutputFormat): string {
  const docs = manifests(objs);
  if (format === "json") {
    return JSON.stringify({ apiVersion: "v1", kind: "List", items: docs }, null, 2) + "\n";
  }
  return docs.map(toYaml).join("---\n");
}
