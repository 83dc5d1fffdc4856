/**
 * `auditpipe permissions` prints the least Deno flags a config needs: the daemon works under
 * exactly those, and fails with Deno's permission error when any one is missing.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { eventList, realEvents, realLines, ROOT, startDaemon } from "./helpers/daemon.ts";
import { startReceiver } from "./helpers/receiver.ts";
import { createTestPki } from "./helpers/tls.ts";
import { startNatsServer } from "./helpers/nats.ts";
import { needs } from "./helpers/external.ts";
import { waitFor } from "./helpers/wait.ts";

const dec = new TextDecoder();

async function setup() {
  const nats = await startNatsServer({ args: ["--auth", "n4ts"] });
  const pki = await createTestPki();
  const recv = await startReceiver();
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-perm-" });
  await Deno.mkdir(`${dir}/var/log`, { recursive: true });
  await Deno.mkdir(`${dir}/state`);
  await Deno.mkdir(`${dir}/etc`);
  const lines = await realLines(5);
  await Deno.writeTextFile(`${dir}/var/log/audit.log`, lines.join("\n") + "\n");
  await Deno.writeTextFile(`${dir}/etc/token`, "t0ken\n");
  await Deno.writeTextFile(`${dir}/etc/nats.token`, "n4ts\n");
  await Deno.writeTextFile(`${dir}/etc/siem.kubeconfig`, recv.kubeconfig());
  await Deno.writeTextFile(
    `${dir}/etc/policy.yaml`,
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n",
  );
  await Deno.writeTextFile(
    `${dir}/etc/pipeline.yaml`,
    `
policy: policy.yaml
sources:
  - type: webhook
    listen: 127.0.0.1:0
    tls: {certFile: ${pki.dir}/server.crt, keyFile: ${pki.dir}/server.key}
    auth: {bearerTokenFile: token}
    deadLetterFile: ${dir}/state/dead.jsonl
    annotations: {example.com/cluster: "\${AUDIT_CLUSTER}"}
  - type: tail
    path: ${dir}/var/log/audit.log
    startAt: beginning
    checkpointFile: ${dir}/state/tail.json
  - type: stdin
  - type: nats
    servers: [${nats.url}]
    stream: PERM
    subject: perm.events
    consumer: perm
    auth: {tokenFile: nats.token}
sinks:
  - type: stdout
  - type: log
    path: ${dir}/out/audit.log
  - type: webhook
    kubeconfig: siem.kubeconfig
    batch: {maxSize: 1}
  - type: nats
    servers: [${nats.url}]
    subject: perm.other
    stream: PERMOUT
    auth: {tokenFile: nats.token}
server:
  listen: 127.0.0.1:0
`,
  );
  return { pki, recv, dir, lines, nats };
}

Deno.test(
  needs(
    ["nats-server", "openssl"],
    "the daemon runs under exactly the printed permissions, and fails without any one of them",
  ),
  async () => {
    const { pki, recv, dir, lines, nats } = await setup();
    const cfg = `${dir}/etc/pipeline.yaml`;
    const env = { AUDIT_CLUSTER: "prod" };
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "permissions", "--config", cfg],
      env: { NO_COLOR: "1", ...env },
    }).output();
    assertEquals(out.code, 0, dec.decode(out.stderr));
    const flags = dec.decode(out.stdout).trim().split(" ");
    assertEquals(flags.map((f) => f.split("=")[0]), [
      "--allow-read",
      "--allow-write",
      "--allow-net",
      "--allow-env",
    ]);
    assert(flags[3].includes("AUDIT_CLUSTER"), flags[3]);

    const stdinEvents = (await realEvents(60)).slice(57);
    const stdin = new TextEncoder().encode(
      stdinEvents.map((e) => JSON.stringify(e)).join("\n") + "\n",
    );
    const webhookEvents = (await realEvents(120)).slice(100);
    const opts = { permissions: flags, configFile: cfg, dir, env, stdin };

    // With exactly the printed flags: every source delivers to every sink.
    const d = await startDaemon(() => "", opts);
    const client = Deno.createHttpClient({ caCerts: [pki.caCert] });
    const res = await fetch(`https://127.0.0.1:${await d.webhookPort()}/audit`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer t0ken" },
      body: eventList(webhookEvents),
      client,
    });
    assertEquals(res.status, 200);
    await res.body?.cancel();
    client.close();
    const logFile = `${dir}/out/audit.log`;
    const want = lines.length + stdinEvents.length + webhookEvents.length;
    let n = 0;
    await waitFor(`${want} events in out/audit.log and at the receiver`, async () => {
      n = await Deno.readTextFile(logFile).then((t) => t.trimEnd().split("\n").length, () => 0);
      return n >= want && recv.received.length >= want;
    }, { intervalMs: 50, detail: () => `${n} in the file, ${recv.received.length} received` });
    const { code, stdout } = await d.stop();
    const logText = d.logs.map((l) => JSON.stringify(l)).join("\n");
    assertEquals(code, 0, logText);
    assert(!logText.includes("Requires"), logText);
    const logged = (await Deno.readTextFile(logFile)).trimEnd().split("\n").map((l) =>
      JSON.parse(l)
    );
    assertEquals(logged.length, want);
    const fromWebhook = new Set(webhookEvents.map((e) => e.auditID));
    const annotated = logged.filter((e) => e.annotations?.["example.com/cluster"] === "prod");
    assertEquals(annotated.length, webhookEvents.length);
    assert(annotated.every((e) => fromWebhook.has(e.auditID)));
    assertEquals(recv.received.length, want);
    assertEquals(stdout.trimEnd().split("\n").length, want);
    assert((await Deno.stat(`${dir}/state/tail.json`)).isFile);

    // Without any one flag: Deno's permission error, and a non-zero exit.
    for (const missing of flags) {
      const q = await startDaemon(() => "", {
        ...opts,
        permissions: flags.filter((f) => f !== missing),
      });
      const timer = setTimeout(() => q.process.kill("SIGKILL"), 15_000);
      const st = await q.exited();
      clearTimeout(timer);
      const err = q.logs.map((l) => JSON.stringify(l)).join("\n");
      const name = missing.split("=")[0];
      assert(st.code !== 0, `without ${name} the daemon exited 0:\n${err}`);
      assert(/Requires \w+ access/.test(err), `without ${name}:\n${err}`);
    }
    await recv.close();
    await pki.cleanup();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  },
);
