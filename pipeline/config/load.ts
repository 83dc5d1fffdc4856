/**
 * Loading a pipeline config: YAML with positions, `${VAR}` / `${VAR:-default}` expansion,
 * schema validation with defaults, unknown keys with did-you-mean, unique names, and paths
 * made absolute against the config file's folder.
 *
 * @module
 */
import { isMap, isScalar, LineCounter, parseDocument, visit } from "yaml";
import type { Document, Node as YamlNode, YAMLError } from "yaml";
import type { z } from "zod";
import { dirname, isAbsolute, resolve } from "node:path";
import { type Config, configSchema } from "./schema.ts";
import { ConfigError, type ConfigProblem, formatPath, type KeyPath, suggest } from "./errors.ts";
import { expandDocument } from "./env.ts";
import { coerceAt, keysAt } from "./schema_at.ts";

export { expandEnv } from "./env.ts";

/** A loaded config and what it took from outside the file. */
export interface LoadedConfig {
  readonly config: Config;
  /** The config file's path as given. */
  readonly file: string;
  /** Environment variables the config expanded, for `--allow-env`. */
  readonly envVars: readonly string[];
  /** Where a key path sits in the file, for errors found later (missing files, policies). */
  position(path: KeyPath): { line: number; col: number };
}

function nodeAt(doc: Document, path: KeyPath): { node?: YamlNode; key?: YamlNode } {
  let node: unknown = doc.contents;
  let key: YamlNode | undefined;
  for (const p of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && it.key.value === p);
      if (!pair) return { node: node as YamlNode, key };
      key = pair.key as YamlNode;
      node = pair.value;
    } else if (node && typeof node === "object" && "items" in node && typeof p === "number") {
      node = (node as { items: unknown[] }).items[p];
      key = undefined;
    } else return { node: node as YamlNode, key };
  }
  return { node: node as YamlNode, key };
}

function setIn(root: unknown, path: KeyPath, value: unknown): void {
  let obj = root as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) obj = obj[p] as Record<string | number, unknown>;
  obj[path[path.length - 1]] = value;
}

function show(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/**
 * Parses and validates a config text. Throws {@linkcode ConfigError} listing every problem.
 *
 * @example
 * ```ts
 * const { config } = loadConfigText(await Deno.readTextFile("pipeline.yaml"), "pipeline.yaml");
 * ```
 */
export function loadConfigText(
  text: string,
  file: string,
  env: (name: string) => string | undefined = (k) => Deno.env.get(k),
): LoadedConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  const at = (offset: number | undefined): { line: number; col: number } =>
    offset === undefined ? { line: 1, col: 1 } : lc.linePos(offset);
  const position = (path: KeyPath) => {
    const { node, key } = nodeAt(doc, path);
    return at((key ?? node)?.range?.[0]);
  };
  const problem = (path: KeyPath, message: string, pos = position(path)) =>
    problems.push({ file, ...pos, path: formatPath(path), message });

  for (const e of doc.errors) problems.push(syntaxProblem(doc, e, file, at));
  if (problems.length) throw new ConfigError(problems);
  if (doc.contents === null) {
    throw new ConfigError([{ file, line: 1, col: 1, path: "", message: "config is empty" }]);
  }

  const { expansions, used } = expandDocument(doc, env);
  for (const e of expansions) {
    if (!e.missing.length) continue;
    problems.push({
      file,
      ...at(e.offset),
      path: "",
      message: `environment variable ${e.missing.join(", ")} is not set (write \${${
        e.missing[0]
      }:-default} for a default)`,
    });
  }

  const js = doc.toJS() as unknown;
  if (typeof js !== "object" || js === null || Array.isArray(js)) {
    throw new ConfigError([{
      file,
      line: 1,
      col: 1,
      path: "",
      message: "config must be a mapping",
    }]);
  }
  // Expansion gives text; where the schema wants a number or boolean, read it as one.
  const written = new Map<string, string>();
  for (const e of expansions) {
    written.set(formatPath(e.path), e.written);
    setIn(js, e.path, coerceAt(e.path, e.text, js));
  }
  const parsed = configSchema.safeParse(js);
  if (!parsed.success) {
    const fromEnv = (path: KeyPath, message: string, pos?: { line: number; col: number }) => {
      const w = written.get(formatPath(path));
      problem(path, w === undefined ? message : `${message} (from ${w})`, pos);
    };
    for (const issue of parsed.error.issues) reportIssue(issue, js, fromEnv, position);
  }
  if (problems.length || !parsed.success) throw new ConfigError(problems);

  const config = parsed.data;
  checkNames(config, problem);
  if (problems.length) throw new ConfigError(problems);
  resolvePaths(config, dirname(file));
  return { config, file, envVars: [...used].sort(), position };
}

/**
 * A YAML syntax error where it is. With prettyErrors off npm:yaml leaves `linePos` unset, so
 * the offset is mapped here; an unclosed quote is reported where it opens, since the parser
 * only notices at the end of the file.
 */
function syntaxProblem(
  doc: Document,
  e: YAMLError,
  file: string,
  at: (offset: number) => { line: number; col: number },
): ConfigProblem {
  const message = e.message.split("\n")[0];
  let offset = e.pos[0];
  if (e.code === "MISSING_CHAR" && /quote/.test(message)) {
    visit(doc, {
      Scalar(_key, node) {
        const quoted = node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE";
        if (quoted && node.range && node.range[0] < offset && node.range[1] >= offset) {
          offset = node.range[0];
          return visit.BREAK;
        }
      },
    });
    if (offset !== e.pos[0]) {
      return { file, ...at(offset), path: "", message: `${message}: this string is never closed` };
    }
  }
  return { file, ...at(offset), path: "", message };
}

function reportIssue(
  issue: z.core.$ZodIssue,
  js: unknown,
  problem: (path: KeyPath, message: string, pos?: { line: number; col: number }) => void,
  position: (path: KeyPath) => { line: number; col: number },
): void {
  const path = issue.path as (string | number)[];
  const value = path.reduce<unknown>((v, p) => (v as Record<string | number, unknown>)?.[p], js);
  if (issue.code === "unrecognized_keys") {
    const known = keysAt(path, js);
    for (const k of issue.keys) {
      const hint = suggest(k, known);
      problem(
        [...path, k],
        `unknown key${hint ? `; did you mean "${hint}"?` : ""}` +
          (known.length && !hint ? ` (known keys: ${known.join(", ")})` : ""),
        position([...path, k]),
      );
    }
    return;
  }
  if (issue.code === "invalid_union" && "discriminator" in issue && issue.discriminator) {
    const options = (issue as { options?: unknown[] }).options ?? [];
    const hint = typeof value === "string" ? suggest(value, options.map(String)) : undefined;
    problem(
      path,
      value === undefined
        ? `missing; must be one of ${options.join(", ")}`
        : `must be one of ${options.join(", ")}, got ${show(value)}${
          hint ? `; did you mean "${hint}"?` : ""
        }`,
    );
    return;
  }
  let message = issue.message;
  if (issue.code === "invalid_type" && value === undefined) message = "is required";
  problem(path, message);
}

function checkNames(
  config: Config,
  problem: (path: KeyPath, message: string) => void,
): void {
  for (const list of ["sources", "sinks"] as const) {
    const items: { type: string; name?: string }[] = config[list];
    const counts = new Map<string, number>();
    for (const it of items) counts.set(it.type, (counts.get(it.type) ?? 0) + 1);
    const seen = new Map<string, number>();
    items.forEach((it, i) => {
      it.name ??= counts.get(it.type) === 1 ? it.type : `${it.type}${i}`;
      const first = seen.get(it.name);
      if (first !== undefined) {
        problem([list, i, "name"], `duplicate name "${it.name}" (also ${list}[${first}])`);
      } else seen.set(it.name, i);
    });
  }
}

function resolvePaths(config: Config, base: string): void {
  const abs = (p: string) => (p === "-" || isAbsolute(p) ? p : resolve(base, p));
  if (typeof config.policy === "string") config.policy = abs(config.policy);
  for (const s of config.sources) {
    if (s.type === "tail") {
      s.path = abs(s.path);
      if (s.checkpointFile) s.checkpointFile = abs(s.checkpointFile);
    } else if (s.type === "webhook") {
      if (s.tls) {
        s.tls.certFile = abs(s.tls.certFile);
        s.tls.keyFile = abs(s.tls.keyFile);
        if (s.tls.clientCAFile) s.tls.clientCAFile = abs(s.tls.clientCAFile);
      }
      if (s.auth?.bearerTokenFile) s.auth.bearerTokenFile = abs(s.auth.bearerTokenFile);
      if (s.deadLetterFile) s.deadLetterFile = abs(s.deadLetterFile);
    } else if (s.type === "nats") resolveNatsFiles(s, abs);
  }
  for (const s of config.sinks) {
    if (typeof s.policy === "string") s.policy = abs(s.policy);
    if (s.buffer.path !== undefined) s.buffer.path = abs(s.buffer.path);
    if (s.type === "log") {
      s.path = abs(s.path);
      if (s.integrity) s.integrity.signingKey = abs(s.integrity.signingKey);
    }
    if (s.type === "webhook") s.kubeconfig = abs(s.kubeconfig);
    if (s.type === "nats") resolveNatsFiles(s, abs);
  }
}

function resolveNatsFiles(
  s: {
    tls?: { caFile?: string; certFile?: string; keyFile?: string };
    auth?: { tokenFile?: string; passwordFile?: string; credsFile?: string };
  },
  abs: (p: string) => string,
): void {
  const { tls, auth } = s;
  if (tls?.caFile) tls.caFile = abs(tls.caFile);
  if (tls?.certFile) tls.certFile = abs(tls.certFile);
  if (tls?.keyFile) tls.keyFile = abs(tls.keyFile);
  if (auth?.tokenFile) auth.tokenFile = abs(auth.tokenFile);
  if (auth?.passwordFile) auth.passwordFile = abs(auth.passwordFile);
  if (auth?.credsFile) auth.credsFile = abs(auth.credsFile);
}

/**
 * Reads and validates a config file. Throws {@linkcode ConfigError}.
 *
 * @example
 * ```ts
 * const loaded = await loadConfigFile("pipeline.yaml");
 * ```
 */
export async function loadConfigFile(
  file: string,
  env?: (name: string) => string | undefined,
): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    const reason = err instanceof Deno.errors.NotFound ? "file not found" : (err as Error).message;
    throw new ConfigError([{ file, line: 0, col: 0, path: "", message: reason }]);
  }
  return loadConfigText(text, file, env);
}
