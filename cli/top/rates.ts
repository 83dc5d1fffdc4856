/**
 * What two scrapes of the same daemon say together: per-second rates of counters and
 * quantiles of the observations a histogram gained between them, computed as Prometheus'
 * `rate()` and `histogram_quantile()` do.
 *
 * @module
 */
import { type Metrics, samples } from "./prometheus.ts";

/**
 * One scrape and when it was taken (milliseconds, any monotonic clock).
 *
 * @example
 * ```ts
 * const s: Scrape = { at: performance.now(), metrics: parsePrometheusText(text) };
 * ```
 */
export interface Scrape {
  readonly at: number;
  readonly metrics: Metrics;
}

/**
 * How much a counter grew from `before` to `after`; a counter that went down was reset (the
 * daemon restarted, or a reload replaced the sink), so its growth is its new value.
 *
 * @example
 * ```ts
 * increase(10, 25); // 15
 * increase(10, 4);  // 4 (reset)
 * ```
 */
export function increase(before: number, after: number): number {
  return after >= before ? after - before : after;
}

/**
 * The per-second rate of the sum of the series of counter `name` matching `match` between
 * two scrapes; null when the scrapes are the same instant (or `before` is null: one scrape
 * gives no rate).
 *
 * @example
 * ```ts
 * rate(prev, cur, "auditpipe_sink_written_total", { sink: "local" }); // events/s
 * ```
 */
export function rate(
  before: Scrape | null,
  after: Scrape,
  name: string,
  match: Readonly<Record<string, string>> = {},
): number | null {
  if (before === null) return null;
  const seconds = (after.at - before.at) / 1000;
  if (!(seconds > 0)) return null;
  let grew = 0;
  // Series by series, so that one reset series does not hide the growth of the others.
  for (const s of samples(after.metrics, name, match)) {
    const old = samples(before.metrics, name, s.labels)[0]?.value ?? 0;
    grew += increase(old, s.value);
  }
  return grew / seconds;
}

/**
 * Cumulative bucket counts by upper bound (`le`), ascending, `+Inf` last.
 *
 * @example
 * ```ts
 * const b: Buckets = [[0.1, 3], [1, 9], [Infinity, 10]];
 * ```
 */
export type Buckets = readonly (readonly [number, number])[];

/**
 * The buckets of histogram `name` (all series matching `match` added up, such as every
 * `code` of a source), as observed up to `m`.
 *
 * @example
 * ```ts
 * buckets(m, "auditpipe_source_request_duration_seconds", { source: "apiserver" });
 * ```
 */
export function buckets(
  m: Metrics,
  name: string,
  match: Readonly<Record<string, string>> = {},
): Buckets {
  const byLe = new Map<number, number>();
  for (const s of samples(m, `${name}_bucket`, match)) {
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    if (Number.isNaN(le)) continue;
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe].sort((a, b) => a[0] - b[0]);
}

/**
 * The observations between two scrapes: `after`'s buckets less `before`'s (all of `after`
 * when `before` is null, or when a bucket went down: a reset).
 *
 * @example
 * ```ts
 * const window = bucketIncrease(buckets(prev, h), buckets(cur, h));
 * ```
 */
export function bucketIncrease(before: Buckets | null, after: Buckets): Buckets {
  if (before === null) return after;
  const old = new Map(before);
  const reset = after.some(([le, n]) => n < (old.get(le) ?? 0));
  return reset ? after : after.map(([le, n]) => [le, n - (old.get(le) ?? 0)] as const);
}

/**
 * The `q`-quantile (0..1) of the observations in `b`, interpolated linearly inside its
 * bucket as `histogram_quantile` does (the first bucket from 0; one that falls in `+Inf`
 * is the highest finite bound); null when there are no observations.
 *
 * @example
 * ```ts
 * quantile(0.99, [[0.1, 50], [0.5, 99], [1, 100], [Infinity, 100]]); // 0.5
 * ```
 */
export function quantile(q: number, b: Buckets): number | null {
  const count = b.at(-1)?.[1] ?? 0;
  if (b.length === 0 || !(count > 0)) return null;
  const rank = q * count;
  const i = b.findIndex(([, n]) => n >= rank);
  if (i < 0) return null;
  const [bound, n] = b[i];
  if (bound === Infinity) return i > 0 ? b[i - 1][0] : null;
  const [low, lowCount] = i > 0 ? b[i - 1] : [0, 0];
  if (n === lowCount) return bound;
  return low + (bound - low) * (rank - lowCount) / (n - lowCount);
}

/**
 * The number of observations in `b`.
 *
 * @example
 * ```ts
 * observations([[0.1, 3], [Infinity, 5]]); // 5
 * ```
 */
export function observations(b: Buckets): number {
  return b.at(-1)?.[1] ?? 0;
}
