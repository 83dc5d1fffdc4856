/**
 * The Prometheus text exposition format (version 0.0.4), read into samples grouped by metric
 * name: what `auditpipe top` gets from a daemon's `/metrics`. Comments, `# HELP` and `# TYPE`
 * lines are skipped; label values are unescaped (`\\`, `\"`, `\n`).
 *
 * @module
 */

/**
 * One sample: a series' labels and its value.
 *
 * @example
 * ```ts
 * const s: Sample = { labels: { sink: "local" }, value: 12 };
 * ```
 */
export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * The samples of one scrape, by metric name (histograms as their `_bucket`, `_sum` and
 * `_count` names), in the order the text gave them.
 *
 * @example
 * ```ts
 * const m: Metrics = parsePrometheusText('a_total{x="1"} 3\n');
 * m.get("a_total"); // [{ labels: { x: "1" }, value: 3 }]
 * ```
 */
export type Metrics = ReadonlyMap<string, readonly Sample[]>;

/**
 * A line that is not a sample, with its 1-based number.
 *
 * @example
 * ```ts
 * try { parsePrometheusText("oops"); } catch (e) { if (e instanceof PrometheusTextError) console.log(e.line); }
 * ```
 */
export class PrometheusTextError extends Error {
  constructor(readonly line: number, reason: string) {
    super(`line ${line}: ${reason}`);
    this.name = "PrometheusTextError";
  }
}

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const LABEL = /[a-zA-Z_][a-zA-Z0-9_]*/y;

// prom-client writes NaN as "Nan": special values are read whatever their case.
const SPECIAL: Record<string, number> = {
  "+inf": Infinity,
  "inf": Infinity,
  "-inf": -Infinity,
  "nan": NaN,
};

function parseValue(text: string): number | null {
  const special = SPECIAL[text.toLowerCase()];
  if (special !== undefined) return special;
  const v = Number(text);
  return text === "" || Number.isNaN(v) ? null : v;
}

/**
 * Parses exposition text; throws {@linkcode PrometheusTextError} naming the first line that
 * is neither a comment nor a sample (a page that is not Prometheus text, such as an HTML
 * error page, fails on its first line).
 *
 * @example
 * ```ts
 * const m = parsePrometheusText(await (await fetch("http://127.0.0.1:9090/metrics")).text());
 * ```
 */
export function parsePrometheusText(text: string): Metrics {
  const out = new Map<string, Sample[]>();
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (line === "" || line.startsWith("#")) continue;
    const fail = (reason: string): never => {
      throw new PrometheusTextError(n + 1, `${reason}: ${line.slice(0, 80)}`);
    };
    NAME.lastIndex = 0;
    const name = NAME.exec(line)?.[0] ?? fail("no metric name");
    let i = name.length;
    const labels: Record<string, string> = {};
    if (line[i] === "{") {
      i++;
      for (;;) {
        while (line[i] === " ") i++;
        if (line[i] === "}") break;
        LABEL.lastIndex = i;
        const label = LABEL.exec(line)?.[0] ?? fail("bad label name");
        i += label.length;
        if (line[i] !== "=" || line[i + 1] !== '"') fail(`label ${label} has no quoted value`);
        i += 2;
        let value = "";
        for (; i < line.length && line[i] !== '"'; i++) {
          if (line[i] !== "\\") {
            value += line[i];
            continue;
          }
          const c = line[++i];
          value += c === "n" ? "\n" : c ?? "";
        }
        if (i >= line.length) fail(`label ${label}'s value is not closed`);
        i++;
        labels[label] = value;
        while (line[i] === " ") i++;
        if (line[i] === ",") i++;
        else if (line[i] !== "}") fail("expected , or } after a label");
      }
      i++;
    }
    // The value, then an optional timestamp.
    const [valueText] = line.slice(i).trim().split(/\s+/);
    const value = parseValue(valueText ?? "") ?? fail("bad value");
    let list = out.get(name);
    if (!list) out.set(name, list = []);
    list.push({ labels, value });
  }
  return out;
}

/**
 * The samples of `name` whose labels include `match`.
 *
 * @example
 * ```ts
 * samples(m, "auditpipe_sink_dropped_total", { sink: "local" });
 * ```
 */
export function samples(
  m: Metrics,
  name: string,
  match: Readonly<Record<string, string>> = {},
): Sample[] {
  const want = Object.entries(match);
  return (m.get(name) ?? []).filter((s) => want.every(([k, v]) => s.labels[k] === v));
}

/**
 * The sum of the samples of `name` whose labels include `match`; 0 when there are none.
 *
 * @example
 * ```ts
 * total(m, "auditpipe_source_rejected_total", { source: "apiserver" });
 * ```
 */
export function total(
  m: Metrics,
  name: string,
  match: Readonly<Record<string, string>> = {},
): number {
  return samples(m, name, match).reduce((sum, s) => sum + s.value, 0);
}

/**
 * Whether `name` has a sample whose labels include `match`.
 *
 * @example
 * ```ts
 * has(m, "auditpipe_disk_buffer_bytes", { sink: "siem" }); // a disk buffer
 * ```
 */
export function has(
  m: Metrics,
  name: string,
  match: Readonly<Record<string, string>> = {},
): boolean {
  return samples(m, name, match).length > 0;
}

/**
 * The values of label `label` across the samples of `name`, in first-seen order.
 *
 * @example
 * ```ts
 * labelValues(m, "auditpipe_sink_events_total", "sink"); // ["local", "siem"]
 * ```
 */
export function labelValues(m: Metrics, name: string, label: string): string[] {
  const seen = new Set<string>();
  for (const s of m.get(name) ?? []) {
    const v = s.labels[label];
    if (v !== undefined) seen.add(v);
  }
  return [...seen];
}
