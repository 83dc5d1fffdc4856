/**
 * What `auditpipe top` shows, computed from the last two scrapes of `/metrics`: per source,
 * per sink, drops by reason, buffers, reloads. Numbers only; `render.ts` lays them out.
 *
 * @module
 */
import { has, labelValues, type Metrics, samples, total } from "./prometheus.ts";
import { bucketIncrease, buckets, quantile, rate, type Scrape } from "./rates.ts";

/**
 * One source's line.
 *
 * @example
 * ```ts
 * const row: SourceRow = { name: "apiserver", eventsPerSec: 120, events: 5400, rejected: 0, rejectedPerSec: 0, p99Seconds: 0.004, lagBytes: null };
 * ```
 */
export interface SourceRow {
  readonly name: string;
  /** Null before a second scrape. */
  readonly eventsPerSec: number | null;
  readonly events: number;
  readonly rejected: number;
  readonly rejectedPerSec: number | null;
  /** p99 of webhook request durations over the last interval; null without requests in it. */
  readonly p99Seconds: number | null;
  /** Bytes of a tail source's file not read yet; null when there are none. */
  readonly lagBytes: number | null;
}

/**
 * A sink's disk buffer.
 *
 * @example
 * ```ts
 * const d: DiskRow = { bytes: 4096, maxBytes: 1 << 30, events: 10, segments: 1, oldestAgeSeconds: 3.5 };
 * ```
 */
export interface DiskRow {
  readonly bytes: number;
  /** `buffer.maxBytes` (`auditpipe_disk_buffer_max_bytes`); null from a daemon without it. */
  readonly maxBytes: number | null;
  readonly events: number;
  readonly segments: number;
  readonly oldestAgeSeconds: number;
}

/**
 * One sink's line.
 *
 * @example
 * ```ts
 * const row: SinkRow = { name: "local", inPerSec: 120, outPerSec: 120, received: 5400, written: 5400, dropped: 0, retries: 0, held: 0, capacity: 10000, p99Seconds: 0.002, disk: null };
 * ```
 */
export interface SinkRow {
  readonly name: string;
  readonly inPerSec: number | null;
  readonly outPerSec: number | null;
  readonly received: number;
  readonly written: number;
  readonly dropped: number;
  readonly retries: number;
  /** Events the branch holds now (`auditpipe_sink_buffer_events`). */
  readonly held: number;
  /** A batch branch's memory buffer size (`auditpipe_sink_buffer_capacity_events`), else null. */
  readonly capacity: number | null;
  /** p99 of batch write durations over the last interval; null without writes in it. */
  readonly p99Seconds: number | null;
  readonly disk: DiskRow | null;
}

/**
 * Events one sink dropped for one reason.
 *
 * @example
 * ```ts
 * const d: DropRow = { sink: "siem", reason: "buffer_full", total: 42, perSec: 3 };
 * ```
 */
export interface DropRow {
  readonly sink: string;
  readonly reason: string;
  readonly total: number;
  readonly perSec: number | null;
}

/**
 * Config reloads.
 *
 * @example
 * ```ts
 * const r: Reloads = { success: 2, failure: 0, lastSucceeded: true, lastSuccessAt: new Date() };
 * ```
 */
export interface Reloads {
  readonly success: number;
  readonly failure: number;
  readonly lastSucceeded: boolean;
  /** The last successful config load (startup, then each reload); null when not exported. */
  readonly lastSuccessAt: Date | null;
}

/**
 * Everything on the screen.
 *
 * @example
 * ```ts
 * const view = topView(prev, cur, { url, takenAt: new Date(), unreachable: null });
 * console.log(renderTop(view, { width: 80 }).join("\n"));
 * ```
 */
export interface TopView {
  readonly url: string;
  /** When the numbers shown were scraped. */
  readonly takenAt: Date;
  /** Seconds between the two scrapes rates come from; null with one scrape. */
  readonly intervalSeconds: number | null;
  readonly uptimeSeconds: number | null;
  readonly rssBytes: number | null;
  readonly sources: readonly SourceRow[];
  readonly sinks: readonly SinkRow[];
  /** Non-zero drops, largest first. */
  readonly drops: readonly DropRow[];
  readonly reloads: Reloads;
  /** Set while scrapes fail: since when, and the last error. */
  readonly unreachable: { readonly since: Date; readonly error: string } | null;
}

const one = (m: Metrics, name: string, match: Record<string, string> = {}): number | null =>
  samples(m, name, match)[0]?.value ?? null;

function p99(before: Scrape | null, after: Scrape, name: string, match: Record<string, string>) {
  const now = buckets(after.metrics, name, match);
  const window = before === null ? now : bucketIncrease(buckets(before.metrics, name, match), now);
  return quantile(0.99, window);
}

/**
 * The view of `after`, with rates and p99 over the time since `before` (null: no rates).
 *
 * @example
 * ```ts
 * const view = topView(prev, cur, { url: "http://127.0.0.1:9090/metrics", takenAt: new Date(), unreachable: null });
 * ```
 */
export function topView(
  before: Scrape | null,
  after: Scrape,
  meta: { url: string; takenAt: Date; unreachable: TopView["unreachable"] },
): TopView {
  const m = after.metrics;
  const sourceNames = labelValues(m, "auditpipe_source_events_total", "source");
  const sinkNames = labelValues(m, "auditpipe_sink_events_total", "sink");
  const sources = sourceNames.map((name): SourceRow => {
    const s = { source: name };
    const lag = one(m, "auditpipe_tail_lag_bytes", s);
    return {
      name,
      eventsPerSec: rate(before, after, "auditpipe_source_events_total", s),
      events: total(m, "auditpipe_source_events_total", s),
      rejected: total(m, "auditpipe_source_rejected_total", s),
      rejectedPerSec: rate(before, after, "auditpipe_source_rejected_total", s),
      p99Seconds: p99(before, after, "auditpipe_source_request_duration_seconds", s),
      // Every source exports a lag series; only one that follows a file ever has any.
      lagBytes: lag !== null && lag > 0 ? lag : null,
    };
  });
  const sinks = sinkNames.map((name): SinkRow => {
    const s = { sink: name };
    return {
      name,
      inPerSec: rate(before, after, "auditpipe_sink_events_total", s),
      outPerSec: rate(before, after, "auditpipe_sink_written_total", s),
      received: total(m, "auditpipe_sink_events_total", s),
      written: total(m, "auditpipe_sink_written_total", s),
      dropped: total(m, "auditpipe_sink_dropped_total", s),
      retries: total(m, "auditpipe_sink_retries_total", s),
      held: total(m, "auditpipe_sink_buffer_events", s),
      capacity: has(m, "auditpipe_sink_buffer_capacity_events", s)
        ? total(m, "auditpipe_sink_buffer_capacity_events", s)
        : null,
      p99Seconds: p99(before, after, "auditpipe_sink_send_duration_seconds", s),
      disk: has(m, "auditpipe_disk_buffer_bytes", s)
        ? {
          bytes: total(m, "auditpipe_disk_buffer_bytes", s),
          maxBytes: has(m, "auditpipe_disk_buffer_max_bytes", s)
            ? total(m, "auditpipe_disk_buffer_max_bytes", s)
            : null,
          events: total(m, "auditpipe_disk_buffer_events", s),
          segments: total(m, "auditpipe_disk_buffer_segments", s),
          oldestAgeSeconds: total(m, "auditpipe_disk_buffer_oldest_age_seconds", s),
        }
        : null,
    };
  });
  const drops = samples(m, "auditpipe_sink_dropped_total")
    .filter((d) => d.value > 0)
    .map((d): DropRow => ({
      sink: d.labels.sink ?? "",
      reason: d.labels.reason ?? "",
      total: d.value,
      perSec: rate(before, after, "auditpipe_sink_dropped_total", d.labels),
    }))
    .sort((a, b) => b.total - a.total);
  const lastAt = one(m, "auditpipe_config_last_reload_success_timestamp_seconds");
  return {
    url: meta.url,
    takenAt: meta.takenAt,
    intervalSeconds: before === null ? null : (after.at - before.at) / 1000,
    uptimeSeconds: one(m, "auditpipe_uptime_seconds"),
    rssBytes: one(m, "auditpipe_memory_bytes", { kind: "rss" }),
    sources,
    sinks,
    drops,
    reloads: {
      success: total(m, "auditpipe_config_reload_total", { result: "success" }),
      failure: total(m, "auditpipe_config_reload_total", { result: "failure" }),
      lastSucceeded: one(m, "auditpipe_config_last_reload_successful") !== 0,
      lastSuccessAt: lastAt === null ? null : new Date(lastAt * 1000),
    },
    unreachable: meta.unreachable,
  };
}
