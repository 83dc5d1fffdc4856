/**
 * What evaluating a policy decides for one event.
 *
 * @module
 */
import type { Level, Stage } from "../pipeline/core/event.ts";

/**
 * The level, stages to omit and managed-fields choice for an event, and which rule decided.
 * Results are shared and frozen: one object per rule of a compiled policy.
 *
 * @example
 * ```ts
 * const r: PolicyResult = { level: "Metadata", omitStages: ["RequestReceived"], omitManagedFields: false, rule: 0 };
 * ```
 */
export interface PolicyResult {
  readonly level: Level;
  /** In stage order: RequestReceived, ResponseStarted, ResponseComplete, Panic. */
  readonly omitStages: readonly Stage[];
  readonly omitManagedFields: boolean;
  /** Index of the matching rule in `rules`, or `null` when no rule matched (level None). */
  readonly rule: number | null;
}
