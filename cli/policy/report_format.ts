/**
 * Printing a {@linkcode ReportDocument}: an aligned table for people, or one JSON document.
 *
 * @module
 */
import type { ReportDocument, RuleCountsDocument } from "./report_document.ts";
import type { RuleStats } from "./report_stats.ts";

/**
 * The report as one JSON document: `rules` (index, level, description and counts),
 * `noMatch`, `total`, `neverMatched` (rule indexes), `top` (users, resources, verbs) and,
 * with `--compare`, `compare`.
 *
 * @example
 * ```ts
 * await out.line(reportJson(reportDocument(compiled, report)));
 * ```
 */
export function reportJson(doc: ReportDocument): string {
  return JSON.stringify(doc);
}

/** Columns padded to their widest cell; numbers to the right, the last column as it is. */
function pad(cells: string[][], numeric: (column: number) => boolean): string[] {
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  return cells.map((row) =>
    row.map((cell, c) => {
      if (c === row.length - 1) return cell;
      return numeric(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]);
    }).join("  ").trimEnd()
  );
}

function ruleTable(doc: RuleCountsDocument): string[] {
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
  const cells = [
    ["RULE", "LEVEL", "EVENTS", "KEPT", "STAGE-OMITTED", "BYTES-IN", "BYTES-OUT", "CONDITIONS"],
    ...doc.rules.map((r) => row(String(r.index), r.level, r, r.description)),
    row("-", "None", doc.noMatch, "(no rule matched)"),
    row("total", "", doc.total, ""),
  ];
  return pad(cells, (c) => c >= 2 && c <= 6);
}

function neverLine(doc: RuleCountsDocument): string {
  const never = doc.neverMatched;
  return never.length ? `rules never matched: ${never.join(", ")}` : "rules never matched: none";
}

function compareLines(doc: ReportDocument): string[] {
  const c = doc.compare;
  if (c === undefined) return [];
  const row = (id: string, mine: RuleStats, other: RuleStats & { savedBytes: number }) => [
    id,
    String(mine.events),
    String(mine.kept),
    String(mine.bytesOut),
    String(other.kept),
    String(other.bytesOut),
    String(other.savedBytes),
  ];
  const cells = [
    ["RULE", "EVENTS", "KEPT", "BYTES-OUT", "OTHER-KEPT", "OTHER-BYTES-OUT", "SAVED"],
    ...c.perRule.map((o) => row(String(o.index), doc.rules[o.index], o)),
    row("-", doc.noMatch, c.perRuleNoMatch),
    row("total", doc.total, { ...c.total, savedBytes: c.savedBytes }),
  ];
  return [
    "",
    `compared with ${c.policy}: what it writes of the events each rule above decided`,
    ...pad(cells, (col) => col >= 1),
    "",
    `${c.policy} on its own:`,
    ...ruleTable(c),
    "",
    neverLine(c),
  ];
}

/**
 * The report as table lines: one row per rule, one for events no rule matched, a total, then
 * the rules never matched and the count of events matching no rule; with `--compare`, what
 * the other policy writes per rule of the first, and its own table.
 *
 * @example
 * ```ts
 * for (const line of reportTable(doc)) await out.line(line);
 * ```
 */
export function reportTable(doc: ReportDocument): string[] {
  return [
    ...ruleTable(doc),
    "",
    neverLine(doc),
    `events matching no rule: ${doc.noMatch.events}`,
    ...compareLines(doc),
  ];
}
