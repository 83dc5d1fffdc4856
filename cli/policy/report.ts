/**
 * `policy report`: per rule of a policy, how many events it matched and kept, and the bytes
 * before and after; the same per user, resource and verb; and, given a second policy, what
 * that one would do with the same events.
 *
 * @module
 */
import { jsonSize } from "../../pipeline/core/encode.ts";
import type { Envelope } from "../../pipeline/core/envelope.ts";
import type { Event } from "../../pipeline/core/event.ts";
import { applyPolicy, type CompiledPolicy, evaluate, requestPath } from "../../policy/mod.ts";
import { addOutcome, newStats, type Outcome, type RuleStats } from "./report_stats.ts";
import { Tally } from "./report_tally.ts";

export type { RuleStats } from "./report_stats.ts";

/**
 * A policy's counts on a run: per rule (by index), for events no rule matched, and in total.
 *
 * @example
 * ```ts
 * const c: RuleCounts = { rules: [newStats()], noMatch: newStats(), total: newStats() };
 * ```
 */
export interface RuleCounts {
  readonly rules: RuleStats[];
  readonly noMatch: RuleStats;
  readonly total: RuleStats;
}

/**
 * What a second policy does with the events of the run: its own {@linkcode RuleCounts}, and
 * its counts on the events each rule of the first policy decided (`perRule`, by the first
 * policy's rule index; `perRuleNoMatch` for those no rule of the first matched).
 *
 * @example
 * ```ts
 * const saved = report.rules[0].bytesOut - report.compare!.perRule[0].bytesOut;
 * ```
 */
export interface ComparedCounts extends RuleCounts {
  readonly perRule: RuleStats[];
  readonly perRuleNoMatch: RuleStats;
}

/**
 * The counts of a whole run: per rule, per user, resource and verb (names as in
 * {@linkcode userOf}, {@linkcode resourceOf}; the verb as logged), and with a second policy.
 *
 * @example
 * ```ts
 * const report: PolicyReport = await reportEvents(compiled, batches);
 * report.total.events;
 * ```
 */
export interface PolicyReport extends RuleCounts {
  readonly users: Tally;
  readonly resources: Tally;
  readonly verbs: Tally;
  readonly compare?: ComparedCounts;
}

function newCounts(policy: CompiledPolicy): RuleCounts {
  return { rules: policy.rules.map(newStats), noMatch: newStats(), total: newStats() };
}

function outcome(policy: CompiledPolicy, envelope: Envelope, bytesIn: number): Outcome {
  const result = evaluate(policy, envelope.event);
  const applied = applyPolicy(result, envelope.event);
  let bytesOut = 0;
  if (applied === envelope.event) bytesOut = bytesIn;
  else if (typeof applied !== "string") bytesOut = jsonSize({ event: applied });
  return {
    rule: result.rule,
    dropped: typeof applied === "string" ? applied : null,
    bytesIn,
    bytesOut,
  };
}

function count(c: RuleCounts, o: Outcome): void {
  addOutcome(o.rule === null ? c.noMatch : c.rules[o.rule], o);
  addOutcome(c.total, o);
}

/**
 * The name an event's user is counted under: `user.username` as logged (`""` when absent).
 *
 * @example
 * ```ts
 * userOf(event); // "system:kube-scheduler"
 * ```
 */
export function userOf(event: Event): string {
  return event.user.username ?? "";
}

/**
 * The name an event's target is counted under: `GROUP/RESOURCE[/SUBRESOURCE]` (`core` for the
 * core group, as rule descriptions say) for a resource request, else the request path
 * (`/healthz`, without the query).
 *
 * @example
 * ```ts
 * resourceOf(event); // "apps/deployments/scale", "core/pods", "/readyz"
 * ```
 */
export function resourceOf(event: Event): string {
  const ref = event.objectRef;
  if (ref?.resource === undefined || ref.resource === "") return requestPath(event.requestURI);
  const group = ref.apiGroup === undefined || ref.apiGroup === "" ? "core" : ref.apiGroup;
  const sub = ref.subresource ? `/${ref.subresource}` : "";
  return `${group}/${ref.resource}${sub}`;
}

/**
 * Reads all events and counts what the policy (and `compare`, when given) does with them.
 *
 * @example
 * ```ts
 * const report = await reportEvents(compiled, readEvents(inputs, opts));
 * ```
 */
export async function reportEvents(
  policy: CompiledPolicy,
  batches: AsyncIterable<readonly Envelope[]>,
  compare?: CompiledPolicy,
): Promise<PolicyReport> {
  const report: PolicyReport = {
    ...newCounts(policy),
    users: new Tally(),
    resources: new Tally(),
    verbs: new Tally(),
    compare: compare === undefined ? undefined : {
      ...newCounts(compare),
      perRule: policy.rules.map(newStats),
      perRuleNoMatch: newStats(),
    },
  };
  for await (const batch of batches) {
    for (const envelope of batch) {
      const o = outcome(policy, envelope, jsonSize(envelope));
      count(report, o);
      const event = envelope.event;
      addOutcome(report.users.stats(userOf(event)), o);
      addOutcome(report.resources.stats(resourceOf(event)), o);
      addOutcome(report.verbs.stats(event.verb), o);
      const c = report.compare;
      if (compare === undefined || c === undefined) continue;
      const other = outcome(compare, envelope, o.bytesIn);
      count(c, other);
      addOutcome(o.rule === null ? c.perRuleNoMatch : c.perRule[o.rule], other);
    }
  }
  return report;
}
