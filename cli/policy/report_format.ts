/**
 * Printing a {@linkcode PolicyReport}: an aligned table for people, or one JSON document.
 *
 * @module
 */
import { type CompiledPolicy, describeRule } from "../../policy/mod.ts";
import type { PolicyReport, RuleStats } from "./report.ts";

const NUMERIC_COLUMNS: ReadonlySet<number> = new Set([2, 3, 4, 5, 6]);

function neverMatched(report: PolicyReport): number[] {
  return report.rules.flatMap((s, i) => (s.events === 0 ? [i] : []));
}

/**
 * The report as one JSON document: `rules` (index, level, description and counts),
 * `noMatch`, `total` and `neverMatched` (rule indexes).
 *
 * @example
 * ```ts
 * await out.line(reportJson(compiled, report));
 * ```
 */
export function reportJson(policy: CompiledPolicy, report: PolicyReport): string {
  return JSON.stringify({
    rules: report.rules.map((s, i) => ({
      index: i,
      level: policy.policy.rules[i].level,
      description: describeRule(policy.policy.rules[i]),
      ...s,
    })),
    noMatch: report.noMatch,
    total: report.total,
    neverMatched: neverMatched(report),
  });
}

/** Columns padded to their widest cell; numbers to the right, the last column as it is. */
function pad(cells: string[][]): string[] {
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  return cells.map((row) =>
    row.map((cell, c) => {
      if (c === row.length - 1) return cell;
      return NUMERIC_COLUMNS.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]);
    }).join("  ").trimEnd()
  );
}

/**
 * The report as table lines: one row per rule, one for events no rule matched, a total, then
 * the rules never matched and the count of events matching no rule.
 *
 * @example
 * ```ts
 * for (const line of reportTable(compiled, report)) await out.line(line);
 * ```
 */
export function reportTable(policy: CompiledPolicy, report: PolicyReport): string[] {
  const row = (id: string, level: string, s: RuleStats, what: string) => [
    id,
    level,
    String(s.events),
    String(s.kept),
    String(s.omittedStage),
    String(s.bytesIn),
    String(s.bytesOut),
    what,
  ];
  const rules = policy.policy.rules;
  const cells = [
    ["RULE", "LEVEL", "EVENTS", "KEPT", "STAGE-OMITTED", "BYTES-IN", "BYTES-OUT", "CONDITIONS"],
    ...report.rules.map((s, i) => row(String(i), rules[i].level, s, describeRule(rules[i]))),
    row("-", "None", report.noMatch, "(no rule matched)"),
    row("total", "", report.total, ""),
  ];
  const never = neverMatched(report);
  return [
    ...pad(cells),
    "",
    never.length ? `rules never matched: ${never.join(", ")}` : "rules never matched: none",
    `events matching no rule: ${report.noMatch.events}`,
  ];
}
