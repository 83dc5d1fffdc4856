/**
 * Latency: webhook → 20-rule policy → log in `blocking` mode, one event per request (as
 * kube-apiserver's blocking webhook backend sends them). In blocking mode the daemon answers
 * a POST only after the log sink wrote its event, so the response time is the time from POST
 * to the line being written.
 *
 * First the maximum request rate is measured (closed loop, 4 concurrent senders); then
 * requests are sent at half that rate on a fixed schedule (open loop: a slow answer does not
 * delay the next request), and p50/p99 are taken over every response. Only events the policy
 * keeps are sent, so every request waits for a write.
 *
 * @module
 */
import { compilePolicy, evaluate, parsePolicy } from "../policy/mod.ts";
import type { Event } from "../pipeline/core/event.ts";
import {
  daemon,
  eventListBody,
  histogramPercentile,
  lineToItem,
  medianRow,
  num,
  outSinkYaml,
  percentile,
  POLICY20,
  type Row,
  scrape,
  sinkCounts,
  sleep,
  WEBHOOK_SOURCE_YAML,
} from "./lib.ts";
import { Pool, postRequest } from "./http_client.ts";

const MAX_RATE_SECONDS = 3;
const HALF_RATE_SECONDS = 15;
const CONCURRENCY = 4;

/** Single-event bodies of events the policy keeps, from the start of `lines`. */
export async function keptBodies(
  lines: readonly string[],
  want: number,
): Promise<Uint8Array<ArrayBuffer>[]> {
  const { policy } = parsePolicy(await Deno.readTextFile(POLICY20), POLICY20);
  const compiled = compilePolicy(policy);
  const enc = new TextEncoder();
  const out: Uint8Array<ArrayBuffer>[] = [];
  for (const line of lines) {
    const e = JSON.parse(line) as Event;
    const r = evaluate(compiled, e);
    if (r.level === "None" || r.omitStages.includes(e.stage)) continue;
    out.push(enc.encode(eventListBody([lineToItem(line)])));
    if (out.length >= want) break;
  }
  return out;
}

/** Closed loop for `seconds`: requests/s the daemon sustains. */
async function maxRate(pool: Pool, requests: Uint8Array[], seconds: number): Promise<number> {
  let i = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let done = 0;
  const loop = async () => {
    while (performance.now() < end) {
      await pool.send(requests[i++ % requests.length]);
      done++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  return done / ((performance.now() - t0) / 1000);
}

/** Open loop at `rate` for `seconds`: per-request latency and sender lag, ms. */
async function fixedRate(
  pool: Pool,
  requests: Uint8Array[],
  rate: number,
  seconds: number,
): Promise<{ latency: number[]; lag: number[]; failed: Map<string, number> }> {
  const n = Math.floor(rate * seconds);
  const interval = 1000 / rate;
  const latency: number[] = [];
  const lag: number[] = [];
  const inFlight: Promise<void>[] = [];
  const failed = new Map<string, number>();
  const fail = (why: string) => void failed.set(why, (failed.get(why) ?? 0) + 1);
  const t0 = performance.now() + 20;
  for (let i = 0; i < n; i++) {
    const due = t0 + i * interval;
    const ahead = due - performance.now();
    // Timers fire at millisecond granularity: sleep only when the next send is far enough
    // off, and send what is due at once (so a late tick never shifts the schedule).
    if (ahead >= 1) await sleep(Math.floor(ahead));
    const sent = performance.now();
    lag.push(Math.max(0, sent - due));
    inFlight.push(
      pool.send(requests[i % requests.length]).then((status) => {
        latency.push(performance.now() - sent);
        if (status !== 200) fail(`HTTP ${status}`);
      }, (err) => fail(String(err))),
    );
  }
  await Promise.all(inFlight);
  return { latency: latency.sort((a, b) => a - b), lag: lag.sort((a, b) => a - b), failed };
}

/**
 * Measures blocking-mode latency at half the maximum single-event rate, with the log sink's
 * `fsync` set to `fsync`, on `opts.runs` fresh daemons, and reports the run with the median
 * p99: with the senders and the daemon sharing two cores, one run's tail depends on what
 * else the machine scheduled during it.
 *
 * @example
 * ```ts
 * const row = await benchLatency(lines, "never", { log: console.error, runs: 3 });
 * ```
 */
export async function benchLatency(
  lines: readonly string[],
  fsync: "never" | "batch",
  opts: { log: (msg: string) => void; runs: number },
): Promise<Row> {
  const bodies = await keptBodies(lines, 20_000);
  const rows: (Row & { value: number })[] = [];
  for (let i = 0; i < opts.runs; i++) rows.push(await latencyOnce(bodies, fsync, opts));
  return medianRow(rows, `per-run p99 ${rows.map((r) => r.value.toFixed(2)).join(", ")} ms`);
}

/** One daemon, one max-rate measurement, one run at half of it. */
async function latencyOnce(
  bodies: Uint8Array<ArrayBuffer>[],
  fsync: "never" | "batch",
  opts: { log: (msg: string) => void },
): Promise<Row & { value: number }> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-latency-" });
  const d = await daemon(() => `
${WEBHOOK_SOURCE_YAML}${outSinkYaml(`${dir}/out.log`, { fsync, shutdownTimeout: "30s" })}`, {
    dir,
  });
  try {
    const pool = new Pool(await d.webhookPort());
    const requests = bodies.map((b) => postRequest("/audit", b));
    const ops = await d.opsPort();
    await sleep(300);
    const max = await maxRate(pool, requests, MAX_RATE_SECONDS);
    const rate = max / 2;
    opts.log(`latency (fsync ${fsync}): max ${num(max)} req/s; sending at ${num(rate)} req/s`);
    await sleep(500);
    const beforeScrape = await scrape(ops);
    const before = sinkCounts(beforeScrape, "out");
    const r = await fixedRate(pool, requests, rate, HALF_RATE_SECONDS);
    pool.close();
    const afterScrape = await scrape(ops);
    const after = sinkCounts(afterScrape, "out");
    const daemonP99 = histogramPercentile(
      beforeScrape,
      afterScrape,
      "auditpipe_source_request_duration_seconds",
      { source: "apiserver", code: "200" },
      99,
    );
    await d.stop("SIGTERM");
    const p50 = percentile(r.latency, 50);
    const p99 = percentile(r.latency, 99);
    const notes = [
      `${num(r.latency.length)} requests; max ${percentile(r.latency, 100).toFixed(2)} ms; ` +
      `p99.9 ${percentile(r.latency, 99.9).toFixed(2)} ms; sender lag behind schedule p99 ${
        percentile(r.lag, 99).toFixed(2)
      } ms; written ${
        num(after.written - before.written)
      }; ${pool.opened} connections; ${pool.resent} requests sent again`,
      `the daemon's own p99, arrival to answer: ${
        (daemonP99 * 1000).toFixed(2)
      } ms (auditpipe_source_request_duration_seconds, interpolated in its bucket)`,
    ];
    if (r.failed.size) {
      notes.push(`failed: ${[...r.failed].map(([why, n]) => `${n} × ${why}`).join("; ")}`);
    }
    return {
      name: `latency: webhook → policy20 → log, blocking, fsync ${fsync}, 1 event/request`,
      result: `p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`,
      baseline: `at ${num(rate)} req/s (max ${num(max)} req/s)`,
      ratio: `p99 ${p99.toFixed(2)} ms`,
      goal: "p99 < 5 ms at half load",
      met: p99 < 5,
      notes,
      value: p99,
    };
  } finally {
    await d.stop("SIGKILL").catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
