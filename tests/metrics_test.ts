import { assert, assertEquals } from "./helpers/assert.ts";
import { postAccepted, postEvents, relayConfig, startDaemon } from "./helpers/daemon.ts";
import { parseMetrics, scrapeMetrics } from "./helpers/metrics.ts";
import { startReceiver } from "./helpers/receiver.ts";
import { waitFor } from "./helpers/wait.ts";
import { metricsRegistry } from "../pipeline/metrics.ts";
import { PipelineStats } from "../pipeline/core/stats.ts";

function event(i: number, extra: Record<string, unknown> = {}) {
  return {
    level: "RequestResponse",
    auditID: `m-${i}`,
    stage: i % 5 === 0 ? "RequestReceived" : "ResponseComplete",
    requestURI: "/api/v1/namespaces/default/configmaps",
    verb: "create",
    user: { username: i % 7 === 0 ? "dropme" : "alice" },
    objectRef: { resource: "configmaps", namespace: "default", apiVersion: "v1" },
    requestObject: { data: { v: "x".repeat(i % 3 === 0 ? 2000 : 10) } },
    requestReceivedTimestamp: "2024-03-01T12:34:56.789000Z",
    stageTimestamp: "2024-03-01T12:34:56.801234Z",
    ...extra,
  };
}

function checkIdentity(m: Map<string, number>, sink: string) {
  const received = m.get(`auditpipe_sink_events_total{sink="${sink}"}`)!;
  const written = m.get(`auditpipe_sink_written_total{sink="${sink}"}`)!;
  const buffered = m.get(`auditpipe_sink_buffer_events{sink="${sink}"}`)!;
  let dropped = 0;
  for (const [k, v] of m) {
    if (k.startsWith(`auditpipe_sink_dropped_total{sink="${sink}",`)) dropped += v;
  }
  assertEquals(received, written + dropped + buffered, `identity for ${sink}`);
  return { received, written, dropped, buffered };
}

Deno.test("metrics: received = written + dropped + buffered for every sink, after drops of every reason", async () => {
  const failing = await startReceiver();
  failing.respond = async () => (await new Promise((r) => setTimeout(r, 20)), 500);
  const stuck = await startReceiver();
  const unstick = stuck.stall();
  const d = await startDaemon((dir) => {
    Deno.writeTextFileSync(`${dir}/failing.kubeconfig`, failing.kubeconfig());
    Deno.writeTextFileSync(`${dir}/stuck.kubeconfig`, stuck.kubeconfig());
    return `
sources:
  - type: webhook
    listen: 127.0.0.1:0
sinks:
  - type: log
    name: policy
    path: ${dir}/policy.log
    policy:
      apiVersion: audit.k8s.io/v1
      kind: Policy
      omitStages: [RequestReceived]
      rules:
        - level: None
          users: [dropme]
        - level: Metadata
  - type: log
    name: small
    path: ${dir}/small.log
    truncate: {enabled: true, maxEventSize: 300, maxBatchSize: 100000}
  - type: webhook
    name: failing
    kubeconfig: failing.kubeconfig
    initialBackoff: 10ms
    retry: {maxAttempts: 2}
    batch: {bufferSize: 5, maxSize: 2, maxWait: 10ms, throttle: {enabled: false}}
  - type: webhook
    name: stuck
    kubeconfig: stuck.kubeconfig
    batch: {bufferSize: 50, maxSize: 10, maxWait: 10ms}
server:
  listen: 127.0.0.1:0
shutdownTimeout: 1s
`;
  });
  const port = await d.webhookPort();
  const ops = await d.opsPort();
  const all = Array.from({ length: 300 }, (_, i) => event(i));
  for (let i = 0; i < all.length; i += 30) {
    await postAccepted(port, all.slice(i, i + 30));
    await new Promise((r) => setTimeout(r, 15));
  }
  let m = new Map<string, number>();
  const names = ["policy", "small", "failing", "stuck"];
  await waitFor(
    "all 300 events at every sink and the failing sink's retries exhausted",
    async () => {
      m = await scrapeMetrics(ops);
      return names.every((s) => m.get(`auditpipe_sink_events_total{sink="${s}"}`) === 300) &&
        (m.get(`auditpipe_sink_dropped_total{sink="failing",reason="retries_exhausted"}`) ?? 0) > 0;
    },
    { intervalMs: 50, detail: () => JSON.stringify([...m].filter(([k]) => k.includes("sink_"))) },
  );
  for (const sink of names) {
    const s = checkIdentity(m, sink);
    assertEquals(s.received, 300);
  }
  const dropped = (sink: string, reason: string) =>
    m.get(`auditpipe_sink_dropped_total{sink="${sink}",reason="${reason}"}`)!;
  assert(dropped("policy", "policy") > 0);
  assert(dropped("policy", "omitted_stage") > 0);
  assert(dropped("small", "too_large") > 0);
  assert(
    dropped("failing", "retries_exhausted") > 0,
    JSON.stringify([...m].filter(([k]) => k.includes(`"failing"`))),
  );
  assert(dropped("failing", "buffer_full") > 0);
  assert(dropped("stuck", "buffer_full") > 0);
  assert(m.get(`auditpipe_sink_retries_total{sink="failing"}`)! > 0);
  assert(m.get(`auditpipe_level_total{level="None"}`)! > 0);
  assert(m.get(`auditpipe_memory_bytes{kind="rss"}`)! > 0);
  assertEquals(m.get(`auditpipe_source_events_total{source="webhook"}`), 300);
  assertEquals(
    m.get(`auditpipe_source_request_duration_seconds_count{source="webhook",code="200"}`),
    10,
    "every request's time to its answer",
  );

  // The stuck sink cannot drain within shutdownTimeout: what it held is dropped for shutdown.
  const { code } = await d.stop();
  assertEquals(code, 0);
  const final = d.logs.find((r) => r.msg === "pipeline stopped")!;
  assertEquals(final.outcome, "timeout");
  const sinks = final.sinks as Record<
    string,
    { received: number; written: number; dropped: Record<string, number>; buffered: number }
  >;
  for (const [name, s] of Object.entries(sinks)) {
    const total = Object.values(s.dropped).reduce((a, b) => a + b, 0);
    assertEquals(s.buffered, 0, name);
    assertEquals(s.received, s.written + total, name);
  }
  assert(sinks.stuck.dropped.shutdown > 0);
  assert(
    d.logs.some((r) => r.msg === "shutdown timeout; events not delivered" && r.sink === "stuck"),
  );
  await failing.close();
  unstick();
  await stuck.close();
  await Deno.remove(d.dir, { recursive: true });
});

Deno.test("readyz turns false when a webhook sink's receiver goes away and true when it returns", async () => {
  let recv = await startReceiver();
  const recvPort = Number(new URL(recv.url).port);
  const d = await startDaemon(
    relayConfig(recv, [
      "initialBackoff: 10ms",
      "retry: {maxAttempts: 1}",
      "batch: {maxSize: 1, throttle: {enabled: false}}",
    ], ["server:", "  listen: 127.0.0.1:0", "  unhealthyAfter: 300ms"]),
  );
  const port = await d.webhookPort();
  const ops = await d.opsPort();
  let n = 0;
  const post = async () => await (await postEvents(port, [event(n++)])).body?.cancel();
  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${ops}/readyz`);
    return { status: res.status, body: await res.json() };
  };
  await post();
  assertEquals((await readyz()).status, 200);
  await recv.close();
  let r = await readyz();
  await waitFor("/readyz to answer 503 while the sink fails", async () => {
    await post();
    r = await readyz();
    return r.status === 503;
  }, { intervalMs: 20 });
  assertEquals(r.body.failing[0].name, "siem");
  assertEquals(r.body.failing[0].kind, "sink");
  recv = await startReceiver(recvPort);
  await waitFor("/readyz to answer 200 once the sink recovers", async () => {
    await post();
    r = await readyz();
    return r.status === 200;
  }, { intervalMs: 20 });
  assertEquals((await d.stop()).code, 0);
  await recv.close();
  await Deno.remove(d.dir, { recursive: true });
});

Deno.test("duration histograms count every observation between scrapes, in cumulative buckets", async () => {
  const stats = new PipelineStats();
  const source = stats.source("api");
  for (let i = 0; i < 20_000; i++) source.answered(200, i % 2 ? 0.0007 : 0.003);
  source.answered(429, 0.0001);
  stats.sink("out").wrote(5, 0.02);
  const m = parseMetrics(await metricsRegistry(stats).metrics());
  const req = (le: string, code = "200") =>
    m.get(
      `auditpipe_source_request_duration_seconds_bucket{le="${le}",source="api",code="${code}"}`,
    );
  assertEquals(req("0.0005"), 0);
  assertEquals(req("0.001"), 10_000);
  assertEquals(req("0.005"), 20_000);
  assertEquals(req("+Inf"), 20_000);
  assertEquals(
    m.get(`auditpipe_source_request_duration_seconds_count{source="api",code="200"}`),
    20_000,
  );
  assertEquals(req("0.0005", "429"), 1);
  assertEquals(m.get(`auditpipe_sink_send_duration_seconds_bucket{le="0.01",sink="out"}`), 0);
  assertEquals(m.get(`auditpipe_sink_send_duration_seconds_bucket{le="0.025",sink="out"}`), 1);
  assertEquals(m.get(`auditpipe_sink_send_duration_seconds_sum{sink="out"}`), 0.02);
});
