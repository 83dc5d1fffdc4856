/**
 * `policy report --html`: the {@linkcode ReportDocument} as one self-contained HTML page.
 * Styles, the table-sorting script and the SVG charts are inline and the page's Content
 * Security Policy forbids every fetch, so it opens anywhere, offline, and sends nothing. Every
 * string from the log or the command line is escaped.
 *
 * @module
 */
import { escapeHtml } from "./html_escape.ts";
import type {
  CompareDocument,
  CompareRow,
  ReportDocument,
  RuleCountsDocument,
  RuleRow,
} from "./report_document.ts";
import type { RuleStats } from "./report_stats.ts";
import type { RankedStats } from "./report_tally.ts";
import { type BarRow, svgBars } from "./svg_bars.ts";

/**
 * What the page says about the run besides the counts: the files it read.
 *
 * @example
 * ```ts
 * const meta: PageMeta = { policy: "policy.yaml", inputs: ["audit.log", "audit.log.1.gz"] };
 * ```
 */
export interface PageMeta {
  readonly policy: string;
  readonly inputs: readonly string[];
}

/**
 * The page's Content Security Policy: inline styles and script only; no fetch of any kind.
 *
 * @example
 * ```ts
 * html.includes(PAGE_CSP); // true
 * ```
 */
export const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

/** A whole number with thousands separators: `1,234,567`. */
function int(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`. */
function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Math.abs(n);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const text = u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
  return n < 0 ? `-${text}` : text;
}

function percent(part: number, whole: number): string {
  return whole === 0 ? "–" : `${((part / whole) * 100).toFixed(1)}%`;
}

const esc = escapeHtml;

function num(n: number): string {
  return `<td class="num" data-v="${n}">${int(n)}</td>`;
}

function text(s: string, cls = ""): string {
  return `<td${cls ? ` class="${cls}"` : ""}>${esc(s)}</td>`;
}

/** How a name from the log reads on the page: an empty one, or the bucket past the cap. */
function display(e: RankedStats): string {
  if (e.other) return "(other names)";
  return e.name === "" ? "(none)" : e.name;
}

function ruleLabel(r: RuleRow): string {
  return `#${r.index} ${r.level} ${r.description}`;
}

function headRow(cols: readonly string[]): string {
  return `<thead><tr>${cols.map((c) => `<th scope="col">${esc(c)}</th>`).join("")}</tr></thead>`;
}

const RULE_COLUMNS = [
  "Rule",
  "Level",
  "Conditions",
  "Events",
  "Kept",
  "Dropped",
  "Stage omitted",
  "Bytes in",
  "Bytes written",
  "Bytes saved",
];

function statCells(s: RuleStats): string {
  return num(s.events) + num(s.kept) + num(s.events - s.kept) + num(s.omittedStage) +
    num(s.bytesIn) + num(s.bytesOut) + num(s.bytesIn - s.bytesOut);
}

function rulesTable(id: string, doc: RuleCountsDocument): string {
  const rows = doc.rules.map((r) =>
    `<tr data-rule="${r.index}">${num(r.index)}${text(r.level)}${text(r.description, "cond")}${
      statCells(r)
    }</tr>`
  );
  return `<div class="scroll"><table id="${id}" class="sortable">${headRow(RULE_COLUMNS)}<tbody>${
    rows.join("")
  }</tbody><tfoot><tr data-rule="none"><td>–</td><td>None</td><td class="cond">(no rule matched)</td>${
    statCells(doc.noMatch)
  }</tr><tr data-rule="total"><th scope="row">total</th><td></td><td></td>${
    statCells(doc.total)
  }</tr></tfoot></table></div>`;
}

function ruleCharts(doc: RuleCountsDocument): string {
  const rows: { label: string; s: RuleStats }[] = [
    ...doc.rules.map((r) => ({ label: ruleLabel(r), s: r as RuleStats })),
    { label: "(no rule matched) None", s: doc.noMatch },
  ];
  const byteRows: BarRow[] = rows.map(({ label, s }) => ({
    label,
    note: bytes(s.bytesIn),
    tracks: [[
      { value: s.bytesOut, tone: "kept", title: `written: ${int(s.bytesOut)} bytes` },
      {
        value: s.bytesIn - s.bytesOut,
        tone: "dropped",
        title: `not written: ${int(s.bytesIn - s.bytesOut)} bytes`,
      },
    ]],
  }));
  const eventRows: BarRow[] = rows.map(({ label, s }) => ({
    label,
    note: int(s.events),
    tracks: [[
      { value: s.kept, tone: "kept", title: `kept: ${int(s.kept)} events` },
      { value: s.events - s.kept, tone: "dropped", title: `dropped: ${int(s.events - s.kept)}` },
    ]],
  }));
  return `<figure><figcaption>Bytes per rule: <span class="key tone-kept"></span> written ` +
    `<span class="key tone-dropped"></span> not written; the number is bytes in</figcaption>${
      svgBars(byteRows, "Bytes per rule, written and not written", { width: 960 })
    }</figure><figure><figcaption>Events per rule: <span class="key tone-kept"></span> kept ` +
    `<span class="key tone-dropped"></span> dropped; the number is events</figcaption>${
      svgBars(eventRows, "Events per rule, kept and dropped", { width: 960 })
    }</figure>`;
}

function neverList(id: string, doc: RuleCountsDocument): string {
  if (doc.neverMatched.length === 0) {
    return `<p id="${id}" class="never-none">Every rule matched at least one event.</p>`;
  }
  const items = doc.neverMatched.map((i) => {
    const r = doc.rules[i];
    return `<li data-rule="${i}"><b>#${i}</b> ${esc(r.level)} <code>${
      esc(r.description)
    }</code></li>`;
  });
  return `<ul id="${id}" class="never">${items.join("")}</ul>`;
}

function topBlock(id: string, title: string, list: readonly RankedStats[], total: number): string {
  if (list.length === 0) return `<div class="top"><h3>${esc(title)}</h3><p>No events.</p></div>`;
  const chart = svgBars(
    list.map((e) => ({
      label: display(e),
      note: bytes(e.bytesOut),
      tracks: [[
        { value: e.bytesOut, tone: "kept", title: `written: ${int(e.bytesOut)} bytes` },
        {
          value: e.bytesIn - e.bytesOut,
          tone: "dropped",
          title: `not written: ${int(e.bytesIn - e.bytesOut)} bytes`,
        },
      ]],
    })),
    `${title} by bytes written`,
    { width: 960 },
  );
  const rows = list.map((e) =>
    `<tr>${text(display(e), e.other || e.name === "" ? "name placeholder" : "name")}${
      num(e.events)
    }${num(e.kept)}${num(e.bytesIn)}${num(e.bytesOut)}<td class="num">${
      percent(e.bytesOut, total)
    }</td></tr>`
  );
  return `<div class="top"><h3>${esc(title)}</h3><figure><figcaption>` +
    `<span class="key tone-kept"></span> written <span class="key tone-dropped"></span> not ` +
    `written; the number is bytes written</figcaption>${chart}</figure><table id="${id}" class="sortable">${
      headRow(["Name", "Events", "Kept", "Bytes in", "Bytes written", "Share of written"])
    }<tbody>${rows.join("")}</tbody></table></div>`;
}

function compareSection(doc: ReportDocument, c: CompareDocument): string {
  const other = esc(c.policy);
  // Rules that decided no event would only repeat "same" down the chart; the table has them.
  const chartRows: BarRow[] = [
    ...c.perRule.map((o) => ({
      label: ruleLabel(doc.rules[o.index]),
      mine: doc.rules[o.index],
      o,
    })),
    { label: "(no rule matched) None", mine: doc.noMatch, o: c.perRuleNoMatch },
  ].filter(({ mine }) => mine.events > 0).map(({ label, mine, o }) => ({
    label,
    note: o.savedBytes > 0
      ? `saves ${bytes(o.savedBytes)}`
      : o.savedBytes < 0
      ? `${bytes(-o.savedBytes)} more`
      : "same",
    tracks: [
      [{ value: mine.bytesOut, tone: "kept", title: `this policy: ${int(mine.bytesOut)} bytes` }],
      [{ value: o.bytesOut, tone: "other", title: `${c.policy}: ${int(o.bytesOut)} bytes` }],
    ],
  }));
  const row = (key: string, head: string, mine: RuleStats, o: CompareRow) =>
    `<tr data-rule="${key}">${head}${num(mine.events)}${num(mine.kept)}${num(mine.bytesOut)}${
      num(o.kept)
    }${num(o.bytesOut)}${num(o.savedBytes)}</tr>`;
  const rows = c.perRule.map((o) => {
    const r = doc.rules[o.index];
    return row(String(o.index), num(o.index) + text(r.level) + text(r.description, "cond"), r, o);
  });
  const cols = [
    "Rule",
    "Level",
    "Conditions",
    "Events",
    "Kept",
    "Bytes written",
    "Kept by other",
    "Bytes written by other",
    "Bytes saved",
  ];
  const totalRow = row(
    "total",
    `<th scope="row">total</th><td></td><td></td>`,
    doc.total,
    { ...c.total, savedBytes: c.savedBytes },
  );
  const saving = c.savedBytes >= 0
    ? `saves <b id="compare-saved">${int(c.savedBytes)}</b> bytes (${bytes(c.savedBytes)}, ${
      percent(c.savedBytes, doc.total.bytesOut)
    } of what this policy writes)`
    : `writes <b id="compare-saved">${int(-c.savedBytes)}</b> bytes more (${bytes(-c.savedBytes)})`;
  return `<section id="compare"><h2>Compared with <code>${other}</code></h2>
<p>On the same events, <code>${other}</code> keeps <b>${int(c.total.kept)}</b> of ${
    int(c.total.events)
  } events and writes <b>${int(c.total.bytesOut)}</b> bytes; this policy keeps <b>${
    int(doc.total.kept)
  }</b> and writes <b>${int(doc.total.bytesOut)}</b>. <code>${other}</code> ${saving}.</p>
<p>Per rule of this policy, what <code>${other}</code> would write of the events that rule decided
(rules that decided no event are in the table only):</p>
<figure><figcaption>Bytes written: <span class="key tone-kept"></span> this policy ` +
    `<span class="key tone-other"></span> <code>${other}</code></figcaption>${
      svgBars(chartRows, `Bytes written per rule, this policy and ${c.policy}`, { width: 960 })
    }</figure>
<div class="scroll"><table id="compare-table" class="sortable">${headRow(cols)}<tbody>${
      rows.join("")
    }</tbody><tfoot>${
      row(
        "none",
        `<td>–</td><td>None</td><td class="cond">(no rule matched)</td>`,
        doc.noMatch,
        c.perRuleNoMatch,
      )
    }${totalRow}</tfoot></table></div>
<h3><code>${other}</code> rule by rule</h3>
${rulesTable("compare-rules-table", c)}
<h3>Rules of <code>${other}</code> never matched</h3>
${neverList("compare-never", c)}
</section>`;
}

function card(id: string, label: string, value: string, sub: string): string {
  return `<div class="card" id="${id}"><div class="label">${esc(label)}</div><div class="value">${
    esc(value)
  }</div><div class="sub">${esc(sub)}</div></div>`;
}

/** Two cards with `--compare`: what the other policy keeps, and saves (or adds). */
function compareCards(doc: ReportDocument, c: CompareDocument): string[] {
  const saved = c.savedBytes;
  const name = c.policy.split("/").pop() ?? c.policy;
  return [
    card(
      "sum-compare-kept",
      "Events the other policy writes",
      int(c.total.kept),
      `${name}: ${percent(c.total.kept, c.total.events)} of events`,
    ),
    card(
      "sum-compare",
      saved >= 0 ? "Bytes the other policy saves" : "Bytes the other policy adds",
      int(Math.abs(saved)),
      `${name}: ${bytes(Math.abs(saved))}, ${percent(Math.abs(saved), doc.total.bytesOut)} of ` +
        `written`,
    ),
  ];
}

function summary(doc: ReportDocument): string {
  const t = doc.total;
  const cls = doc.compare === undefined ? "cards" : "cards cards-4";
  return `<section id="summary" class="${cls}">${
    [
      card("sum-events", "Events read", int(t.events), ""),
      card("sum-kept", "Events written", int(t.kept), `${percent(t.kept, t.events)} of events`),
      card("sum-bytes-in", "Bytes read", int(t.bytesIn), bytes(t.bytesIn)),
      card(
        "sum-bytes-out",
        "Bytes written",
        int(t.bytesOut),
        `${bytes(t.bytesOut)}, ${percent(t.bytesOut, t.bytesIn)} of read`,
      ),
      card(
        "sum-never",
        "Rules never matched",
        int(doc.neverMatched.length),
        `of ${doc.rules.length} rules`,
      ),
      card("sum-nomatch", "Events no rule matched", int(doc.noMatch.events), "level None"),
      ...(doc.compare === undefined ? [] : compareCards(doc, doc.compare)),
    ].join("")
  }</section>`;
}

const STYLE = `
:root { --kept: #2f6fd0; --dropped: #cfd6e0; --other: #e07b28;
  --ink: #1d2430; --muted: #5b6575; --line: #e3e7ee; --bg: #ffffff; --panel: #f6f8fb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--bg); }
main { max-width: 1000px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  overflow-wrap: anywhere; }
.meta { color: var(--muted); margin: 0; }
.cards { display: grid; grid-template-columns: repeat(3, 1fr); gap: 10px; margin-top: 18px; }
.cards-4 { grid-template-columns: repeat(4, 1fr); }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
.card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .sub { color: var(--muted); font-size: 12px; min-height: 1em; }
figure { margin: 12px 0; }
figcaption { color: var(--muted); font-size: 12.5px; margin-bottom: 6px; }
.key { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  vertical-align: -1px; margin-left: 8px; }
.chart { max-width: 100%; height: auto; display: block; }
.chart text { font-size: 12px; fill: var(--ink); }
.chart .bar-note { fill: var(--muted); }
.tone-kept { fill: var(--kept); background: var(--kept); }
.tone-dropped { fill: var(--dropped); background: var(--dropped); }
.tone-other { fill: var(--other); background: var(--other); }
table { border-collapse: collapse; width: 100%; margin: 8px 0 4px; font-size: 13px; }
th, td { padding: 4px 6px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { background: var(--panel); font-weight: 600; cursor: pointer; user-select: none;
  vertical-align: bottom; }
.scroll { overflow-x: auto; }
thead th[data-dir="asc"]::after { content: " ▲"; }
thead th[data-dir="desc"]::after { content: " ▼"; }
tfoot td, tfoot th { background: var(--panel); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.cond { min-width: 18em; }
details { display: inline; }
summary { display: inline; cursor: pointer; }
details[open] summary { display: block; }
td.cond, td.name { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; overflow-wrap: anywhere; }
td.placeholder { color: var(--muted); font-style: italic; }
ul.never { padding-left: 20px; }
footer { color: var(--muted); font-size: 12px; margin-top: 40px; }
@media print { thead th { cursor: auto; } }
`;

/** Sorts a table by the clicked column (numbers by value); totals in tfoot stay last. */
const SCRIPT = `
for (const table of document.querySelectorAll("table.sortable")) {
  const heads = [...table.tHead.rows[0].cells];
  heads.forEach((th, col) => {
    th.tabIndex = 0;
    const sort = () => {
      const dir = th.dataset.dir === "desc" ? "asc" : "desc";
      for (const h of heads) delete h.dataset.dir;
      th.dataset.dir = dir;
      const key = (row) => {
        const c = row.cells[col];
        return c.dataset.v !== undefined ? Number(c.dataset.v) : c.textContent;
      };
      const body = table.tBodies[0];
      const rows = [...body.rows].sort((a, b) => {
        const x = key(a), y = key(b);
        const o = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
        return dir === "asc" ? o : -o;
      });
      body.append(...rows);
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
  });
}
`;

/**
 * The page: a summary, bytes and events per rule (charts and a table), the rules never
 * matched, the top users, resources and verbs by bytes written, and with `--compare` what the
 * other policy keeps and saves per rule. Every number is the document's.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("report.html", reportHtml(doc, { policy: "p.yaml", inputs: ["audit.log"] }));
 * ```
 */
export function reportHtml(doc: ReportDocument, meta: PageMeta): string {
  const names = meta.inputs.map((i) => `<code>${esc(i === "-" ? "(stdin)" : i)}</code>`);
  // A rotated log's backups make long lists: the first few, the rest folded.
  const inputs = names.length <= 3 ? names.join(", ") : `${names.slice(0, 2).join(", ")} ` +
    `<details><summary>and ${names.length - 2} more files</summary>${
      names.slice(2).join(", ")
    }</details>`;
  const total = doc.total.bytesOut;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${PAGE_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="auditpipe policy report">
<title>Policy report: ${esc(meta.policy)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<header>
<h1>Audit policy report</h1>
<p class="meta">Policy <code id="policy-path">${esc(meta.policy)}</code> on ${inputs}</p>
</header>
${summary(doc)}
<section id="rules"><h2>Per rule</h2>
<p>Each event is decided by the first rule that matches it. Bytes are the event's line as
kube-apiserver's JSON log writes it, before (in) and after the policy (written).</p>
${ruleCharts(doc)}
${rulesTable("rules-table", doc)}
</section>
<section id="never-matched"><h2>Rules never matched</h2>
${neverList("never", doc)}
</section>
<section id="top"><h2>Top users, resources and verbs by bytes written</h2>
${topBlock("top-users", "Users", doc.top.users, total)}
${topBlock("top-resources", "Resources", doc.top.resources, total)}
${topBlock("top-verbs", "Verbs", doc.top.verbs, total)}
</section>
${doc.compare ? compareSection(doc, doc.compare) : ""}
<footer>Written by <code>auditpipe policy report --html</code>. This page is self-contained:
it loads nothing and sends nothing.</footer>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
