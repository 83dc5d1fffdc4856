/**
 * `policy report`: per rule of a policy, how many events it matched and kept, and the bytes
 * before and after.
 *
 * @module
 */
import { jsonSize } from "../../pipeline/core/encode.ts";
import type { Envelope } from "../../pipeline/core/envelope.ts";
import { applyPolicy, type CompiledPolicy, evaluate } from "../../policy/mod.ts";

/**
 * Counts for the events one rule decided (or no rule, or all).
 *
 * @example
 * ```ts
 * const s: RuleStats = { events: 2, kept: 1, omittedStage: 1, bytesIn: 2048, bytesOut: 900 };
 * ```
 */
export interface RuleStats {
  events: number;
  /** Written (not at level None, stage not omitted). */
  kept: number;
  /** Dropped because their stage is in omitStages. */
  omittedStage: number;
  /** Sizes as kube-apiserver's JSON log writes them, line end included. */
  bytesIn: number;
  bytesOut: number;
}

/**
 * The counts of a whole run: per rule (by index), for events no rule matched, and in total.
 *
 * @example
 * ```ts
 * const report: PolicyReport = await reportEvents(compiled, batches);
 * report.total.events;
 * ```
 */
export interface PolicyReport {
  readonly rules: RuleStats[];
  readonly noMatch: RuleStats;
  readonly total: RuleStats;
}

function newStats(): RuleStats {
  return { events: 0, kept: 0, omittedStage: 0, bytesIn: 0, bytesOut: 0 };
}

/**
 * Reads all events and counts what the policy does with them.
 *
 * @example
 * ```ts
 * const report = await reportEvents(compiled, readEvents(inputs, opts));
 * ```
 */
export async function reportEvents(
  policy: CompiledPolicy,
  batches: AsyncIterable<readonly Envelope[]>,
): Promise<PolicyReport> {
  const report: PolicyReport = {
    rules: policy.rules.map(newStats),
    noMatch: newStats(),
    total: newStats(),
  };
  for await (const batch of batches) {
    for (const envelope of batch) {
      const result = evaluate(policy, envelope.event);
      const applied = applyPolicy(result, envelope.event);
      const bytesIn = jsonSize(envelope);
      let bytesOut = 0;
      if (applied === envelope.event) bytesOut = bytesIn;
      else if (typeof applied !== "string") bytesOut = jsonSize({ event: applied });
      const rule = result.rule === null ? report.noMatch : report.rules[result.rule];
      for (const s of [rule, report.total]) {
        s.events++;
        s.bytesIn += bytesIn;
        s.bytesOut += bytesOut;
        if (typeof applied !== "string") s.kept++;
        else if (applied === "omitted_stage") s.omittedStage++;
      }
    }
  }
  return report;
}
