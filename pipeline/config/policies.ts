/**
 * The policies a config names, each read and compiled once however many sinks use it. A
 * policy's problems keep their own position: a policy file's are in that file; an inline
 * policy's are in the config, under the key that holds it (`sinks[1].policy.rules[0].level`).
 *
 * @module
 */
import {
  type CompiledPolicy,
  compilePolicy,
  parsePolicy,
  PolicyError,
  policyFromObject,
} from "../../policy/mod.ts";
import { formatPath, joinPath, type KeyPath, type Problem } from "../core/problem.ts";
import type { LoadedConfig } from "./load.ts";

/**
 * A sink's policy, compiled, and where it came from.
 *
 * @example
 * ```ts
 * const p: ResolvedPolicy = { compiled, from: "/etc/auditpipe/policy.yaml", canonical: "{...}" };
 * ```
 */
export interface ResolvedPolicy {
  readonly compiled: CompiledPolicy;
  /** The policy file's path, or `inline` for a policy written in the config. */
  readonly from: string;
  /** The policy as JSON, so a reload sees an edit of its file. */
  readonly canonical: string;
}

/**
 * Reads and compiles policy references, caching by reference.
 *
 * @example
 * ```ts
 * const policies = new PolicyCache(loaded, readText, problems, warnings);
 * const policy = await policies.get(["sinks", 0, "policy"], sink.policy);
 * ```
 */
export class PolicyCache {
  readonly #cache = new Map<string, ResolvedPolicy | null>();

  constructor(
    private readonly loaded: LoadedConfig,
    /** Reads a file named at a key path; reports a problem there and returns undefined if it cannot. */
    private readonly readText: (at: KeyPath, name: string) => Promise<string | undefined>,
    private readonly problems: Problem[],
    private readonly warnings: string[],
  ) {}

  /** The policy `ref` names (a path or an inline policy) at `at`; null when none or broken. */
  async get(at: KeyPath, ref: unknown): Promise<ResolvedPolicy | null> {
    if (ref === undefined) return null;
    const key = typeof ref === "string" ? ref : JSON.stringify(ref);
    if (!this.#cache.has(key)) this.#cache.set(key, await this.#load(at, ref));
    return this.#cache.get(key)!;
  }

  async #load(at: KeyPath, ref: unknown): Promise<ResolvedPolicy | null> {
    const { file, position } = this.loaded;
    let text: string | undefined;
    if (typeof ref === "string") {
      text = await this.readText(at, ref);
      if (text === undefined) return null;
    }
    try {
      const p = typeof ref === "string"
        ? parsePolicy(text!, ref)
        : policyFromObject(ref, file, (sub) => position([...at, ...sub]));
      this.warnings.push(...p.warnings);
      return {
        compiled: compilePolicy(p.policy),
        from: typeof ref === "string" ? ref : "inline",
        canonical: JSON.stringify(p.policy),
      };
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      const under = typeof ref === "string" ? "" : formatPath(at);
      for (const p of err.problems) this.problems.push({ ...p, path: joinPath(under, p.path) });
      return null;
    }
  }
}
