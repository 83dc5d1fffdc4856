/**
 * `policy eval`: the policy's decision for each event, one JSON line per event.
 *
 * @module
 */
import type { Envelope } from "../../pipeline/core/envelope.ts";
import type { Event, Level, Stage } from "../../pipeline/core/event.ts";
import { applyPolicy, type CompiledPolicy, evaluate } from "../../policy/mod.ts";
import type { LineWriter } from "./writer.ts";

/**
 * What `eval` prints for one event.
 *
 * @example
 * ```ts
 * const d: Decision = { auditID: "a", stage: "RequestReceived", level: "Metadata",
 *   omitStages: ["RequestReceived"], omitManagedFields: false, rule: 1, kept: false };
 * ```
 */
export interface Decision {
  readonly auditID: string;
  readonly stage: Stage;
  readonly level: Level;
  readonly omitStages: readonly Stage[];
  readonly omitManagedFields: boolean;
  /** Index of the matching rule, `null` when none matched (level None). */
  readonly rule: number | null;
  /** Whether the event is written at all: not at level None, and its stage not omitted. */
  readonly kept: boolean;
}

/**
 * The policy's decision for `event`.
 *
 * @example
 * ```ts
 * decide(compiled, event).kept; // false for an event at a stage in omitStages
 * ```
 */
export function decide(policy: CompiledPolicy, event: Event): Decision {
  const result = evaluate(policy, event);
  return {
    auditID: event.auditID,
    stage: event.stage,
    level: result.level,
    omitStages: result.omitStages,
    omitManagedFields: result.omitManagedFields,
    rule: result.rule,
    // The same test the pipeline's policy stage makes, so the two never disagree.
    kept: typeof applyPolicy(result, event) !== "string",
  };
}

/**
 * Writes one decision per event, as JSON lines, in input order.
 *
 * @example
 * ```ts
 * await evalEvents(compiled, readEvents(inputs, opts), new LineWriter(io.stdout));
 * ```
 */
export async function evalEvents(
  policy: CompiledPolicy,
  batches: AsyncIterable<readonly Envelope[]>,
  out: LineWriter,
): Promise<void> {
  for await (const batch of batches) {
    for (const { event } of batch) await out.line(JSON.stringify(decide(policy, event)));
  }
}
