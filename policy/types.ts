/**
 * The `audit.k8s.io/v1` Policy as written in a policy file, with the JSON field names
 * kube-apiserver reads (k8s.io/apiserver `pkg/apis/audit/v1/types.go`).
 *
 * @module
 */
import type { Level, Stage } from "../pipeline/core/event.ts";

export type { Level, Stage };

/**
 * Resources of one API group a rule applies to.
 *
 * @example
 * ```ts
 * const gr: GroupResources = { group: "", resources: ["pods", "pods/log"] };
 * ```
 */
export interface GroupResources {
  /** `""` is the core group; `"*"` matches every group. */
  group?: string;
  /** `"*"`, `"pods"`, `"pods/log"`, `"pods/*"` or `"*\/scale"`; empty means all of the group. */
  resources?: string[];
  /** Object names; empty means any name. */
  resourceNames?: string[];
}

/**
 * One policy rule: the first rule whose checks all pass decides the level.
 *
 * @example
 * ```ts
 * const rule: PolicyRule = { level: "Metadata", resources: [{ group: "", resources: ["secrets"] }] };
 * ```
 */
export interface PolicyRule {
  level: Level;
  users?: string[];
  userGroups?: string[];
  verbs?: string[];
  resources?: GroupResources[];
  /** `""` matches cluster-scoped resources. */
  namespaces?: string[];
  /** `"*"`, an exact path, or a path prefix ending in `*`. */
  nonResourceURLs?: string[];
  omitStages?: Stage[];
  /** When present, overrides the policy's value for this rule. */
  omitManagedFields?: boolean;
}

/**
 * An `audit.k8s.io/v1` Policy.
 *
 * @example
 * ```ts
 * const policy: Policy = {
 *   apiVersion: "audit.k8s.io/v1",
 *   kind: "Policy",
 *   omitStages: ["RequestReceived"],
 *   rules: [{ level: "Metadata" }],
 * };
 * ```
 */
export interface Policy {
  apiVersion: "audit.k8s.io/v1";
  kind: "Policy";
  /** Ignored, accepted because `kubectl` style manifests carry it. */
  metadata?: Record<string, unknown>;
  rules: PolicyRule[];
  omitStages?: Stage[];
  omitManagedFields?: boolean;
}
