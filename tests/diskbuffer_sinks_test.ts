/**
 * A disk buffer works with the log, stdout and NATS sinks as with the webhook sink (tested in
 * diskbuffer_e2e_test.ts): what they write went through the buffer, with the sink's policy
 * applied before it was stored.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { postAccepted, readJsonLines, startDaemon } from "./helpers/daemon.ts";
import { numberedEvents } from "./helpers/events.ts";
import { scrapeMetrics } from "./helpers/metrics.ts";
import { withTempDir } from "./helpers/tmp.ts";
import { needs } from "./helpers/external.ts";
import { collectorConfig, publisherConfig, startNatsServer } from "./helpers/nats.ts";
import { waitFor } from "./helpers/wait.ts";

const POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
`;

Deno.test("disk buffer sinks: a log sink in batch mode and a stdout sink, each with a disk buffer and the log sink with a policy, write every event once, at the policy's level", () =>
  withTempDir("auditpipe-disksinks-", async (dir) => {
    await Deno.writeTextFile(`${dir}/policy.yaml`, POLICY);
    const d = await startDaemon(() => `
sources:
  - type: webhook
    listen: 127.0.0.1:0
sinks:
  - type: log
    name: local
    path: out/audit.log
    mode: batch
    batch: {maxSize: 50, maxWait: 20ms}
    policy: policy.yaml
    buffer: {type: disk, path: buf-log, maxBytes: 4MiB}
  - type: stdout
    buffer: {type: disk, path: buf-stdout}
server:
  listen: 127.0.0.1:0
`, { dir });
    const port = await d.webhookPort();
    const events = numberedEvents("sk", 0, 300, {
      level: "RequestResponse",
      requestObject: { kind: "Pod", apiVersion: "v1", metadata: { name: "p" } },
    });
    for (let i = 0; i < 300; i += 50) await postAccepted(port, events.slice(i, i + 50));
    const ops = await d.opsPort();
    await waitFor("both buffers empty", async () => {
      const m = await scrapeMetrics(ops);
      return m.get('auditpipe_sink_written_total{sink="local"}') === 300 &&
        m.get('auditpipe_sink_written_total{sink="stdout"}') === 300;
    });
    const m = await scrapeMetrics(ops);
    assertEquals(m.get('auditpipe_disk_buffer_events{sink="local"}'), 0);
    assertEquals(m.get('auditpipe_disk_buffer_events{sink="stdout"}'), 0);
    const { code, stdout } = await d.stop();
    assertEquals(code, 0);
    const ids = events.map((e) => e.auditID);
    const logged = await readJsonLines(`${dir}/out/audit.log`);
    assertEquals(logged.map((e) => e.auditID), ids);
    for (const e of logged) {
      assertEquals(e.level, "Metadata");
      assert(!("requestObject" in e), "the policy's level was applied before the buffer");
    }
    const printed = stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    assertEquals(printed.map((e) => e.auditID), ids);
    assertEquals(printed[0].level, "RequestResponse");
  }));

Deno.test(
  needs(
    "nats-server",
    "disk buffer sinks: a NATS sink with a disk buffer publishes every event to JetStream, where a collector daemon reads it",
  ),
  async () => {
    const nats = await startNatsServer();
    try {
      const node = await startDaemon(
        publisherConfig(nats.url, ["buffer: {type: disk, path: buf}"]),
      );
      const collector = await startDaemon(collectorConfig(nats.url));
      const events = numberedEvents("ns", 0, 200);
      for (let i = 0; i < 200; i += 50) {
        await postAccepted(await node.webhookPort(), events.slice(i, i + 50));
      }
      const path = `${collector.dir}/all.log`;
      let got: Record<string, unknown>[] = [];
      await waitFor("every event in the collector's log", async () => {
        got = await readJsonLines(path).catch(() => []);
        return got.length >= events.length;
      }, { detail: () => `${got.length} there` });
      for (const d of [node, collector]) assertEquals((await d.stop()).code, 0);
      assertEquals(got.map((e) => e.auditID), events.map((e) => e.auditID));
      const sink = node.logs.find((r) => r.msg === "sink configured");
      assert(String(sink?.describe).includes(`disk(${node.dir}/buf`), JSON.stringify(sink));
      for (const d of [node, collector]) await Deno.remove(d.dir, { recursive: true });
    } finally {
      await nats.stop();
    }
  },
);
