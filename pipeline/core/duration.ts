/**
 * Go duration strings (`300ms`, `30s`, `1m30s`, `1h`), as kube-apiserver's flags take them.
 *
 * @module
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a Go duration into milliseconds; `null` when it is not one. `"0"` is zero, as in Go.
 *
 * @example
 * ```ts
 * parseDuration("1m30s"); // 90000
 * parseDuration("500ms"); // 500
 * parseDuration("soon");  // null
 * ```
 */
export function parseDuration(text: string): number | null {
  let s = text.trim();
  let sign = 1;
  if (s.startsWith("-") || s.startsWith("+")) {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") return null;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const m = PART.exec(s);
    if (!m) return null;
    total += Number(m[1]) * UNIT_MS[m[2]];
  }
  return sign * total;
}

/**
 * Formats milliseconds as a Go duration string.
 *
 * @example
 * ```ts
 * formatDuration(90000); // "1m30s"
 * ```
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  let out = "";
  let rest = ms;
  const h = Math.floor(rest / 3_600_000);
  if (h) out += `${h}h`, rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  if (m) out += `${m}m`, rest -= m * 60_000;
  if (rest) out += `${rest / 1000}s`;
  return out;
}
