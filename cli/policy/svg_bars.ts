/**
 * Horizontal bar charts as inline SVG, so the HTML report draws its charts without a library
 * or a network fetch. Colours come from the page's CSS through each segment's tone.
 *
 * @module
 */
import { escapeHtml } from "./html_escape.ts";

/**
 * The colours a segment may take; the page's style sheet defines `.tone-NAME`.
 *
 * @example
 * ```ts
 * const t: Tone = "kept";
 * ```
 */
export type Tone = "kept" | "dropped" | "other";

/**
 * One stretch of a bar: its value, colour and tooltip.
 *
 * @example
 * ```ts
 * const s: Segment = { value: 900, tone: "kept", title: "written: 900 bytes" };
 * ```
 */
export interface Segment {
  readonly value: number;
  readonly tone: Tone;
  readonly title: string;
}

/**
 * One row of a chart: a label, one or more tracks (bars drawn one under the other, each its
 * segments end to end) and a note after the longest track.
 *
 * @example
 * ```ts
 * const row: BarRow = { label: "#0 users=alice", note: "1.2 KiB",
 *   tracks: [[{ value: 900, tone: "kept", title: "written" }]] };
 * ```
 */
export interface BarRow {
  readonly label: string;
  readonly tracks: readonly (readonly Segment[])[];
  readonly note: string;
}

/**
 * Sizes of a chart, in SVG user units (pixels at 100% zoom).
 *
 * @example
 * ```ts
 * svgBars(rows, "Bytes per rule", { width: 560 });
 * ```
 */
export interface ChartSize {
  readonly width?: number;
  readonly labelWidth?: number;
  readonly noteWidth?: number;
}

const TRACK = 14;
const TRACK_GAP = 2;
const ROW_GAP = 8;
/** Width of a character of the 12px label font, generously, to cut labels that would not fit. */
const CHAR_WIDTH = 7;

/** `label` cut with an ellipsis to fit `width`; the whole label is the row's tooltip. */
function cut(label: string, width: number): string {
  const fit = Math.max(4, Math.floor(width / CHAR_WIDTH));
  const chars = [...label];
  return chars.length <= fit ? label : chars.slice(0, fit - 1).join("") + "…";
}

function sum(segments: readonly Segment[]): number {
  return segments.reduce((a, s) => a + Math.max(0, s.value), 0);
}

/**
 * The chart as an `<svg>` element: every row's tracks scaled to the largest track, labels on
 * the left, notes on the right. Every string is escaped.
 *
 * @example
 * ```ts
 * const svg = svgBars([{ label: "alice", note: "900 B",
 *   tracks: [[{ value: 900, tone: "kept", title: "written: 900 bytes" }]] }], "Top users");
 * ```
 */
export function svgBars(rows: readonly BarRow[], title: string, size: ChartSize = {}): string {
  const width = size.width ?? 720;
  const labelWidth = size.labelWidth ?? 300;
  const noteWidth = size.noteWidth ?? 90;
  const barWidth = width - labelWidth - noteWidth - 12;
  const max = Math.max(1, ...rows.flatMap((r) => r.tracks.map(sum)));
  const parts: string[] = [];
  let y = 0;
  for (const row of rows) {
    const n = Math.max(1, row.tracks.length);
    const height = n * TRACK + (n - 1) * TRACK_GAP;
    const mid = y + height / 2;
    parts.push(
      `<g class="bar-row"><title>${escapeHtml(row.label)}</title>`,
      `<text class="bar-label" x="0" y="${mid}" dominant-baseline="central">${
        escapeHtml(cut(row.label, labelWidth - 8))
      }</text>`,
    );
    row.tracks.forEach((track, t) => {
      let x = labelWidth;
      const ty = y + t * (TRACK + TRACK_GAP);
      for (const seg of track) {
        const w = (Math.max(0, seg.value) / max) * barWidth;
        if (w <= 0) continue;
        parts.push(
          `<rect class="tone-${seg.tone}" x="${x.toFixed(2)}" y="${ty}" width="${
            Math.max(w, 0.5).toFixed(2)
          }" height="${TRACK}"><title>${escapeHtml(seg.title)}</title></rect>`,
        );
        x += w;
      }
    });
    const end = labelWidth + (Math.max(0, ...row.tracks.map(sum)) / max) * barWidth;
    parts.push(
      `<text class="bar-note" x="${(end + 6).toFixed(2)}" y="${mid}" ` +
        `dominant-baseline="central">${escapeHtml(row.note)}</text></g>`,
    );
    y += height + ROW_GAP;
  }
  const height = Math.max(1, y - ROW_GAP);
  return `<svg class="chart" role="img" aria-label="${escapeHtml(title)}" width="${width}" ` +
    `height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<title>${escapeHtml(title)}</title>${parts.join("")}</svg>`;
}
