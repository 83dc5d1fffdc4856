/**
 * `${VAR}` and `${VAR:-default}` in config values: expanded in every scalar value (never in
 * keys), with the key path of each expanded value kept so the loader can coerce it to the
 * type the schema wants there and name the original text in errors.
 *
 * @module
 */
import { isMap, isScalar, isSeq } from "yaml";
import type { Document, Scalar } from "yaml";
import type { KeyPath } from "../core/problem.ts";

/**
 * Expands `${VAR}` and `${VAR:-default}`; `$${` stays a literal `${`.
 * Returns the text and the names of unset variables without a default.
 *
 * @example
 * ```ts
 * expandEnv("Bearer ${TOKEN:-none}", (k) => undefined); // { text: "Bearer none", missing: [], used: ["TOKEN"] }
 * ```
 */
export function expandEnv(
  text: string,
  lookup: (name: string) => string | undefined,
): { text: string; missing: string[]; used: string[] } {
  const missing: string[] = [];
  const used: string[] = [];
  const out = text.replace(/\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (m, name, def) => {
    if (m.startsWith("$$")) return m.slice(1);
    used.push(name);
    const v = lookup(name);
    if (v !== undefined && v !== "") return v;
    if (def !== undefined) return def;
    if (v === undefined) missing.push(name);
    return "";
  });
  return { text: out, missing, used };
}

/**
 * One scalar value that held `${...}`: where it is, what was written and what it became.
 *
 * @example
 * ```ts
 * const e: Expansion = { path: ["sources", 0, "maxInFlight"], written: "${MAX:-1024}", text: "1024", missing: [], offset: 40 };
 * ```
 */
export interface Expansion {
  readonly path: KeyPath;
  /** The value as written in the file. */
  readonly written: string;
  /** The value after expansion. */
  readonly text: string;
  /** Variables that are unset and have no default. */
  readonly missing: readonly string[];
  /** Where the value starts in the file. */
  readonly offset: number | undefined;
}

/**
 * Expands every scalar value of `doc` in place; returns each expansion and the variables used.
 *
 * @example
 * ```ts
 * const { expansions, used } = expandDocument(doc, (k) => Deno.env.get(k));
 * ```
 */
export function expandDocument(
  doc: Document,
  lookup: (name: string) => string | undefined,
): { expansions: Expansion[]; used: Set<string> } {
  const expansions: Expansion[] = [];
  const used = new Set<string>();
  const walk = (node: unknown, path: KeyPath): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (isScalar(pair.key)) walk(pair.value, [...path, String(pair.key.value)]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    } else if (isScalar(node)) {
      const scalar = node as Scalar;
      if (typeof scalar.value !== "string" || !scalar.value.includes("${")) return;
      const r = expandEnv(scalar.value, lookup);
      r.used.forEach((u) => used.add(u));
      expansions.push({
        path,
        written: scalar.value,
        text: r.text,
        missing: r.missing,
        offset: scalar.range?.[0],
      });
      scalar.value = r.text;
    }
  };
  walk(doc.contents, []);
  return { expansions, used };
}
