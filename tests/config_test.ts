import { assert, assertEquals } from "./helpers/assert.ts";
import { ROOT } from "./helpers/daemon.ts";
import { loadConfigText } from "../pipeline/config/load.ts";
import { ConfigError } from "../pipeline/config/errors.ts";
import { parseDuration } from "../pipeline/core/duration.ts";

function problems(text: string, env: Record<string, string> = {}): string[] {
  try {
    loadConfigText(text, "pipeline.yaml", (k) => env[k]);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split("\n");
    throw err;
  }
  return [];
}

const minimal = `sources:\n  - type: webhook\nsinks:\n  - type: stdout\n`;

Deno.test("config: a minimal config gets kube-apiserver's per-backend defaults", () => {
  const { config } = loadConfigText(
    minimal + `  - type: webhook\n    kubeconfig: k.yaml\n  - type: log\n    path: /tmp/a.log\n`,
    "/etc/auditpipe/pipeline.yaml",
  );
  const [stdout, webhook, log] = config.sinks;
  assertEquals(stdout.mode, "blocking");
  assertEquals(stdout.batch, {
    bufferSize: 10000,
    maxSize: 1,
    maxWait: 0,
    throttle: { enabled: false, qps: 10, burst: 15 },
  });
  assertEquals(webhook.mode, "batch");
  assertEquals(webhook.batch, {
    bufferSize: 10000,
    maxSize: 400,
    maxWait: 30_000,
    throttle: { enabled: true, qps: 10, burst: 15 },
  });
  assertEquals(webhook.type === "webhook" && webhook.kubeconfig, "/etc/auditpipe/k.yaml");
  assertEquals(log.truncate, { enabled: false, maxEventSize: 102400, maxBatchSize: 10485760 });
  assertEquals(log.type === "log" && log.rotate, {
    maxSize: 100,
    maxBackup: 100,
    maxAge: 366,
    compress: false,
  });
  assertEquals(config.sources[0].type === "webhook" && config.sources[0].listen, "127.0.0.1:8080");
  // Above the 600 requests a blocking-mode kube-apiserver may keep open: a 429 costs it 10 s.
  assertEquals(config.sources[0].type === "webhook" && config.sources[0].maxInFlight, 1024);
  assertEquals(config.sinks.map((s) => s.name), ["stdout", "webhook", "log"]);
});

Deno.test("config: a wrong type names file, line, column and key path", () => {
  const text = minimal + `  - type: log\n    path: a.log\n    batch:\n      maxSize: four\n`;
  assertEquals(problems(text), [
    `pipeline.yaml:8:7 sinks[1].batch.maxSize: must be a positive integer, got "four"`,
  ]);
});

Deno.test("config: an unknown key is an error with a did-you-mean", () => {
  const text = minimal + `    fromat: json\n`;
  assertEquals(problems(text), [
    `pipeline.yaml:5:5 sinks[0].fromat: unknown key; did you mean "format"?`,
  ]);
});

Deno.test("config: an unknown source type suggests the closest one", () => {
  assertEquals(problems(`sources:\n  - type: webhok\nsinks:\n  - type: stdout\n`), [
    `pipeline.yaml:2:5 sources[0].type: must be one of webhook, tail, stdin, nats, got "webhok"; did you mean "webhook"?`,
  ]);
});

Deno.test("config: broken YAML reports its position", () => {
  const [p] = problems(`sources: [\n  - type: stdin\n`);
  assert(/^pipeline\.yaml:\d+:\d+: /.test(p), p);
});

Deno.test("config: YAML syntax errors name their real line and column, not 1:1", () => {
  const head = `sources:\n  - type: stdin\nsinks:\n`;
  // A key indented deeper than its siblings, on line 5, makes the value on line 4 a key.
  assertEquals(problems(head + `  - type: stdout\n     mode: batch\n`), [
    "pipeline.yaml:4:11: Nested mappings are not allowed in compact mappings",
    "pipeline.yaml:4:11: Implicit keys need to be on a single line",
  ]);
  // A key indented less than its siblings.
  assertEquals(problems(head + `  - type: stdout\n   mode: batch\n`), [
    "pipeline.yaml:5:1: Sequence item without - indicator",
  ]);
  // A quote opened on line 4 and never closed: named where it opens, not at the end.
  assertEquals(problems(head + `  - type: "stdout\n    name: x\n`), [
    `pipeline.yaml:4:11: Missing closing "quote: this string is never closed`,
  ]);
  // A tab used for indentation on line 4.
  assertEquals(problems(head + `\t- type: stdout\n`), [
    "pipeline.yaml:4:1: Tabs are not allowed as indentation",
  ]);
  // The second of two equal keys, on line 6.
  assertEquals(problems(head + `  - type: stdout\n    name: a\n    name: b\n`), [
    "pipeline.yaml:6:5: Map keys must be unique",
  ]);
});

Deno.test("config: every problem is listed, not just the first", () => {
  const text =
    `sources:\n  - type: stdin\nsinks:\n  - type: stdout\n    mode: fast\n    batch: {bufferSize: -1}\nshutdownTimeout: soon\n`;
  assertEquals(problems(text), [
    `pipeline.yaml:5:5 sinks[0].mode: must be one of blocking, batch, blocking-strict, got "fast"`,
    `pipeline.yaml:6:13 sinks[0].batch.bufferSize: must be a positive integer, got -1`,
    `pipeline.yaml:7:1 shutdownTimeout: must be a duration like 500ms, 30s or 1m30s, got "soon"`,
  ]);
});

Deno.test("config: ${VAR} and ${VAR:-default} expand from the environment; unset ones are errors", () => {
  const text =
    `sources:\n  - type: webhook\n    auth: {bearerToken: "\${TOKEN}"}\n    annotations: {cluster: "\${CLUSTER:-dev}"}\nsinks:\n  - type: stdout\n`;
  const loaded = loadConfigText(text, "p.yaml", (k) => (k === "TOKEN" ? "t0k" : undefined));
  const src = loaded.config.sources[0];
  assert(src.type === "webhook");
  assertEquals(src.auth?.bearerToken, "t0k");
  assertEquals(src.annotations, { cluster: "dev" });
  assertEquals(loaded.envVars, ["CLUSTER", "TOKEN"]);
  assertEquals(problems(text), [
    "pipeline.yaml:3:25: environment variable TOKEN is not set (write ${TOKEN:-default} for a default)",
  ]);
});

Deno.test("config: a ${VAR} where the schema wants a number or boolean is coerced to it", () => {
  const text = `sources:
  - type: webhook
    maxInFlight: \${MAX:-1024}
    auth: {bearerToken: "\${TOKEN}"}
sinks:
  - type: stdout
    batch:
      maxSize: "\${SIZE}"
      throttle:
        enabled: \${THROTTLE:-true}
        qps: \${QPS}
    truncate:
      enabled: \${TRUNCATE}
`;
  const env: Record<string, string> = { TOKEN: "123", SIZE: "50", QPS: "2.5", TRUNCATE: "FALSE" };
  const { config } = loadConfigText(text, "p.yaml", (k) => env[k]);
  const [src, sink] = [config.sources[0], config.sinks[0]];
  assert(src.type === "webhook");
  assertEquals(src.maxInFlight, 1024);
  // A string field keeps the text even when it looks like a number.
  assertEquals(src.auth?.bearerToken, "123");
  assertEquals(sink.batch.maxSize, 50);
  assertEquals(sink.batch.throttle, { enabled: true, qps: 2.5, burst: 15 });
  assertEquals(sink.truncate.enabled, false);
});

Deno.test("config: a ${VAR} that does not fit its type names its position and expanded text", () => {
  const text = `sources:
  - type: webhook
    maxInFlight: \${MAX:-1024}
sinks:
  - type: stdout
    truncate:
      enabled: \${TRUNCATE}
`;
  assertEquals(problems(text, { MAX: "lots", TRUNCATE: "yes" }), [
    `pipeline.yaml:3:5 sources[0].maxInFlight: must be a positive integer, got "lots" (from \${MAX:-1024})`,
    `pipeline.yaml:7:7 sinks[0].truncate.enabled: must be true or false, got "yes" (from \${TRUNCATE})`,
  ]);
  assertEquals(problems(text, { MAX: "1.5", TRUNCATE: "true" }), [
    `pipeline.yaml:3:5 sources[0].maxInFlight: must be a positive integer, got 1.5 (from \${MAX:-1024})`,
  ]);
});

Deno.test("config: duplicate names are refused", () => {
  const text =
    `sources:\n  - type: stdin\nsinks:\n  - type: stdout\n    name: a\n  - type: stdout\n    name: a\n`;
  assertEquals(problems(text), [
    `pipeline.yaml:7:5 sinks[1].name: duplicate name "a" (also sinks[0])`,
  ]);
});

Deno.test("config: truncate limits are validated as upstream", () => {
  const text = minimal + `    truncate: {maxEventSize: 10, maxBatchSize: 5}\n`;
  assertEquals(problems(text), [
    `pipeline.yaml:5:34 sinks[0].truncate.maxBatchSize: maxBatchSize must be >= maxEventSize`,
  ]);
});

Deno.test("durations parse in Go syntax", () => {
  assertEquals(parseDuration("1m30s"), 90_000);
  assertEquals(parseDuration("500ms"), 500);
  assertEquals(parseDuration("1.5h"), 5_400_000);
  assertEquals(parseDuration("0"), 0);
  assertEquals(parseDuration("30"), null);
});

async function check(config: string): Promise<{ code: number; stderr: string; stdout: string }> {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/pipeline.yaml`, config);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "--config", `${dir}/pipeline.yaml`, "--check"],
    env: { NO_COLOR: "1" },
  }).output();
  await Deno.remove(dir, { recursive: true });
  const dec = new TextDecoder();
  return { code: out.code, stderr: dec.decode(out.stderr), stdout: dec.decode(out.stdout) };
}

Deno.test("--check exits 2 naming a missing policy file and a wrong type, 0 for config.example.yaml", async () => {
  const bad = await check(
    `policy: policies/nope.yaml\nsources:\n  - type: webhook\nsinks:\n  - type: stdout\n    batch: {maxSize: four}\n`,
  );
  assertEquals(bad.code, 2);
  assert(
    bad.stderr.includes(
      `pipeline.yaml:6:13 sinks[0].batch.maxSize: must be a positive integer, got "four"`,
    ),
    bad.stderr,
  );
  const missing = await check(
    `policy: policies/nope.yaml\nsources:\n  - type: webhook\nsinks:\n  - type: stdout\n`,
  );
  assertEquals(missing.code, 2);
  assert(
    /pipeline\.yaml:1:1 policy: file not found: \/.*\/policies\/nope\.yaml/.test(missing.stderr),
    missing.stderr,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "--config", `${ROOT}config.example.yaml`, "--check"],
    env: { NO_COLOR: "1" },
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
});

Deno.test("--check prints each source and sink composition after OK", async () => {
  const ok = await check(`sources:
  - type: webhook
    name: apiserver
    listen: 127.0.0.1:0
    annotations: {cluster: prod}
sinks:
  - type: log
    name: local
    path: /var/log/kubernetes/audit.log
    policy: {apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: Metadata}]}
    truncate: {enabled: true}
    rotate: {maxBackup: 10}
  - type: stdout
    mode: batch
`);
  assertEquals(ok.code, 0, ok.stderr);
  assertEquals(ok.stdout.split("\n").slice(1), [
    "  source apiserver: webhook(http://127.0.0.1:0/audit, 1024 in flight) → annotate(cluster=prod)",
    "  sink local: policy(inline, 1 rule) → truncate(100KiB/10MiB) → coalesce → " +
    "log(/var/log/kubernetes/audit.log, json, rotate 100MB×10)",
    "  sink stdout: buffer(10000) → batch(1, 0s) → stdout(json)",
    "",
  ]);
  assert(/pipeline\.yaml: OK \(1 sources, 2 sinks\)$/.test(ok.stdout.split("\n")[0]), ok.stdout);
});

Deno.test("--check names NATS TLS and credential problems by file, line and key", async () => {
  const bad = await check(`sources:
  - type: nats
    tls: {certFile: client.crt}
    auth: {token: t, user: u, password: p}
sinks:
  - type: stdout
`);
  assertEquals(bad.code, 2);
  const missing = await check(`sources:
  - type: webhook
sinks:
  - type: nats
    tls: {caFile: missing-ca.crt}
    auth: {credsFile: missing.creds}
`);
  assertEquals(missing.code, 2);
  const stderr = bad.stderr + missing.stderr;
  for (
    const want of [
      /pipeline\.yaml:3:\d+ sources\[0\]\.tls: set certFile and keyFile together/,
      /pipeline\.yaml:4:\d+ sources\[0\]\.auth: set exactly one of token, tokenFile, user/,
      /pipeline\.yaml:5:\d+ sinks\[0\]\.tls\.caFile: file not found: \/.*\/missing-ca\.crt/,
      /pipeline\.yaml:6:\d+ sinks\[0\]\.auth\.credsFile: file not found: \/.*\/missing\.creds/,
    ]
  ) assert(want.test(stderr), `${want}\n${stderr}`);
});
