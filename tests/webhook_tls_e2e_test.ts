/**
 * kube-apiserver's side of the webhook played by our own webhook sink, loaded from the
 * kubeconfigs in deploy/, against the real daemon's webhook source with TLS.
 */
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { realEvents, ROOT, startDaemon } from "./helpers/daemon.ts";
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
