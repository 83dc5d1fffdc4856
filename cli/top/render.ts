/**
 * Lays a {@linkcode TopView} out as lines of plain text no wider than the terminal (80
 * columns and up): tables of sources, sinks and buffers, drops by reason, reloads. Long names
 * are cut with `…`; tables that do not fit the height end in `… N more`.
 *
 * @module
 */
import type { DropRow, SinkRow, SourceRow, TopView } from "./view.ts";

/**
 * Options of {@linkcode renderTop}.
 *
 * @example
 * ```ts
 * const opts: RenderOptions = { width: 80, height: 24, footer: "q quits" };
 * ```
 */
export interface RenderOptions {
  /** Columns; at most this many characters per line. */
  readonly width: number;
  /** Rows; unlimited when absent (a snapshot on a pipe). */
  readonly height?: number;
  /** A last line, such as the keys. */
  readonly footer?: string;
}

/** Characters a line of a table may give its name column at most. */
const MAX_NAME = 40;

/**
 * A count as digits grouped by thousands while it fits `width`, else with k, M, G, T.
 *
 * @example
 * ```ts
 * count(12345, 10);    // "12,345"
 * count(123456789, 6); // "123.5M"
 * ```
 */
export function count(n: number, width = 11): string {
  if (!Number.isFinite(n)) return String(n);
  const exact = Math.round(n).toLocaleString("en-US");
  if (exact.length <= width) return exact;
  const units = ["k", "M", "G", "T", "P"];
  let v = n;
  let u = -1;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)}${units[u]}`;
}

/**
 * A rate per second: one decimal, k/M above 100,000; `-` when unknown.
 *
 * @example
 * ```ts
 * perSec(12.34); // "12.3"
 * perSec(null);  // "-"
 * ```
 */
export function perSec(r: number | null): string {
  if (r === null) return "-";
  if (r < 100_000) return r.toFixed(1);
  return count(r, 0);
}

/**
 * Seconds as a short duration: `850us`, `12.5ms`, `1.20s`; `-` when unknown.
 *
 * @example
 * ```ts
 * latency(0.0125); // "12.5ms"
 * ```
 */
export function latency(s: number | null): string {
  if (s === null) return "-";
  if (s < 0.001) return `${Math.round(s * 1e6)}us`;
  if (s < 1) return `${(s * 1000).toFixed(s < 0.1 ? 1 : 0)}ms`;
  return `${s.toFixed(2)}s`;
}

/**
 * An age in seconds: `42s`, `5m02s`, `3h07m`, `2d04h`.
 *
 * @example
 * ```ts
 * age(302); // "5m02s"
 * ```
 */
export function age(s: number): string {
  const t = Math.floor(s);
  const pad = (n: number) => String(n).padStart(2, "0");
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${pad(t % 60)}s`;
  if (t < 86400) return `${Math.floor(t / 3600)}h${pad(Math.floor(t / 60) % 60)}m`;
  return `${Math.floor(t / 86400)}d${pad(Math.floor(t / 3600) % 24)}h`;
}

/**
 * Bytes with a binary unit: `512B`, `4.0KiB`, `1.5GiB`.
 *
 * @example
 * ```ts
 * bytes(1536); // "1.5KiB"
 * ```
 */
export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v}B` : `${v.toFixed(v >= 100 ? 0 : 1)}${units[u]}`;
}

/** Cuts `s` to `w` characters, ending in `…` when cut. */
function fit(s: string, w: number): string {
  const chars = [...s];
  return chars.length <= w ? s : chars.slice(0, Math.max(0, w - 1)).join("") + "…";
}

const clock = (d: Date) => d.toISOString().slice(11, 19);

interface Column<R> {
  readonly title: string;
  readonly width: number;
  readonly cell: (r: R) => string;
}

/** A table: a name column as wide as the terminal allows, then right-aligned numbers. */
function table<R extends { name: string }>(
  title: string,
  columns: readonly Column<R>[],
  rows: readonly R[],
  width: number,
): string[] {
  const numbers = columns.reduce((w, c) => w + c.width + 1, 0);
  const longest = Math.max(title.length, ...rows.map((r) => [...r.name].length));
  const nameWidth = Math.max(8, Math.min(MAX_NAME, longest, width - numbers));
  const line = (name: string, cells: string[]) =>
    fit(name, nameWidth).padEnd(nameWidth) +
    cells.map((c, i) => " " + fit(c, columns[i].width).padStart(columns[i].width)).join("");
  return [
    line(title, columns.map((c) => c.title)),
    ...rows.map((r) => line(r.name, columns.map((c) => c.cell(r)))),
  ];
}

const SOURCE_COLUMNS: readonly Column<SourceRow>[] = [
  { title: "EVENTS/S", width: 9, cell: (r) => perSec(r.eventsPerSec) },
  { title: "EVENTS", width: 11, cell: (r) => count(r.events, 11) },
  { title: "REJECTED", width: 9, cell: (r) => count(r.rejected, 9) },
  { title: "REJ/S", width: 7, cell: (r) => perSec(r.rejectedPerSec) },
  { title: "P99 REQ", width: 8, cell: (r) => latency(r.p99Seconds) },
  { title: "TAIL LAG", width: 8, cell: (r) => r.lagBytes === null ? "-" : bytes(r.lagBytes) },
];

const SINK_COLUMNS: readonly Column<SinkRow>[] = [
  { title: "IN/S", width: 8, cell: (r) => perSec(r.inPerSec) },
  { title: "OUT/S", width: 8, cell: (r) => perSec(r.outPerSec) },
  { title: "WRITTEN", width: 11, cell: (r) => count(r.written, 11) },
  { title: "DROPPED", width: 9, cell: (r) => count(r.dropped, 9) },
  { title: "RETRIES", width: 7, cell: (r) => count(r.retries, 7) },
  { title: "P99 SEND", width: 8, cell: (r) => latency(r.p99Seconds) },
];

/** How full the buffer that overflows is: the disk buffer's bytes, else the memory buffer's events. */
function fill(r: SinkRow): string {
  const [used, max] = r.disk ? [r.disk.bytes, r.disk.maxBytes] : [r.held, r.capacity];
  if (max === null || max <= 0) return "-";
  return `${Math.min(100, Math.round((100 * used) / max))}%`;
}

const BUFFER_COLUMNS: readonly Column<SinkRow>[] = [
  { title: "HELD", width: 11, cell: (r) => count(r.held, 11) },
  { title: "FILL", width: 5, cell: fill },
  { title: "ON DISK", width: 11, cell: (r) => r.disk ? count(r.disk.events, 11) : "-" },
  { title: "DISK SIZE", width: 9, cell: (r) => r.disk ? bytes(r.disk.bytes) : "-" },
  { title: "SEGMENTS", width: 8, cell: (r) => r.disk ? count(r.disk.segments, 8) : "-" },
  {
    title: "OLDEST",
    width: 8,
    cell: (r) => r.disk && r.disk.events > 0 ? age(r.disk.oldestAgeSeconds) : "-",
  },
];

const DROP_COLUMNS: readonly Column<DropRow & { name: string }>[] = [
  { title: "REASON", width: 17, cell: (r) => r.reason },
  { title: "EVENTS", width: 11, cell: (r) => count(r.total, 11) },
  { title: "PER S", width: 8, cell: (r) => perSec(r.perSec) },
];

/**
 * The screen: at most `width` characters per line and, with `height`, at most `height` lines.
 *
 * @example
 * ```ts
 * const { columns, rows } = Deno.consoleSize();
 * const lines = renderTop(view, { width: columns, height: rows, footer: "q quits" });
 * ```
 */
export function renderTop(view: TopView, opts: RenderOptions): string[] {
  const width = Math.max(20, opts.width);
  const up = view.uptimeSeconds === null ? "" : `up ${age(view.uptimeSeconds)}  `;
  const rss = view.rssBytes === null ? "" : `rss ${bytes(view.rssBytes)}  `;
  // The URL last: it is what gets cut on a narrow terminal.
  const left = `auditpipe top  ${up}${rss}${view.url.replace(/^https?:\/\//, "")}`;
  const right = clock(view.takenAt);
  const head = [
    fit(left, width - right.length - 1).padEnd(width - right.length) + right,
  ];
  if (view.unreachable) {
    head.push(
      `UNREACHABLE since ${clock(view.unreachable.since)}: ${view.unreachable.error}`,
      `(numbers from ${clock(view.takenAt)})`,
    );
  }
  const buffered = view.sinks.filter((s) => s.held > 0 || s.disk !== null);
  const sections: string[][] = [
    table("SOURCE", SOURCE_COLUMNS, view.sources, width),
    table("SINK", SINK_COLUMNS, view.sinks, width),
    buffered.length > 0
      ? table("BUFFER", BUFFER_COLUMNS, buffered, width)
      : ["BUFFER   every sink's buffer is empty"],
    view.drops.length > 0
      ? table("DROPPED BY", DROP_COLUMNS, view.drops.map((d) => ({ ...d, name: d.sink })), width)
      : ["DROPPED  nothing"],
  ];
  const r = view.reloads;
  sections.push([
    `RELOADS  ${count(r.success)} ok, ${count(r.failure)} failed` +
    (r.success + r.failure > 0 ? `, last ${r.lastSucceeded ? "ok" : "FAILED"}` : "") +
    (r.lastSuccessAt ? `; config loaded ${r.lastSuccessAt.toISOString().slice(0, 19)}Z` : ""),
  ]);
  const window = view.intervalSeconds === null
    ? "one scrape: no rates"
    : `rates and p99 over ${view.intervalSeconds.toFixed(1)}s`;
  const tail = ["", opts.footer ? `${window}  ${opts.footer}` : window];
  const out = fitHeight(head, sections, tail, opts.height);
  return out.map((l) => fit(l, width));
}

/**
 * Head, sections separated by blank lines, tail; with `height`, the sections' rows are cut
 * (the largest first) to fit, each cut table ending in `… N more`.
 */
function fitHeight(
  head: string[],
  sections: string[][],
  tail: string[],
  height: number | undefined,
): string[] {
  const join = (secs: string[][]) => [...head, ...secs.flatMap((s) => ["", ...s]), ...tail];
  if (height === undefined || join(sections).length <= height) return join(sections);
  const keep = sections.map((s) => s.length);
  const over = () => join(sections).length - height;
  // Each section keeps its title and one row (or the "… more" line) at least.
  let excess = over();
  while (excess > 0) {
    const i = keep.indexOf(Math.max(...keep));
    if (keep[i] <= 2) break;
    keep[i]--;
    excess--;
  }
  const cut = sections.map((s, i) =>
    keep[i] >= s.length ? s : [...s.slice(0, keep[i] - 1), `  … ${s.length - keep[i] + 1} more`]
  );
  return join(cut).slice(0, height);
}
