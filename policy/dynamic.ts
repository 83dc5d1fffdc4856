/**
 * Dynamic audit policies: the `auditregistration.k8s.io/v1alpha1` AuditSink `spec.policy`
 * (`{level, stages}`) turned into the audit Policy an event is enforced against, as
 * kube-apiserver 1.13–1.18 did (`pkg/audit/policy/dynamic.go` `ConvertDynamicPolicyToInternal`
 * and `util.go` `InvertStages`): one rule at `level` that matches every request, and every
 * stage not listed omitted. Enforcing it is {@linkcode applyPolicy} (`enforce.go`).
 *
 * @module
 */
import { STAGES } from "../pipeline/core/event.ts";
import type { Event, Level, Stage } from "../pipeline/core/event.ts";
import type { Policy } from "./types.ts";
import { applyPolicy } from "./apply.ts";

/**
 * An AuditSink's `spec.policy`: the level every request is recorded at and the stages
 * events are sent for.
 *
 * @example
 * ```ts
 * const p: DynamicPolicy = { level: "Metadata", stages: ["ResponseComplete"] };
 * ```
 */
export interface DynamicPolicy {
  readonly level: Level;
  /** Required unless `level` is None; a stage not listed is dropped. */
  readonly stages?: readonly Stage[];
}

/**
 * Every stage that is not in `stages`, in stage order: what a dynamic policy omits.
 *
 * @example
 * ```ts
 * invertStages(["ResponseComplete"]); // ["RequestReceived", "ResponseStarted", "Panic"]
 * ```
 */
export function invertStages(stages: readonly Stage[]): Stage[] {
  const keep = new Set<string>(stages);
  return STAGES.filter((s) => !keep.has(s));
}

/**
 * The audit Policy a dynamic policy stands for: one rule at its level matching everything,
 * with the stages it does not list omitted.
 *
 * @example
 * ```ts
 * dynamicToPolicy({ level: "Request", stages: ["ResponseComplete"] });
 * // { apiVersion: "audit.k8s.io/v1", kind: "Policy", rules: [{ level: "Request" }],
 * //   omitStages: ["RequestReceived", "ResponseStarted", "Panic"] }
 * ```
 */
export function dynamicToPolicy(p: DynamicPolicy): Policy {
  return {
    apiVersion: "audit.k8s.io/v1",
    kind: "Policy",
    rules: [{ level: p.level }],
    omitStages: invertStages(p.stages ?? []),
  };
}

/**
 * `EnforcePolicy` of `enforce.go`: `"omitted_stage"` for an event at an omitted stage,
 * `"policy"` for level None, else the event with its level lowered to `level` and the
 * request/response objects that level does not keep removed. The input is never changed.
 * Unlike kube-apiserver, which captured every event at RequestResponse before enforcing, an
 * event that arrives below `level` is passed as it is: its missing objects cannot be
 * brought back, so its level is not raised.
 *
 * @example
 * ```ts
 * enforcePolicy(event, "Metadata", ["RequestReceived"]); // event without request/response objects
 * ```
 */
export function enforcePolicy(
  event: Event,
  level: Level,
  omitStages: readonly Stage[],
): Event | "policy" | "omitted_stage" {
  return applyPolicy({ level, omitStages, omitManagedFields: false, rule: 0 }, event);
}
