/**
 * Looking up the schema of one key path in a config value: which keys an object accepts
 * (for did-you-mean) and which scalar type a value must have (to coerce `${VAR}` text).
 *
 * @module
 */
import { configSchema } from "./schema.ts";
import type { KeyPath } from "../core/problem.ts";

type ZodNode = { def: Record<string, unknown> & { type: string } };

/** Looks through defaults, optionals and transforms to the schema that checks the input. */
function unwrap(s: ZodNode): ZodNode {
  for (;;) {
    const d = s.def;
    if (d.innerType) s = d.innerType as ZodNode;
    else if (d.type === "pipe") s = d.in as ZodNode;
    else return s;
  }
}

/** A union's member for `val`: the one whose `type` literal matches, else the first. */
function step(node: ZodNode, val: unknown): ZodNode {
  node = unwrap(node);
  if (node.def.type !== "union") return node;
  const type = (val as { type?: unknown } | undefined)?.type;
  const options = node.def.options as ZodNode[];
  const match = options.find((o) => {
    const lit = (unwrap(o).def.shape as Record<string, ZodNode> | undefined)?.type;
    return lit && (lit.def.values as unknown[]).includes(type);
  });
  return unwrap(match ?? options[0]);
}

/** The schema of the value at `path` inside `value` (the whole config), if the schema has one. */
function schemaAt(path: KeyPath, value: unknown): ZodNode | undefined {
  let v = value;
  let s = step(configSchema as unknown as ZodNode, v);
  for (const p of path) {
    v = (v as Record<string | number, unknown> | undefined)?.[p];
    if (s.def.type === "array") s = step(s.def.element as ZodNode, v);
    else if (s.def.type === "object") {
      const next = (s.def.shape as Record<string, ZodNode>)[String(p)];
      if (!next) return undefined;
      s = step(next, v);
    } else if (s.def.type === "record") s = step(s.def.valueType as ZodNode, v);
    else return undefined;
  }
  return s;
}

/**
 * The keys the schema accepts for the object at `path`, for did-you-mean.
 *
 * @example
 * ```ts
 * keysAt(["sinks", 0], { sinks: [{ type: "stdout" }] }); // ["type", "format", "name", ...]
 * ```
 */
export function keysAt(path: KeyPath, value: unknown): string[] {
  const s = schemaAt(path, value);
  return s?.def.type === "object" ? Object.keys(s.def.shape as object) : [];
}

const NUMBER = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const BOOLEAN: Record<string, boolean> = {
  true: true,
  True: true,
  TRUE: true,
  false: false,
  False: false,
  FALSE: false,
};

/**
 * `text` as the scalar type the schema wants at `path` (number or boolean), read as YAML
 * would read it unquoted; otherwise `text` unchanged, for the schema to report.
 *
 * @example
 * ```ts
 * const config = { sources: [{ type: "webhook", maxInFlight: "1024" }] };
 * coerceAt(["sources", 0, "maxInFlight"], "1024", config); // 1024
 * ```
 */
export function coerceAt(path: KeyPath, text: string, value: unknown): unknown {
  const type = schemaAt(path, value)?.def.type;
  if (type === "number" && NUMBER.test(text)) return Number(text);
  if (type === "boolean" && Object.hasOwn(BOOLEAN, text)) return BOOLEAN[text];
  return text;
}
