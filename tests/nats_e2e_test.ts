/** Fan-in through NATS JetStream with real daemons: two nodes publish, one collector consumes. */
import { assert, assertEquals } from "./helpers/assert.ts";
import { createTestPki } from "./helpers/tls.ts";
import { type Daemon, postAccepted, realEvents, startDaemon } from "./helpers/daemon.ts";
import { collectorConfig, publisherConfig, startNatsServer } from "./helpers/nats.ts";
import { needs } from "./helpers/external.ts";
import { waitFor } from "./helpers/wait.ts";

async function post(d: Daemon, events: Record<string, unknown>[]): Promise<void> {
  await postAccepted(await d.webhookPort(), events);
}

/** The whole lines of `path` once it has `want` of them; fails when they do not come. */
async function linesOf(path: string, want: number): Promise<string[]> {
  let lines: string[] = [];
  await waitFor(`${want} lines in ${path}`, async () => {
    const text = await Deno.readTextFile(path).catch(() => "");
    lines = text.slice(0, text.lastIndexOf("\n") + 1).split("\n").filter((l) => l !== "");
    return lines.length >= want;
  }, { intervalMs: 50, detail: () => `${lines.length} there` });
  return lines;
}

Deno.test(
  needs(
    "nats-server",
    "two nodes publish to NATS JetStream and one collector writes every event exactly once",
  ),
  async () => {
    const nats = await startNatsServer();
    const node = publisherConfig(nats.url);
    const a = await startDaemon(node);
    const b = await startDaemon(node);
    const collector = await startDaemon(collectorConfig(nats.url));
    const events = await realEvents(300);
    const halves = [events.slice(0, 150), events.slice(150)];
    for (const [d, half] of [[a, halves[0]], [b, halves[1]]] as const) await post(d, half);
    const lines = await linesOf(`${collector.dir}/all.log`, events.length);
    for (const d of [a, b, collector]) assertEquals((await d.stop()).code, 0);
    const got = lines.map((l) => JSON.parse(l));
    const key = (e: Record<string, unknown>) => `${e.auditID}/${e.stage}`;
    assertEquals(got.map(key).sort(), events.map(key).sort());
    // Per node, order is kept.
    for (const half of halves) {
      const ids = new Set(half.map(key));
      assertEquals(got.filter((e) => ids.has(key(e))).map(key), half.map(key));
    }
    await nats.stop();
    for (const d of [a, b, collector]) await Deno.remove(d.dir, { recursive: true });
  },
);

Deno.test(
  needs(
    ["nats-server", "openssl"],
    "NATS over mutual TLS with a user and password file: a node publishes, a collector writes; a wrong password stops the daemon with the server's reason",
  ),
  async () => {
    const pki = await createTestPki();
    const nats = await startNatsServer({
      args: [
        ...["--tls", "--tlscert", `${pki.dir}/server.crt`, "--tlskey", `${pki.dir}/server.key`],
        ...["--tlsverify", "--tlscacert", pki.caCertFile, "--user", "node", "--pass", "s3cret"],
      ],
    });
    const connection = (dir: string, password: string) => {
      Deno.writeTextFileSync(`${dir}/nats.password`, `${password}\n`);
      return `
    servers: [${nats.url}]
    tls: {caFile: ${pki.caCertFile}, certFile: ${pki.clientCertFile}, keyFile: ${pki.clientKeyFile}}
    auth: {user: node, passwordFile: nats.password}`;
    };
    const node = await startDaemon((dir) => `
sources:
  - type: webhook
    listen: 127.0.0.1:0
sinks:
  - type: nats
    stream: AUDIT${connection(dir, "s3cret")}
`);
    const collector = await startDaemon((dir) => `
sources:
  - type: nats
    consumer: collector${connection(dir, "s3cret")}
sinks:
  - type: log
    path: ${dir}/all.log
`);
    const events = await realEvents(50);
    await post(node, events);
    const lines = await linesOf(`${collector.dir}/all.log`, events.length);
    assertEquals(lines.map((l) => JSON.parse(l).auditID), events.map((e) => e.auditID));
    for (const d of [node, collector]) assertEquals((await d.stop()).code, 0);

    const wrong = await startDaemon((dir) => `
sources:
  - type: webhook
    listen: 127.0.0.1:0
sinks:
  - type: nats${connection(dir, "wrong")}
`);
    const { code } = await wrong.exited();
    assert(code !== 0);
    assert(
      wrong.logs.some((r) => /authorization violation/i.test(JSON.stringify(r))),
      JSON.stringify(wrong.logs),
    );
    await nats.stop();
    await pki.cleanup();
    for (const d of [node, collector, wrong]) await Deno.remove(d.dir, { recursive: true });
  },
);
