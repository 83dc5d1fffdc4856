import assert from "node:assert/strict";
import { loadConfigText } from "../pipeline/config/load.ts";
import { loadResources, type Resources } from "../pipeline/config/files.ts";
import { describeBranch } from "../pipeline/branch.ts";
import { branchSpec, Pipeline } from "../pipeline/build.ts";
import { describeSource, formatBytes } from "../pipeline/describe.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { startDaemon } from "./helpers/daemon.ts";

const POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    users: [system:kube-proxy]
  - level: Metadata
`;

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
  - name: siem
    cluster: {server: "http://127.0.0.1:9999/audit"}
contexts:
  - name: siem
    context: {cluster: siem, user: siem}
current-context: siem
users:
  - name: siem
    user: {}
`;

/** Resolves `config` written in a temp folder beside a policy, a kubeconfig and PEM files. */
async function resolved(config: string): Promise<{ dir: string; resources: Resources }> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-describe-" });
  const files: Record<string, string> = {
    "policy.yaml": POLICY,
    "siem.kubeconfig": KUBECONFIG,
    "server.crt": "cert",
    "server.key": "key",
    "ca.crt": "ca",
    "token": "t0k\n",
  };
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const loaded = loadConfigText(config, `${dir}/pipeline.yaml`, () => undefined);
  const { resources, problems } = await loadResources(loaded);
  await Deno.remove(dir, { recursive: true });
  assert.deepEqual(problems, []);
  return { dir, resources };
}

const sinks = (r: Resources) => r.sinks.map((s) => describeBranch(branchSpec(s)));

Deno.test("describe: a blocking log sink with a policy and truncation reads policy → truncate → coalesce → log", async () => {
  const { dir, resources } = await resolved(`policy: policy.yaml
sources: [{type: stdin}]
sinks:
  - type: log
    name: local
    path: /var/log/kubernetes/audit.log
    truncate: {enabled: true}
    rotate: {maxSize: 100, maxBackup: 10}
  - type: stdout
    mode: blocking-strict
    format: legacy
`);
  assert.deepEqual(sinks(resources), [
    `local: policy(${dir}/policy.yaml, 2 rules) → truncate(100KiB/10MiB) → coalesce → ` +
    `log(/var/log/kubernetes/audit.log, json, rotate 100MB×10)`,
    `stdout: policy(${dir}/policy.yaml, 2 rules) → coalesce(strict) → stdout(legacy)`,
  ]);
});

Deno.test("describe: a batch webhook sink shows its buffer, batching, throttle and target", async () => {
  const { resources } = await resolved(`sources: [{type: stdin}]
sinks:
  - type: webhook
    name: siem
    kubeconfig: siem.kubeconfig
    compress: gzip
    annotations: {cluster: prod}
    policy: {apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: Request}]}
  - type: log
    name: unrotated
    path: "-"
    mode: batch
    fsync: always
    batch: {maxSize: 7, maxWait: 1m30s, throttle: {enabled: false}}
`);
  assert.deepEqual(sinks(resources), [
    "siem: policy(inline, 1 rule) → annotate(cluster=prod) → buffer(10000) → batch(400, 30s) → " +
    "throttle(10/s, burst 15) → webhook(http://127.0.0.1:9999/audit, gzip, timeout 30s, 5 attempts)",
    "unrotated: buffer(10000) → batch(7, 1m30s) → log(-, json, no rotate, fsync always)",
  ]);
});

Deno.test("describe: each kind of source names where it reads from and what it adds", async () => {
  const { resources } = await resolved(`sources:
  - type: webhook
    name: apiserver
    listen: 0.0.0.0:8443
    tls: {certFile: server.crt, keyFile: server.key, clientCAFile: ca.crt}
    auth: {bearerTokenFile: token}
    annotations: {cluster: prod, zone: a}
  - type: webhook
    name: plain
    listen: 127.0.0.1:0
    maxInFlight: 64
  - type: tail
    path: /var/log/kubernetes/audit.log
    checkpointFile: /var/lib/auditpipe/tail.json
  - type: stdin
  - type: nats
    servers: [nats://127.0.0.1:4222]
sinks: [{type: stdout}]
`);
  assert.deepEqual(resources.sources.map(describeSource), [
    "apiserver: webhook(https://0.0.0.0:8443/audit, client certs, bearer token, 1024 in flight)" +
    " → annotate(cluster=prod, zone=a)",
    "plain: webhook(http://127.0.0.1:0/audit, 64 in flight)",
    "tail: tail(/var/log/kubernetes/audit.log, from end, checkpoint /var/lib/auditpipe/tail.json)",
    "stdin: stdin",
    "nats: nats(nats://127.0.0.1:4222, stream AUDIT, subject audit.events, consumer auditpipe)",
  ]);
});

Deno.test("describe: a built pipeline's sources and branches describe themselves as --check does", async () => {
  const { resources } = await resolved(`policy: policy.yaml
sources: [{type: stdin, annotations: {a: b}}]
sinks:
  - type: stdout
  - type: stdout
    name: batched
    mode: batch
`);
  const loaded = loadConfigText(
    `sources: [{type: stdin}]\nsinks: [{type: stdout}]\n`,
    "p.yaml",
    () => undefined,
  );
  const pipeline = await Pipeline.create(loaded, resources, {
    log: silentLogger,
    stdin: new ReadableStream({ start: (c) => c.close() }),
  });
  const built = pipeline.describe();
  assert.deepEqual([...built.sources.values()], resources.sources.map(describeSource));
  assert.deepEqual([...built.sinks.values()], sinks(resources));
  assert.deepEqual([...built.sinks.keys()], ["stdout0", "batched"]);
  await pipeline.stop();
});

Deno.test("describe: sizes are shown in the largest binary unit that divides them", () => {
  assert.deepEqual([102400, 10485760, 2 ** 30, 1000, 1536].map(formatBytes), [
    "100KiB",
    "10MiB",
    "1GiB",
    "1000B",
    "1536B",
  ]);
});

Deno.test("describe: the daemon logs each source and sink at startup, and a reload logs what it started or replaced", async () => {
  const config = (dir: string, level: string) =>
    `sources:
  - type: webhook
    name: apiserver
    listen: 127.0.0.1:0
sinks:
  - type: log
    name: local
    path: ${dir}/audit.log
    policy: {apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: ${level}}]}
  - type: log
    name: all
    path: ${dir}/all.log
`;
  const d = await startDaemon((dir) => config(dir, "Metadata"));
  try {
    await d.webhookPort();
    const configured = d.logs.filter((r) => /^(source|sink) configured$/.test(String(r.msg)));
    assert.deepEqual(configured.map((r) => r.describe), [
      "apiserver: webhook(http://127.0.0.1:0/audit, 1024 in flight)",
      `local: policy(inline, 1 rule) → coalesce → log(${d.dir}/audit.log, json, rotate 100MB×100)`,
      `all: coalesce → log(${d.dir}/all.log, json, rotate 100MB×100)`,
    ]);
    await Deno.writeTextFile(`${d.dir}/pipeline.yaml`, config(d.dir, "Request"));
    d.process.kill("SIGHUP");
    const reloaded = await d.waitLog((r) => r.msg === "config reloaded");
    assert.deepEqual(reloaded.changed, [
      `sink local: policy(inline, 1 rule) → coalesce → log(${d.dir}/audit.log, json, rotate 100MB×100)`,
    ]);
  } finally {
    await d.stop();
    await Deno.remove(d.dir, { recursive: true });
  }
});
