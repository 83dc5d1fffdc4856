/**
 * Reading `--existing`: RBAC objects the subject already has (Roles, ClusterRoles,
 * RoleBindings, ClusterRoleBindings), as YAML or JSON, one object per document or in a
 * `List` (or `RoleList`, ...). Problems name `FILE:LINE:COL` and the field.
 *
 * @module
 */
import { type Document, LineCounter, parseAllDocuments } from "yaml";
import {
  type BindingObject,
  emptyObjects,
  type PolicyRule,
  type RbacObjects,
  type RoleObject,
  type Subject,
} from "./objects.ts";

/**
 * An `--existing` file that cannot be used; the message names file, line, column and field.
 *
 * @example
 * ```ts
 * try { parseExisting(text, "rbac.yaml"); } catch (e) { if (e instanceof ExistingError) console.error(e.message); }
 * ```
 */
export class ExistingError extends Error {
  override name = "ExistingError";
}

type Path = (string | number)[];

function pathText(path: Path): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s === "" ? p : `.${p}`;
  return s;
}

class Reader {
  constructor(
    readonly file: string,
    readonly lines: LineCounter,
    readonly doc: Document,
    readonly docIndex: number,
  ) {}

  fail(path: Path, msg: string): never {
    let node: unknown = path.length === 0 ? this.doc.contents : this.doc.getIn(path, true);
    // A missing field: point at the object that should hold it.
    for (let up = path.length - 1; (node === undefined || node === null) && up >= 0; up--) {
      node = up === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, up), true);
    }
    const range = (node as { range?: [number, number, number] } | null)?.range;
    const { line, col } = this.lines.linePos(range?.[0] ?? 0);
    const field = path.length === 0 ? `document ${this.docIndex + 1}` : pathText(path);
    throw new ExistingError(`${this.file}:${line}:${col} ${field}: ${msg}`);
  }

  strings(v: unknown, path: Path, required: boolean): string[] | undefined {
    if (v === undefined || v === null) {
      if (required) this.fail(path, "is required (a list of strings)");
      return undefined;
    }
    if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
      this.fail(path, "must be a list of strings");
    }
    return v.length > 0 ? v : undefined;
  }

  string(v: unknown, path: Path): string {
    if (typeof v !== "string" || v === "") this.fail(path, "must be a non-empty string");
    return v;
  }

  record(v: unknown, path: Path): Record<string, unknown> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.fail(path, "must be a map");
    return v as Record<string, unknown>;
  }

  meta(obj: Record<string, unknown>, path: Path, namespaced: boolean) {
    const m = this.record(obj.metadata, [...path, "metadata"]);
    const name = this.string(m.name, [...path, "metadata", "name"]);
    if (!namespaced) return { name };
    const namespace = this.string(m.namespace, [...path, "metadata", "namespace"]);
    return { name, namespace };
  }

  rule(v: unknown, path: Path): PolicyRule {
    const r = this.record(v, path);
    const rule: PolicyRule = { verbs: this.strings(r.verbs, [...path, "verbs"], true) ?? [] };
    for (const k of ["apiGroups", "resources", "resourceNames", "nonResourceURLs"] as const) {
      const list = this.strings(r[k], [...path, k], false);
      if (list !== undefined) rule[k] = list;
    }
    return rule;
  }

  role(obj: Record<string, unknown>, path: Path, namespaced: boolean): RoleObject {
    const rules = obj.rules ?? [];
    if (!Array.isArray(rules)) this.fail([...path, "rules"], "must be a list");
    return {
      metadata: this.meta(obj, path, namespaced),
      rules: rules.map((r, i) => this.rule(r, [...path, "rules", i])),
    };
  }

  binding(obj: Record<string, unknown>, path: Path, namespaced: boolean): BindingObject {
    const ref = this.record(obj.roleRef, [...path, "roleRef"]);
    const subjects = obj.subjects ?? [];
    if (!Array.isArray(subjects)) this.fail([...path, "subjects"], "must be a list");
    return {
      metadata: this.meta(obj, path, namespaced),
      roleRef: {
        apiGroup: typeof ref.apiGroup === "string" ? ref.apiGroup : "",
        kind: this.string(ref.kind, [...path, "roleRef", "kind"]),
        name: this.string(ref.name, [...path, "roleRef", "name"]),
      },
      subjects: subjects.map((s, i): Subject => {
        const p = [...path, "subjects", i];
        const o = this.record(s, p);
        const subject: Subject = {
          kind: this.string(o.kind, [...p, "kind"]),
          name: this.string(o.name, [...p, "name"]),
        };
        if (typeof o.apiGroup === "string") subject.apiGroup = o.apiGroup;
        if (typeof o.namespace === "string" && o.namespace !== "") subject.namespace = o.namespace;
        return subject;
      }),
    };
  }

  add(v: unknown, path: Path, into: RbacObjects, warn: (msg: string) => void): void {
    const obj = this.record(v, path);
    const kind = obj.kind;
    if (typeof kind === "string" && kind.endsWith("List") && Array.isArray(obj.items)) {
      obj.items.forEach((item, i) => this.add(item, [...path, "items", i], into, warn));
      return;
    }
    if (kind === "Role" || kind === "ClusterRole") {
      const role = this.role(obj, path, kind === "Role");
      (kind === "Role" ? into.roles : into.clusterRoles).push(role);
      return;
    }
    if (kind === "RoleBinding" || kind === "ClusterRoleBinding") {
      const binding = this.binding(obj, path, kind === "RoleBinding");
      (kind === "RoleBinding" ? into.roleBindings : into.clusterRoleBindings).push(binding);
      return;
    }
    const node = path.length === 0 ? this.doc.contents : this.doc.getIn(path, true);
    const range = (node as { range?: [number, number, number] } | null)?.range;
    const { line, col } = this.lines.linePos(range?.[0] ?? 0);
    const field = path.length === 0 ? `document ${this.docIndex + 1}` : pathText(path);
    warn(`${this.file}:${line}:${col} ${field}: kind ${JSON.stringify(kind)} is not RBAC: skipped`);
  }
}

/**
 * The RBAC objects in `text` (YAML or JSON). Other kinds are skipped with a warning.
 *
 * @example
 * ```ts
 * const objs = parseExisting(await Deno.readTextFile("rbac.yaml"), "rbac.yaml", console.warn);
 * ```
 */
export function parseExisting(
  text: string,
  file: string,
  warn: (msg: string) => void = () => {},
): RbacObjects {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines });
  if (!Array.isArray(docs)) return emptyObjects(); // no documents at all
  const out = emptyObjects();
  docs.forEach((doc, i) => {
    for (const e of doc.errors) {
      const { line, col } = lines.linePos(e.pos[0]);
      throw new ExistingError(`${file}:${line}:${col} not YAML or JSON: ${e.message}`);
    }
    const value = doc.toJS();
    if (value === null || value === undefined) return; // an empty document
    new Reader(file, lines, doc, i).add(value, [], out, warn);
  });
  return out;
}

/**
 * `a` and `b` together.
 *
 * @example
 * ```ts
 * const all = mergeObjects(discoveryObjects(), existing);
 * ```
 */
export function mergeObjects(a: RbacObjects, b: RbacObjects): RbacObjects {
  return {
    roles: [...a.roles, ...b.roles],
    clusterRoles: [...a.clusterRoles, ...b.clusterRoles],
    roleBindings: [...a.roleBindings, ...b.roleBindings],
    clusterRoleBindings: [...a.clusterRoleBindings, ...b.clusterRoleBindings],
  };
}
