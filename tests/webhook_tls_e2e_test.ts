/**
 * kube-apiserver's side of the webhook played by our own webhook sink, loaded from the
 * kubeconfigs in deploy/, against the real daemon's webhook source with TLS.
 */
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { realEvents, ROOT, startDaemon } from "./helpers/daemon.ts";
import { testEnvelope } from "./helpers/events.ts";
import { createTestPki, type TestPki } from "./helpers/tls.ts";
import { parseKubeconfig } from "../backends/kubeconfig.ts";
import { createWebhookSink } from "../backends/webhook.ts";
import { systemClock } from "../pipeline/core/clock.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import type { Event } from "../pipeline/core/event.ts";
import { needs } from "./helpers/external.ts";

async function deployKubeconfig(name: string, pki: TestPki, port: number, tokenFile: string) {
  const text = (await Deno.readTextFile(`${ROOT}deploy/${name}`))
    .replaceAll("https://127.0.0.1:8443/audit", `https://127.0.0.1:${port}/audit`)
    .replaceAll("/etc/kubernetes/audit/auditpipe-ca.crt", pki.caCertFile)
    .replaceAll("/etc/kubernetes/audit/apiserver-audit-client.crt", pki.clientCertFile)
    .replaceAll("/etc/kubernetes/audit/apiserver-audit-client.key", pki.clientKeyFile)
    .replaceAll("/etc/kubernetes/audit/auditpipe.token", tokenFile);
  return await parseKubeconfig(text, `${pki.dir}/${name}`);
}

async function apiserverSink(target: Awaited<ReturnType<typeof deployKubeconfig>>) {
  return await createWebhookSink({
    kubeconfig: "unused",
    initialBackoff: 10,
    timeout: 5000,
    compress: "none",
    retry: { maxAttempts: 1 },
    maxInFlight: 1,
  }, {
    name: "apiserver",
    log: silentLogger,
    clock: systemClock,
    stats: new SinkStats("apiserver"),
    signal: new AbortController().signal,
  }, target);
}

const daemonConfig = (pki: TestPki, extra: string) => (dir: string) => `
sources:
  - type: webhook
    listen: 127.0.0.1:0
    tls:
      certFile: ${pki.dir}/server.crt
      keyFile: ${pki.dir}/server.key
${extra}
sinks:
  - type: log
    path: ${dir}/audit.log
`;

async function envelopes(n: number): Promise<Envelope[]> {
  return (await realEvents(n)).map((e) => ({ event: e as unknown as Event }));
}

Deno.test(
  needs(
    "openssl",
    "mTLS: kube-apiserver's client certificate (deploy/ kubeconfig) is accepted; no certificate is refused",
  ),
  async () => {
    const pki = await createTestPki();
    const d = await startDaemon(daemonConfig(pki, `      clientCAFile: ${pki.caCertFile}`));
    const port = await d.webhookPort();
    const target = await deployKubeconfig("kube-apiserver-webhook-mtls.kubeconfig", pki, port, "");
    const sink = await apiserverSink(target);
    const items = await envelopes(20);
    await sink.write(items);
    await sink.close();

    const noCert = Deno.createHttpClient({ caCerts: [pki.caCert] });
    await assertRejects(() =>
      fetch(`https://127.0.0.1:${port}/audit`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "[]",
        client: noCert,
      })
    );
    noCert.close();
    const { code } = await d.stop();
    assertEquals(code, 0);
    const lines = (await Deno.readTextFile(`${d.dir}/audit.log`)).trimEnd().split("\n");
    assertEquals(lines.map((l) => JSON.parse(l).auditID), items.map((e) => e.event.auditID));
    await pki.cleanup();
    await Deno.remove(d.dir, { recursive: true });
  },
);

Deno.test(
  needs(
    "openssl",
    "token over TLS: the deploy/ token kubeconfig is accepted; a wrong token gets 401",
  ),
  async () => {
    const pki = await createTestPki();
    const tokenFile = `${pki.dir}/token`;
    await Deno.writeTextFile(tokenFile, "s3cret-token\n");
    const d = await startDaemon(daemonConfig(pki, `    auth: {bearerTokenFile: ${tokenFile}}`));
    const port = await d.webhookPort();
    const target = await deployKubeconfig(
      "kube-apiserver-webhook-token.kubeconfig",
      pki,
      port,
      tokenFile,
    );
    const sink = await apiserverSink(target);
    const items = await envelopes(5);
    await sink.write(items);
    await sink.close();

    const client = Deno.createHttpClient({ caCerts: [pki.caCert] });
    const res = await fetch(`https://127.0.0.1:${port}/audit`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer wrong" },
      body: "[]",
      client,
    });
    assertEquals(res.status, 401);
    await res.body?.cancel();
    client.close();
    const { code } = await d.stop();
    assertEquals(code, 0);
    const lines = (await Deno.readTextFile(`${d.dir}/audit.log`)).trimEnd().split("\n");
    assertEquals(lines.length, 5);
    assert(d.logs.some((r) => r.msg === "webhook source listening" && r.tls === "tls"));
    await pki.cleanup();
    await Deno.remove(d.dir, { recursive: true });
  },
);

/** The daemon's resident memory, bytes, from /proc. */
async function rss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/**
 * Posts `total` bytes over a TLS connection with the test client certificate, streamed in
 * writes (with a Content-Length, or chunked without one), and returns the status line
 * the daemon answered with and how much was written before the daemon stopped the upload.
 */
async function postHuge(
  pki: TestPki,
  port: number,
  total: number,
  chunked: boolean,
): Promise<{ status: string; sent: number }> {
  const enc = new TextEncoder();
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [pki.caCert],
    cert: pki.clientCert,
    key: pki.clientKey,
  });
  await conn.write(enc.encode(
    `POST /audit HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
      (chunked ? "transfer-encoding: chunked\r\n\r\n" : `content-length: ${total}\r\n\r\n`),
  ));
  let status = "";
  const answered = (async () => {
    const buf = new Uint8Array(4096);
    try {
      const n = await conn.read(buf);
      if (n !== null) status = new TextDecoder().decode(buf.subarray(0, n)).split("\r\n")[0];
    } catch { /* reset */ }
  })();
  // Chunks of 16 KiB: node:https in Deno 2.9.6 drops chunked uploads of 64 KiB chunks after
  // a few megabytes (`aborted`), whatever the handler does.
  const piece = new Uint8Array((chunked ? 16 : 64) * 1024).fill(0x20);
  const frame = chunked
    ? new Uint8Array([...enc.encode("4000\r\n"), ...piece, ...enc.encode("\r\n")])
    : piece;
  let sent = 0;
  try {
    while (sent < total && status === "") {
      await conn.write(frame);
      sent += piece.length;
      // A turn for the reader, as an HTTP client that reads while it sends gives it.
      await new Promise((r) => setTimeout(r, 0));
    }
  } catch { /* the daemon closed the connection after answering */ }
  await answered;
  try {
    conn.close();
  } catch { /* closed */ }
  return { status, sent };
}

/** A daemon with a mutual-TLS webhook source of `maxBodyBytes`, warmed by one accepted request. */
async function mtlsDaemon(pki: TestPki, maxBodyBytes: number) {
  const d = await startDaemon((dir) => `
sources:
  - type: webhook
    listen: 127.0.0.1:0
    maxBodyBytes: ${maxBodyBytes}
    tls:
      certFile: ${pki.dir}/server.crt
      keyFile: ${pki.dir}/server.key
      clientCAFile: ${pki.caCertFile}
sinks:
  - type: log
    path: ${dir}/audit.log
server:
  listen: 127.0.0.1:0
`);
  const port = await d.webhookPort();
  const ops = await d.opsPort();
  // One accepted request first, so TLS and the HTTP machinery are warm before measuring.
  const sink = await apiserverSink(
    await deployKubeconfig("kube-apiserver-webhook-mtls.kubeconfig", pki, port, ""),
  );
  await sink.write([1, 2, 3].map((i) => testEnvelope(`warm-${i}`)));
  await sink.close();
  return { d, port, ops };
}

async function rejected(ops: number, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${ops}/metrics`)).text();
  const line = text.split("\n").find((l) =>
    l.startsWith(`auditpipe_source_rejected_total{source="webhook",reason="${reason}"}`)
  );
  return Number(line?.split(" ")[1] ?? 0);
}

const MiB = 1024 * 1024;

Deno.test(
  needs(
    "openssl",
    "mTLS: a 200 MB body with a Content-Length is refused with 413 before it is read; the daemon's memory grows by less than 2× maxBodyBytes",
  ),
  async () => {
    const pki = await createTestPki();
    const maxBodyBytes = 4 * MiB;
    const { d, port, ops } = await mtlsDaemon(pki, maxBodyBytes);
    const before = await rss(d.process.pid);
    const huge = await postHuge(pki, port, 200 * MiB, false);
    const growth = await rss(d.process.pid) - before;
    assert(huge.status.startsWith("HTTP/1.1 413"), JSON.stringify(huge));
    // What the client had written before it read the answer: kernel buffers, not the body.
    assert(huge.sent < 32 * MiB, JSON.stringify(huge));
    assert(growth < 2 * maxBodyBytes, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
    assertEquals(await rejected(ops, "too_large"), 1);
    assertEquals((await d.stop()).code, 0);
    await pki.cleanup();
    await Deno.remove(d.dir, { recursive: true });
  },
);

Deno.test(
  needs(
    "openssl",
    "mTLS: a 200 MB chunked body is refused with 413 once maxBodyBytes have arrived, the upload is cut off, and memory does not grow with the body",
  ),
  async () => {
    const pki = await createTestPki();
    const maxBodyBytes = 4 * MiB;
    const { d, port, ops } = await mtlsDaemon(pki, maxBodyBytes);
    const before = await rss(d.process.pid);
    const huge = await postHuge(pki, port, 200 * MiB, true);
    const growth = await rss(d.process.pid) - before;
    assert(huge.status.startsWith("HTTP/1.1 413"), JSON.stringify(huge));
    assert(huge.sent < 32 * MiB, JSON.stringify(huge));
    // The body is read up to the limit (4 MiB) into one buffer, each chunk freed once copied;
    // the TLS and HTTP layers of node:https under it leave garbage of about as much again that
    // RSS shows until the collector runs (10-13 MiB measured here). The old code grew by twice
    // the whole 200 MB. How much garbage RSS still shows depends on when the collector ran
    // (16.8 MiB once under a loaded CI), so the bound is what proves the point: far below the
    // body, not a measure of the garbage.
    const bound = 8 * maxBodyBytes;
    assert(growth < bound, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
    assertEquals(await rejected(ops, "too_large"), 1);
    assertEquals((await d.stop()).code, 0);
    await pki.cleanup();
    await Deno.remove(d.dir, { recursive: true });
  },
);
