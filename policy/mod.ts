/**
 * The audit Policy engine: load and validate `audit.k8s.io/v1` Policy documents, compile them
 * once, evaluate events against them and apply the result. Pure: no I/O, no clocks.
 *
 * @example
 * ```ts
 * import { applyPolicy, compilePolicy, evaluate, parsePolicy } from "./policy/mod.ts";
 * const compiled = compilePolicy(parsePolicy(text, "policy.yaml").policy);
 * const out = applyPolicy(evaluate(compiled, event), event);
 * ```
 *
 * @module
 */
export type { GroupResources, Level, Policy, PolicyRule, Stage } from "./types.ts";
export type { PolicyResult } from "./result.ts";
export {
  type FieldPath,
  formatField,
  formatProblem,
  PolicyError,
  type PolicyProblem,
  type Position,
  type PositionLookup,
} from "./errors.ts";
export { type LoadedPolicy, parsePolicy, policyFromObject } from "./load.ts";
export { validatePolicy } from "./validate.ts";
export {
  type CompiledGroupResources,
  type CompiledPolicy,
  type CompiledRule,
  type CompiledURLs,
  compilePolicy,
  type RuleScope,
} from "./compile.ts";
export { evaluate } from "./evaluate.ts";
export { applyPolicy, stripManagedFields } from "./apply.ts";
export { requestPath } from "./attributes.ts";
export { describeRule } from "./describe.ts";
