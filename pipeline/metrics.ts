/**
 * Prometheus exposition of the pipeline's counters, with prom-client (it runs under Deno
 * and keeps the text format, escaping and process metrics right). The data path counts in
 * plain numbers ({@linkcode PipelineStats}); series are filled from them at scrape time, so
 * the counters are read in one pass and the identity received = written + dropped +
 * buffered holds in every scrape.
 *
 * @module
 */
import client from "prom-client";
import { LEVELS } from "./core/event.ts";
import {
  DROP_REASONS,
  DURATION_BUCKETS,
  FILE_REOPEN_REASONS,
  type PipelineStats,
  type SinkStats,
  type SourceStats,
} from "./core/stats.ts";
import { ReloadStats } from "./reloads.ts";
import { diskBufferStatsOf } from "./disk_lane.ts";
import type { DiskBufferStats } from "./diskbuffer/stats.ts";
import type { AuditSinkStats } from "./dynamic/stats.ts";

/**
 * A registry exposing `stats`, the outcomes of config reloads and, with `dynamic.dir`, what
 * the AuditSink folder gave.
 *
 * @example
 * ```ts
 * const registry = metricsRegistry(stats, reloads);
 * const text = await registry.metrics();
 * ```
 */
export function metricsRegistry(
  stats: PipelineStats,
  reloads: ReloadStats = new ReloadStats(stats.startedAt),
  auditSinks?: AuditSinkStats,
): client.Registry {
  const registers = [new client.Registry()];
  const [reg] = registers;
  const sinks = () => [...stats.sinks.values()];
  const sources = () => [...stats.sources.values()];

  // A histogram read from counts the data path keeps (stats.ts `Durations`): prom-client's
  // own Histogram can only be fed observations one by one.
  const histogram = (
    name: string,
    help: string,
    read: (
      emit: (labels: Record<string, string>, s?: { counts: number[]; sum: number }) => void,
    ) => void,
  ) => {
    const metric = {
      name,
      help,
      type: "histogram",
      aggregator: "sum",
      get() {
        const values: {
          metricName: string;
          labels: Record<string, string | number>;
          value: number;
        }[] = [];
        read((labels, s) => {
          if (!s) return;
          DURATION_BUCKETS.forEach((le, i) =>
            values.push({
              metricName: `${name}_bucket`,
              labels: { le, ...labels },
              value: s.counts[i],
            })
          );
          const count = s.counts[DURATION_BUCKETS.length];
          values.push({
            metricName: `${name}_bucket`,
            labels: { le: "+Inf", ...labels },
            value: count,
          });
          values.push({ metricName: `${name}_sum`, labels, value: s.sum });
          values.push({ metricName: `${name}_count`, labels, value: count });
        });
        return { name, help, type: "histogram", aggregator: "sum", values };
      },
    };
    for (const r of registers) r.registerMetric(metric as unknown as client.Metric);
  };

  const counter = (
    name: string,
    help: string,
    labelNames: string[],
    fill: (set: (labels: Record<string, string>, v: number) => void) => void,
  ) =>
    new client.Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        fill((labels, v) => this.inc(labels, v));
      },
    });
  const gauge = (
    name: string,
    help: string,
    labelNames: string[],
    fill: (set: (labels: Record<string, string>, v: number) => void) => void,
  ) =>
    new client.Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        fill((labels, v) => this.set(labels, v));
      },
    });

  type Metric = typeof counter;
  // Most series are one number per sink or per source, labelled by its name.
  const perSink = (metric: Metric, name: string, help: string, pick: (s: SinkStats) => number) =>
    metric(name, help, ["sink"], (set) => {
      for (const s of sinks()) set({ sink: s.name }, pick(s));
    });
  const perSource = (
    metric: Metric,
    name: string,
    help: string,
    pick: (s: SourceStats) => number,
  ) =>
    metric(name, help, ["source"], (set) => {
      for (const s of sources()) set({ source: s.name }, pick(s));
    });

  // Disk buffers: one series per sink that has one (open).
  const perDisk = (
    metric: Metric,
    name: string,
    help: string,
    pick: (d: DiskBufferStats) => number,
  ) =>
    metric(name, help, ["sink"], (set) => {
      for (const s of sinks()) {
        const d = diskBufferStatsOf(s);
        if (d) set({ sink: s.name }, pick(d));
      }
    });
  perDisk(
    gauge,
    "auditpipe_disk_buffer_bytes",
    "Bytes of a sink's disk buffer segment files (delivered records count until their segment is deleted).",
    (d) => d.bytes,
  );
  perDisk(
    gauge,
    "auditpipe_disk_buffer_events",
    "Events in a sink's disk buffer not yet delivered (part of auditpipe_sink_buffer_events).",
    (d) => d.events,
  );
  perDisk(
    gauge,
    "auditpipe_disk_buffer_segments",
    "Segment files of a sink's disk buffer.",
    (d) => d.segments,
  );
  perDisk(
    gauge,
    "auditpipe_disk_buffer_oldest_age_seconds",
    "Age of the oldest undelivered event in a sink's disk buffer; 0 when it is empty.",
    (d) => d.oldestUndeliveredAgeSeconds(Date.now()),
  );
  perDisk(
    counter,
    "auditpipe_disk_buffer_corrupt_records_total",
    "Damaged regions of a sink's disk buffer found by their CRC and cut off.",
    (d) => d.corruptRecords,
  );
  perDisk(
    counter,
    "auditpipe_disk_buffer_append_errors_total",
    "Appends to a sink's disk buffer the disk refused (full, read-only, permission); their acks failed.",
    (d) => d.appendErrors,
  );
  perSource(
    counter,
    "auditpipe_source_events_total",
    "Events decoded by a source.",
    (s) => s.events,
  );
  counter(
    "auditpipe_source_rejected_total",
    "Inputs a source rejected, by reason.",
    ["source", "reason"],
    (set) => {
      for (const s of sources()) {
        for (const [r, n] of s.rejected) set({ source: s.name, reason: r }, n);
      }
    },
  );
  perSource(
    gauge,
    "auditpipe_tail_lag_bytes",
    "Bytes of the followed file not read yet.",
    (s) => s.lagBytes,
  );
  perSource(
    counter,
    "auditpipe_tail_checkpoint_errors_total",
    "Tail checkpoint writes that failed; while the last one failed, /readyz fails.",
    (s) => s.checkpointErrors,
  );
  // The NATS source's consumer, as last read (zeros for other sources, as the tail's are).
  perSource(
    gauge,
    "auditpipe_nats_consumer_pending_messages",
    "Messages in a NATS source's stream not yet delivered to its consumer (num_pending), as last read.",
    (s) => s.nats.pending,
  );
  perSource(
    gauge,
    "auditpipe_nats_consumer_ack_pending_messages",
    "Messages a NATS source's consumer delivered that are not acknowledged yet (num_ack_pending), as last read.",
    (s) => s.nats.ackPending,
  );
  perSource(
    gauge,
    "auditpipe_nats_consumer_redelivered_messages",
    "Messages awaiting their ack that a NATS source's consumer delivered more than once (num_redelivered), as last read.",
    (s) => s.nats.redelivered,
  );
  perSource(
    gauge,
    "auditpipe_nats_consumer_last_delivered_timestamp_seconds",
    "When JetStream stored the newest message a NATS source fetched, Unix seconds; 0 before the first.",
    (s) => s.nats.lastDeliveredTimestamp,
  );
  perSink(
    counter,
    "auditpipe_sink_events_total",
    "Events a sink branch received.",
    (s) => s.received,
  );
  perSink(counter, "auditpipe_sink_written_total", "Events a sink wrote.", (s) => s.written);
  perSink(counter, "auditpipe_sink_batches_total", "Batches a sink wrote.", (s) => s.batches);
  counter(
    "auditpipe_sink_dropped_total",
    "Events a sink branch dropped, by reason.",
    ["sink", "reason"],
    (set) => {
      for (const s of sinks()) {
        for (const r of DROP_REASONS) set({ sink: s.name, reason: r }, s.dropped[r]);
      }
    },
  );
  counter(
    "auditpipe_sink_file_reopened_total",
    "Times a log sink found its file removed or replaced and reopened it, by reason.",
    ["sink", "reason"],
    (set) => {
      for (const s of sinks()) {
        const n = s.fileReopens;
        if (n) { for (const r of FILE_REOPEN_REASONS) set({ sink: s.name, reason: r }, n[r]); }
      }
    },
  );
  counter(
    "auditpipe_sink_checkpoints_total",
    "Signed checkpoints a log sink with integrity wrote to its .chain sidecar.",
    ["sink"],
    (set) => {
      for (const s of sinks()) if (s.checkpoints !== null) set({ sink: s.name }, s.checkpoints);
    },
  );
  gauge(
    "auditpipe_sink_chain_lines",
    "Lines a log sink with integrity chained since it started (recovered ones included), as of its last checkpoint.",
    ["sink"],
    (set) => {
      for (const s of sinks()) if (s.checkpoints !== null) set({ sink: s.name }, s.chainLength);
    },
  );
  perSink(counter, "auditpipe_sink_retries_total", "Retried sink writes.", (s) => s.retries);
  perSink(
    gauge,
    "auditpipe_sink_buffer_events",
    "Events a sink branch holds now: in its stages, buffer, batches and writes in progress, counted where they are (so received = written + dropped + this).",
    (s) => s.buffered,
  );
  gauge(
    "auditpipe_sink_buffer_capacity_events",
    "Events a batch-mode sink's memory buffer holds at most (batch.bufferSize); beyond, events are dropped as buffer_full. Blocking and disk-buffered sinks have none.",
    ["sink"],
    (set) => {
      for (const s of sinks()) {
        if (s.bufferCapacity !== null) set({ sink: s.name }, s.bufferCapacity);
      }
    },
  );
  gauge(
    "auditpipe_disk_buffer_max_bytes",
    "A sink's disk buffer maxBytes: auditpipe_disk_buffer_bytes stays below it (then whenFull applies).",
    ["sink"],
    (set) => {
      for (const s of sinks()) if (s.diskMaxBytes !== null) set({ sink: s.name }, s.diskMaxBytes);
    },
  );
  perSink(
    counter,
    "auditpipe_sink_throttle_wait_seconds_total",
    "Time a sink's batches waited for the throttle.",
    (s) => s.throttleWaitSeconds,
  );
  counter("auditpipe_level_total", "Policy evaluations by resulting level.", ["level"], (set) => {
    for (const l of LEVELS) set({ level: l }, stats.levels[l]);
  });
  gauge("auditpipe_uptime_seconds", "Seconds since the daemon started.", [], (set) => {
    set({}, (Date.now() - stats.startedAt) / 1000);
  });
  // Named as Prometheus names its own, so the same alerts work.
  counter(
    "auditpipe_config_reload_total",
    "Config reloads (SIGHUP, --watch-config), by result: failure when refused or applied in part.",
    ["result"],
    (set) => {
      set({ result: "success" }, reloads.success);
      set({ result: "failure" }, reloads.failure);
    },
  );
  gauge(
    "auditpipe_config_last_reload_successful",
    "Whether the last config reload succeeded (1) or not (0); 1 before any reload.",
    [],
    (set) => set({}, reloads.lastSucceeded ? 1 : 0),
  );
  gauge(
    "auditpipe_config_last_reload_success_timestamp_seconds",
    "Unix time of the last successful config load: startup, then each successful reload.",
    [],
    (set) => set({}, reloads.lastSuccessAt / 1000),
  );
  if (auditSinks) {
    gauge("auditpipe_auditsinks", "AuditSinks of dynamic.dir running as sinks.", [], (set) => {
      set({}, auditSinks.running);
    });
    gauge(
      "auditpipe_auditsink_invalid_objects",
      "Problems the last read of dynamic.dir found: AuditSinks left out, files unreadable.",
      [],
      (set) => set({}, auditSinks.invalid),
    );
    counter(
      "auditpipe_auditsink_reload_total",
      "Changes of dynamic.dir applied (success) or not (failure: refused, folder unreadable).",
      ["result"],
      (set) => {
        set({ result: "success" }, auditSinks.reloads.success);
        set({ result: "failure" }, auditSinks.reloads.failure);
      },
    );
  }
  // prom-client's process_resident_memory_bytes reads /proc, which least-privilege runs
  // cannot; Deno reports memory without any permission.
  gauge(
    "auditpipe_memory_bytes",
    "Process memory by kind, from Deno.memoryUsage().",
    ["kind"],
    (set) => {
      const m = Deno.memoryUsage();
      set({ kind: "rss" }, m.rss);
      set({ kind: "heap_used" }, m.heapUsed);
      set({ kind: "heap_total" }, m.heapTotal);
      set({ kind: "external" }, m.external);
    },
  );
  histogram(
    "auditpipe_sink_send_duration_seconds",
    "Time a sink took to write a batch.",
    (emit) => {
      for (const s of sinks()) emit({ sink: s.name }, s.sendDurations.series.get(""));
    },
  );
  histogram(
    "auditpipe_source_request_duration_seconds",
    "Time from a webhook request's arrival to its answer: in blocking modes, until the sinks wrote its events.",
    (emit) => {
      for (const s of sources()) {
        for (const [code, series] of s.requestDurations.series) {
          emit({ source: s.name, code }, series);
        }
      }
    },
  );
  histogram(
    "auditpipe_disk_buffer_fsync_duration_seconds",
    "Time a sink's disk buffer took to fsync, by file: segment (appends, group commit), cursor, or dir (the folder, after a segment file is made).",
    (emit) => {
      for (const s of sinks()) {
        const d = diskBufferStatsOf(s);
        if (!d) continue;
        for (const [file, series] of d.fsync.series) emit({ sink: s.name, file }, series);
      }
    },
  );
  client.collectDefaultMetrics({ register: reg, prefix: "auditpipe_" });
  return reg;
}
