/**
 * `auditpipe top`'s pieces without a terminal: the Prometheus text parser, rates and p99 from
 * two scrapes, the view model and the 80-column renderer, and the snapshot a pipe gets.
 */
import assert from "node:assert/strict";
import { has, parsePrometheusText, PrometheusTextError, total } from "../cli/top/prometheus.ts";
import { bucketIncrease, buckets, quantile, rate, type Scrape } from "../cli/top/rates.ts";
import { count, latency, renderTop } from "../cli/top/render.ts";
import { metricsUrl } from "../cli/top/scrape.ts";
import { topView } from "../cli/top/view.ts";
import { metricsRegistry } from "../pipeline/metrics.ts";
import { PipelineStats } from "../pipeline/core/stats.ts";
import { ROOT } from "./helpers/daemon.ts";
import { freePort } from "./helpers/nats.ts";

Deno.test("prometheus parser: labels with escapes, timestamps, special values, comments", () => {
  const m = parsePrometheusText([
    "# HELP a_total A counter.",
    "# TYPE a_total counter",
    'a_total{sink="lo\\"cal",path="C:\\\\x\\nnext"} 12 1700000000000',
    'a_total{sink="b"} 3',
    "up 1",
    'h_bucket{le="+Inf"} +Inf',
    "nan_gauge NaN",
    "prom_client_nan Nan",
    "  ",
  ].join("\n"));
  assert.deepEqual(m.get("a_total"), [
    { labels: { sink: 'lo"cal', path: "C:\\x\nnext" }, value: 12 },
    { labels: { sink: "b" }, value: 3 },
  ]);
  assert.equal(total(m, "a_total"), 15);
  assert.equal(total(m, "up"), 1);
  assert.equal(m.get("h_bucket")![0].value, Infinity);
  assert.ok(Number.isNaN(m.get("nan_gauge")![0].value));
  assert.ok(has(m, "a_total", { sink: "b" }));
  assert.ok(!has(m, "a_total", { sink: "c" }));
});

Deno.test("prometheus parser: a page that is not metrics fails naming its line", () => {
  assert.throws(
    () => parsePrometheusText("# fine\n<html><body>Not Found</body></html>"),
    (e: unknown) => e instanceof PrometheusTextError && e.line === 2,
  );
  assert.throws(() => parsePrometheusText('x{a="1} 2'), PrometheusTextError);
  assert.throws(() => parsePrometheusText("x_total twelve"), PrometheusTextError);
});

Deno.test("prometheus parser: reads the daemon's own exposition", async () => {
  const stats = new PipelineStats();
  const sink = stats.sink("local");
  sink.received = 7;
  sink.written = 5;
  stats.source("apiserver").answered(200, 0.003);
  const m = parsePrometheusText(await metricsRegistry(stats).metrics());
  assert.equal(total(m, "auditpipe_sink_events_total", { sink: "local" }), 7);
  assert.equal(total(m, "auditpipe_sink_written_total", { sink: "local" }), 5);
  assert.ok(has(m, "auditpipe_source_events_total", { source: "apiserver" }));
  const b = buckets(m, "auditpipe_source_request_duration_seconds", { source: "apiserver" });
  assert.equal(quantile(0.99, b)! <= 0.005 && quantile(0.99, b)! > 0.0025, true);
});

const at = (seconds: number, text: string): Scrape => ({
  at: seconds * 1000,
  metrics: parsePrometheusText(text),
});

Deno.test("rates: per second between two scrapes, summed over series, a reset counts from zero", () => {
  const a = at(10, 'c_total{sink="x",reason="a"} 100\nc_total{sink="x",reason="b"} 50\n');
  const b = at(12, 'c_total{sink="x",reason="a"} 120\nc_total{sink="x",reason="b"} 4\n');
  // reason a grew 20; reason b was reset and counts its new 4.
  assert.equal(rate(a, b, "c_total", { sink: "x" }), 12);
  assert.equal(rate(a, b, "c_total", { reason: "a" }), 10);
  assert.equal(rate(null, b, "c_total"), null);
  assert.equal(rate(b, b, "c_total"), null);
  // A series that appeared between the scrapes grew from zero.
  assert.equal(rate(a, at(11, 'c_total{sink="y"} 5\n'), "c_total", { sink: "y" }), 5);
});

Deno.test("p99 from histogram buckets: interpolated in its bucket, over the observations between scrapes", () => {
  const text = (counts: number[]) =>
    ["0.01", "0.1", "1", "+Inf"].map((le, i) =>
      `d_bucket{le="${le}",source="s",code="200"} ${counts[i]}\n` +
      `d_bucket{le="${le}",source="s",code="429"} ${Math.floor(counts[i] / 10)}`
    ).join("\n");
  // 100 observations in the window (code 200: 90 fast, 10 in 0.1-1; code 429: none).
  const before = at(0, text([0, 0, 0, 0]));
  const after = at(1, text([90, 90, 100, 100]));
  const window = bucketIncrease(
    buckets(before.metrics, "d", { source: "s" }),
    buckets(after.metrics, "d", { source: "s" }),
  );
  // Codes are added up: 99 + 10 + ... per bound.
  assert.deepEqual(window, [[0.01, 99], [0.1, 99], [1, 110], [Infinity, 110]]);
  const p99 = quantile(0.99, window)!;
  // rank 108.9 falls in (0.1, 1] holding 11: 0.1 + 0.9 * (108.9 - 99) / 11
  assert.ok(Math.abs(p99 - (0.1 + 0.9 * 9.9 / 11)) < 1e-9, `p99 ${p99}`);
  assert.equal(quantile(0.5, [[0.1, 50], [0.5, 99], [1, 100], [Infinity, 100]]), 0.1);
  assert.equal(quantile(0.99, [[0.1, 50], [0.5, 99], [1, 100], [Infinity, 100]]), 0.5);
  // Beyond the last finite bound: that bound, as histogram_quantile says.
  assert.equal(quantile(0.99, [[0.1, 1], [1, 1], [Infinity, 10]]), 1);
  assert.equal(quantile(0.99, [[0.1, 0], [Infinity, 0]]), null);
  // A reset histogram (a restart between scrapes) is read whole.
  assert.deepEqual(bucketIncrease([[1, 10], [Infinity, 10]], [[1, 2], [Infinity, 3]]), [
    [1, 2],
    [Infinity, 3],
  ]);
});

const SCRAPE_1 = `
auditpipe_uptime_seconds 3725
auditpipe_memory_bytes{kind="rss"} 104857600
auditpipe_source_events_total{source="apiserver"} 1000
auditpipe_source_events_total{source="tail-of-a-very-long-named-audit-log-source"} 50
auditpipe_source_rejected_total{source="apiserver",reason="overload"} 2
auditpipe_tail_lag_bytes{source="apiserver"} 0
auditpipe_tail_lag_bytes{source="tail-of-a-very-long-named-audit-log-source"} 2048
auditpipe_sink_events_total{sink="local"} 1000
auditpipe_sink_events_total{sink="siem-collector-in-the-other-datacenter-with-a-long-name"} 1000
auditpipe_sink_written_total{sink="local"} 1000
auditpipe_sink_written_total{sink="siem-collector-in-the-other-datacenter-with-a-long-name"} 900
auditpipe_sink_dropped_total{sink="local",reason="buffer_full"} 0
auditpipe_sink_dropped_total{sink="siem-collector-in-the-other-datacenter-with-a-long-name",reason="retries_exhausted"} 40
auditpipe_sink_retries_total{sink="siem-collector-in-the-other-datacenter-with-a-long-name"} 7
auditpipe_sink_buffer_events{sink="local"} 0
auditpipe_sink_buffer_events{sink="siem-collector-in-the-other-datacenter-with-a-long-name"} 60
auditpipe_disk_buffer_bytes{sink="siem-collector-in-the-other-datacenter-with-a-long-name"} 1048576
auditpipe_disk_buffer_events{sink="siem-collector-in-the-other-datacenter-with-a-long-name"} 60
auditpipe_disk_buffer_segments{sink="siem-collector-in-the-other-datacenter-with-a-long-name"} 2
auditpipe_disk_buffer_max_bytes{sink="siem-collector-in-the-other-datacenter-with-a-long-name"} 4194304
auditpipe_sink_buffer_capacity_events{sink="batch-to-a-slow-sink"} 10000
auditpipe_sink_buffer_events{sink="batch-to-a-slow-sink"} 2500
auditpipe_sink_events_total{sink="batch-to-a-slow-sink"} 2500
auditpipe_disk_buffer_oldest_age_seconds{sink="siem-collector-in-the-other-datacenter-with-a-long-name"} 302
auditpipe_config_reload_total{result="success"} 2
auditpipe_config_reload_total{result="failure"} 1
auditpipe_config_last_reload_successful 0
auditpipe_config_last_reload_success_timestamp_seconds 1700000000
`;

function twoScrapes(): [Scrape, Scrape] {
  const second = SCRAPE_1
    .replace('events_total{source="apiserver"} 1000', 'events_total{source="apiserver"} 1300')
    .replace('sink_events_total{sink="local"} 1000', 'sink_events_total{sink="local"} 1300')
    .replace('written_total{sink="local"} 1000', 'written_total{sink="local"} 1290')
    .replace('reason="retries_exhausted"} 40', 'reason="retries_exhausted"} 100');
  return [at(100, SCRAPE_1), at(101, second)];
}

Deno.test("view: sources, sinks, buffers, drops by reason and reloads from two scrapes", () => {
  const [a, b] = twoScrapes();
  const v = topView(a, b, {
    url: "http://x:9090/metrics",
    takenAt: new Date(0),
    unreachable: null,
  });
  assert.deepEqual(
    v.sources.map((s) => [s.name, s.eventsPerSec, s.events, s.rejected, s.lagBytes]),
    [
      ["apiserver", 300, 1300, 2, null],
      ["tail-of-a-very-long-named-audit-log-source", 0, 50, 0, 2048],
    ],
  );
  const [local, siem] = v.sinks;
  assert.deepEqual([local.inPerSec, local.outPerSec, local.written, local.disk], [
    300,
    290,
    1290,
    null,
  ]);
  assert.deepEqual([siem.dropped, siem.retries, siem.held], [100, 7, 60]);
  assert.deepEqual(siem.disk, {
    bytes: 1048576,
    maxBytes: 4194304,
    events: 60,
    segments: 2,
    oldestAgeSeconds: 302,
  });
  assert.deepEqual([local.capacity, siem.capacity, v.sinks[2].capacity], [null, null, 10000]);
  assert.deepEqual(v.drops, [{
    sink: "siem-collector-in-the-other-datacenter-with-a-long-name",
    reason: "retries_exhausted",
    total: 100,
    perSec: 60,
  }]);
  assert.deepEqual(v.reloads, {
    success: 2,
    failure: 1,
    lastSucceeded: false,
    lastSuccessAt: new Date(1700000000 * 1000),
  });
  assert.equal(v.intervalSeconds, 1);
});

Deno.test("render: every line fits 80 columns with long names, which are cut with …", () => {
  const [a, b] = twoScrapes();
  const v = topView(a, b, {
    url: "http://a-rather-long-host-name.example.internal:9090/metrics",
    takenAt: new Date(0),
    unreachable: { since: new Date(0), error: "tcp connect error: Connection refused" },
  });
  for (const width of [80, 100, 132]) {
    const lines = renderTop(v, { width, footer: "q quits" });
    for (const l of lines) assert.ok([...l].length <= width, `${[...l].length} > ${width}: ${l}`);
  }
  const text = renderTop(v, { width: 80 }).join("\n");
  assert.match(text, /^siem-collector-in-the-… +0\.0 +0\.0 +900 +100 +7 +-$/m);
  assert.match(text, /^local +300\.0 +290\.0 +1,290 +0 +0 +-$/m);
  assert.match(text, /^apiserver +300\.0 +1,300 +2 +0\.0 +- +-$/m);
  // FILL: a disk buffer's bytes of its maxBytes; a batch memory buffer's events of bufferSize.
  assert.match(text, /^siem-collector-in-the… +60 +25% +60 +1\.0MiB +2 +5m02s$/m);
  assert.match(text, /^batch-to-a-slow-sink +2,500 +25% +- +- +- +-$/m);
  assert.match(text, /^siem-collector-in-the-other-datacenter-… retries_exhausted +100 +60\.0$/m);
  assert.match(text, /RELOADS +2 ok, 1 failed, last FAILED/);
  assert.match(text, /UNREACHABLE since 00:00:00: tcp connect error: Connection refused/);
  assert.match(text, /up 1h02m/);
});

Deno.test("render: a table that does not fit the height ends in … N more", () => {
  const many = Array.from(
    { length: 30 },
    (_, i) =>
      `auditpipe_sink_events_total{sink="s${i}"} ${i}\nauditpipe_sink_written_total{sink="s${i}"} ${i}`,
  ).join("\n");
  const v = topView(null, at(0, many), { url: "u", takenAt: new Date(0), unreachable: null });
  const lines = renderTop(v, { width: 80, height: 24 });
  assert.equal(lines.length, 24);
  assert.ok(lines.some((l) => /^ {2}… \d+ more$/.test(l)), lines.join("\n"));
  assert.match(lines.at(-1)!, /one scrape: no rates/);
});

Deno.test("render: counts stay exact while they fit, then shorten; latencies in us, ms, s", () => {
  assert.equal(count(1234567), "1,234,567");
  assert.equal(count(123456789012, 11), "123G");
  assert.equal(count(12345678, 6), "12.3M");
  assert.equal(latency(0.0004), "400us");
  assert.equal(latency(0.0125), "12.5ms");
  assert.equal(latency(0.25), "250ms");
  assert.equal(latency(2.5), "2.50s");
  assert.equal(latency(null), "-");
});

Deno.test("--url: host:port and base URLs get /metrics; other schemes are refused", () => {
  assert.equal(metricsUrl("127.0.0.1:9090"), "http://127.0.0.1:9090/metrics");
  assert.equal(metricsUrl("http://[::1]:9090/"), "http://[::1]:9090/metrics");
  assert.equal(
    metricsUrl("https://node1:9443/custom/metrics"),
    "https://node1:9443/custom/metrics",
  );
  assert.throws(() => metricsUrl("ftp://x/"), /not an http\(s\) URL/);
});

Deno.test("top on a URL nothing listens on: an error naming the URL, exit 1", async () => {
  const port = freePort();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "top", "--once", "--url", `127.0.0.1:${port}`],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, err);
  assert.match(
    err,
    new RegExp(
      `auditpipe top: cannot read metrics from http://127\\.0\\.0\\.1:${port}/metrics: .*refused`,
    ),
  );
  assert.equal(out.stdout.length, 0);
});
