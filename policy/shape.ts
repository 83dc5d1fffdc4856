/**
 * Reading a parsed document (YAML or JSON, already turned into plain values) as a Policy:
 * checks every field's type, drops unknown fields with a warning, and keeps the field names
 * and order of `audit.k8s.io/v1`. Semantic checks are in `validate.ts`.
 *
 * @module
 */
import type { GroupResources, Policy, PolicyRule } from "./types.ts";
import type { Level, Stage } from "../pipeline/core/event.ts";
import type { FieldPath } from "./errors.ts";

/**
 * A type problem or unknown field at a path, before positions are attached.
 *
 * @example
 * ```ts
 * const issue: ShapeIssue = { path: ["rules", 0, "users"], reason: 'must be a list of strings, got "alice"' };
 * ```
 */
export interface ShapeIssue {
  readonly path: FieldPath;
  readonly reason: string;
}

/**
 * What {@linkcode readPolicyShape} found.
 *
 * @example
 * ```ts
 * const { policy, errors, warnings }: ShapeResult = readPolicyShape(doc);
 * ```
 */
export interface ShapeResult {
  /** The policy, with ill-typed fields replaced by neutral values so validation can go on. */
  readonly policy: Policy;
  /** Ill-typed fields: the policy cannot be used. */
  readonly errors: ShapeIssue[];
  /** Unknown fields: dropped, as kube-apiserver's lenient decode does. */
  readonly warnings: ShapeIssue[];
}

const POLICY_KEYS: ReadonlySet<string> = new Set([
  "apiVersion",
  "kind",
  "metadata",
  "rules",
  "omitStages",
  "omitManagedFields",
]);
const RULE_KEYS: ReadonlySet<string> = new Set([
  "level",
  "users",
  "userGroups",
  "verbs",
  "resources",
  "namespaces",
  "nonResourceURLs",
  "omitStages",
  "omitManagedFields",
]);
const GROUP_RESOURCE_KEYS: ReadonlySet<string> = new Set(["group", "resources", "resourceNames"]);

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * A short rendering of a wrong value for messages.
 *
 * @example
 * ```ts
 * show("alice"); // '"alice"'
 * show([1]); // "a list"
 * ```
 */
export function show(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s;
}

class Reader {
  readonly errors: ShapeIssue[] = [];
  readonly warnings: ShapeIssue[] = [];

  unknownKeys(obj: Record<string, unknown>, known: ReadonlySet<string>, path: FieldPath): void {
    for (const key of Object.keys(obj)) {
      if (!known.has(key)) {
        this.warnings.push({ path: [...path, key], reason: `unknown field "${key}" (ignored)` });
      }
    }
  }

  /** A list of strings; `null` reads as absent, as Go's decoder does. */
  strings(v: unknown, path: FieldPath): string[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.errors.push({ path, reason: `must be a list of strings, got ${show(v)}` });
      return undefined;
    }
    let ok = true;
    for (let i = 0; i < v.length; i++) {
      if (typeof v[i] !== "string") {
        this.errors.push({ path: [...path, i], reason: `must be a string, got ${show(v[i])}` });
        ok = false;
      }
    }
    return ok ? v as string[] : undefined;
  }

  bool(v: unknown, path: FieldPath): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") {
      this.errors.push({ path, reason: `must be true or false, got ${show(v)}` });
      return undefined;
    }
    return v;
  }

  groupResources(v: unknown, path: FieldPath): GroupResources[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.errors.push({ path, reason: `must be a list of {group, resources, resourceNames}` });
      return undefined;
    }
    const out: GroupResources[] = [];
    for (let i = 0; i < v.length; i++) {
      const item = v[i];
      const p = [...path, i];
      if (item === null) {
        out.push({});
        continue;
      }
      if (!isMap(item)) {
        this.errors.push({ path: p, reason: `must be a mapping, got ${show(item)}` });
        continue;
      }
      this.unknownKeys(item, GROUP_RESOURCE_KEYS, p);
      const gr: GroupResources = {};
      if (item.group !== undefined && item.group !== null) {
        if (typeof item.group === "string") gr.group = item.group;
        else {this.errors.push({
            path: [...p, "group"],
            reason: `must be a string, got ${show(item.group)}`,
          });}
      }
      const resources = this.strings(item.resources, [...p, "resources"]);
      if (resources !== undefined) gr.resources = resources;
      const names = this.strings(item.resourceNames, [...p, "resourceNames"]);
      if (names !== undefined) gr.resourceNames = names;
      out.push(gr);
    }
    return out;
  }

  rule(v: unknown, path: FieldPath): PolicyRule {
    if (!isMap(v)) {
      this.errors.push({ path, reason: `must be a mapping with at least a level, got ${show(v)}` });
      return { level: "None" };
    }
    this.unknownKeys(v, RULE_KEYS, path);
    let level = "";
    if (typeof v.level === "string") level = v.level;
    else if (v.level !== undefined && v.level !== null) {
      this.errors.push({
        path: [...path, "level"],
        reason: `must be a string, got ${show(v.level)}`,
      });
      // Stands in for the bad value so validation does not report the same field again.
      level = "None";
    }
    // Validation reports a missing or unknown level; until then it is carried as given.
    const rule: PolicyRule = { level: level as Level };
    const lists = ["users", "userGroups", "verbs"] as const;
    for (const key of lists) {
      const s = this.strings(v[key], [...path, key]);
      if (s !== undefined) rule[key] = s;
    }
    const resources = this.groupResources(v.resources, [...path, "resources"]);
    if (resources !== undefined) rule.resources = resources;
    const namespaces = this.strings(v.namespaces, [...path, "namespaces"]);
    if (namespaces !== undefined) rule.namespaces = namespaces;
    const urls = this.strings(v.nonResourceURLs, [...path, "nonResourceURLs"]);
    if (urls !== undefined) rule.nonResourceURLs = urls;
    const stages = this.strings(v.omitStages, [...path, "omitStages"]);
    if (stages !== undefined) rule.omitStages = stages as Stage[];
    const omf = this.bool(v.omitManagedFields, [...path, "omitManagedFields"]);
    if (omf !== undefined) rule.omitManagedFields = omf;
    return rule;
  }
}

/**
 * Reads a parsed policy document. Never throws: type problems come back as `errors`, unknown
 * fields as `warnings`. `apiVersion` and `kind` are copied as found (checked by the loader).
 *
 * @example
 * ```ts
 * const { policy, errors, warnings } = readPolicyShape({
 *   apiVersion: "audit.k8s.io/v1", kind: "Policy", rules: [{ level: "Metadata", colour: "red" }],
 * });
 * // errors: [], warnings: [{ path: ["rules", 0, "colour"], reason: 'unknown field "colour" (ignored)' }]
 * ```
 */
export function readPolicyShape(doc: unknown): ShapeResult {
  const r = new Reader();
  const policy = {} as Policy;
  if (!isMap(doc)) {
    r.errors.push({ path: [], reason: `a Policy must be a mapping, got ${show(doc)}` });
    policy.rules = [];
    return { policy, errors: r.errors, warnings: r.warnings };
  }
  r.unknownKeys(doc, POLICY_KEYS, []);
  // Copied unchecked here; the loader says what it expected when they are wrong.
  policy.apiVersion = doc.apiVersion as Policy["apiVersion"];
  policy.kind = doc.kind as Policy["kind"];
  if (doc.metadata !== undefined && doc.metadata !== null) {
    if (isMap(doc.metadata)) policy.metadata = doc.metadata;
    else {r.errors.push({
        path: ["metadata"],
        reason: `must be a mapping, got ${show(doc.metadata)}`,
      });}
  }
  policy.rules = [];
  if (doc.rules !== undefined && doc.rules !== null) {
    if (Array.isArray(doc.rules)) {
      for (let i = 0; i < doc.rules.length; i++) {
        policy.rules.push(r.rule(doc.rules[i], ["rules", i]));
      }
    } else {
      r.errors.push({ path: ["rules"], reason: `must be a list of rules, got ${show(doc.rules)}` });
    }
  }
  const stages = r.strings(doc.omitStages, ["omitStages"]);
  if (stages !== undefined) policy.omitStages = stages as Stage[];
  const omf = r.bool(doc.omitManagedFields, ["omitManagedFields"]);
  if (omf !== undefined) policy.omitManagedFields = omf;
  return { policy, errors: r.errors, warnings: r.warnings };
}
