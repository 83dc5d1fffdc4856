/**
 * The report as one document: what `--json` prints and what the HTML page draws, so the
 * numbers in both are the same.
 *
 * @module
 */
import { type CompiledPolicy, describeRule, type Level } from "../../policy/mod.ts";
import type { ComparedCounts, PolicyReport, RuleCounts } from "./report.ts";
import type { RuleStats } from "./report_stats.ts";
import type { RankedStats } from "./report_tally.ts";

/**
 * How many users, resources and verbs the top lists hold unless `--top` says otherwise.
 *
 * @example
 * ```ts
 * reportDocument(compiled, report, { top: DEFAULT_TOP });
 * ```
 */
export const DEFAULT_TOP = 10;

/**
 * One rule's counts, with the rule.
 *
 * @example
 * ```ts
 * const r: RuleRow = { index: 0, level: "None", description: "users=system:kube-proxy",
 *   events: 3, kept: 0, omittedStage: 0, bytesIn: 2400, bytesOut: 0 };
 * ```
 */
export interface RuleRow extends RuleStats {
  readonly index: number;
  readonly level: Level;
  readonly description: string;
}

/**
 * A policy's per-rule counts as the document gives them; `neverMatched` lists rule indexes.
 *
 * @example
 * ```ts
 * const unused = doc.neverMatched.map((i) => doc.rules[i].description);
 * ```
 */
export interface RuleCountsDocument {
  readonly rules: RuleRow[];
  readonly noMatch: RuleStats;
  readonly total: RuleStats;
  readonly neverMatched: number[];
}

/**
 * A second policy's counts on the events a rule of the first decided, and the bytes it would
 * save on them (negative: it writes more).
 *
 * @example
 * ```ts
 * const row: CompareRow = { events: 4, kept: 4, omittedStage: 0, bytesIn: 8000,
 *   bytesOut: 3000, savedBytes: 5000 };
 * ```
 */
export interface CompareRow extends RuleStats {
  readonly savedBytes: number;
}

/**
 * The `--compare` part: the other policy's own per-rule counts, `perRule` (by the first
 * policy's rule index, and `perRuleNoMatch`) and `savedBytes` over all events.
 *
 * @example
 * ```ts
 * console.log(`${doc.compare?.policy} saves ${doc.compare?.savedBytes} bytes`);
 * ```
 */
export interface CompareDocument extends RuleCountsDocument {
  readonly policy: string;
  readonly perRule: (CompareRow & { readonly index: number })[];
  readonly perRuleNoMatch: CompareRow;
  readonly savedBytes: number;
}

/**
 * The whole report: the first four keys are those `--json` always printed; `top` and
 * `compare` were added after (`compare` only with `--compare`).
 *
 * @example
 * ```ts
 * const doc: ReportDocument = reportDocument(compiled, report);
 * doc.top.users[0]?.name;
 * ```
 */
export interface ReportDocument extends RuleCountsDocument {
  /** The largest by bytes written; see {@linkcode RankedStats} for the `other` bucket. */
  readonly top: {
    readonly users: RankedStats[];
    readonly resources: RankedStats[];
    readonly verbs: RankedStats[];
  };
  readonly compare?: CompareDocument;
}

/**
 * What the document is made with besides the counts.
 *
 * @example
 * ```ts
 * const opts: DocumentOptions = { top: 20, compare: { path: "strict.yaml", policy: strict } };
 * ```
 */
export interface DocumentOptions {
  /** Length of each top list; {@linkcode DEFAULT_TOP} by default. */
  readonly top?: number;
  /** The second policy the report was counted with, and the path it was read from. */
  readonly compare?: { readonly path: string; readonly policy: CompiledPolicy };
}

function countsDocument(policy: CompiledPolicy, counts: RuleCounts): RuleCountsDocument {
  const rules = policy.policy.rules;
  return {
    rules: counts.rules.map((s, i) => ({
      index: i,
      level: rules[i].level,
      description: describeRule(rules[i]),
      ...s,
    })),
    noMatch: counts.noMatch,
    total: counts.total,
    neverMatched: counts.rules.flatMap((s, i) => (s.events === 0 ? [i] : [])),
  };
}

function compareDocument(
  report: PolicyReport,
  counts: ComparedCounts,
  path: string,
  policy: CompiledPolicy,
): CompareDocument {
  const row = (mine: RuleStats, other: RuleStats): CompareRow => ({
    ...other,
    savedBytes: mine.bytesOut - other.bytesOut,
  });
  return {
    policy: path,
    ...countsDocument(policy, counts),
    perRule: counts.perRule.map((s, index) => ({ index, ...row(report.rules[index], s) })),
    perRuleNoMatch: row(report.noMatch, counts.perRuleNoMatch),
    savedBytes: report.total.bytesOut - counts.total.bytesOut,
  };
}

/**
 * Builds the document from a run's counts.
 *
 * @example
 * ```ts
 * const doc = reportDocument(compiled, await reportEvents(compiled, batches));
 * ```
 */
export function reportDocument(
  policy: CompiledPolicy,
  report: PolicyReport,
  opts: DocumentOptions = {},
): ReportDocument {
  const n = opts.top ?? DEFAULT_TOP;
  const doc: ReportDocument = {
    ...countsDocument(policy, report),
    top: {
      users: report.users.top(n),
      resources: report.resources.top(n),
      verbs: report.verbs.top(n),
    },
  };
  if (report.compare === undefined || opts.compare === undefined) return doc;
  return {
    ...doc,
    compare: compareDocument(report, report.compare, opts.compare.path, opts.compare.policy),
  };
}
