/**
 * The counts `policy report` keeps for a group of events (those one rule decided, one user's,
 * all of them): events, kept, stage-omitted, bytes in and out.
 *
 * @module
 */

/**
 * Counts for the events of one group.
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
 * Zero counts.
 *
 * @example
 * ```ts
 * const s = newStats(); // { events: 0, kept: 0, omittedStage: 0, bytesIn: 0, bytesOut: 0 }
 * ```
 */
export function newStats(): RuleStats {
  return { events: 0, kept: 0, omittedStage: 0, bytesIn: 0, bytesOut: 0 };
}

/**
 * What a policy did with one event: the index of the rule that decided it (null: none did),
 * whether it is written or why not, and the bytes written.
 *
 * @example
 * ```ts
 * const o: Outcome = { rule: 2, dropped: null, bytesIn: 1200, bytesOut: 800 };
 * ```
 */
export interface Outcome {
  readonly rule: number | null;
  /** null when the event is written; else why not (level None, or an omitted stage). */
  readonly dropped: "policy" | "omitted_stage" | null;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/**
 * Counts one event's outcome into `s`.
 *
 * @example
 * ```ts
 * addOutcome(report.total, { rule: null, dropped: "policy", bytesIn: 700, bytesOut: 0 });
 * ```
 */
export function addOutcome(s: RuleStats, o: Outcome): void {
  s.events++;
  s.bytesIn += o.bytesIn;
  s.bytesOut += o.bytesOut;
  if (o.dropped === null) s.kept++;
  else if (o.dropped === "omitted_stage") s.omittedStage++;
}
