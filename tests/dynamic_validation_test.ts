/**
 * AuditSink validation and defaults, on the cases of kube-apiserver's
 * `pkg/apis/auditregistration/validation/validation_test.go` (release 1.18) and
 * `v1alpha1/defaults.go`, plus reading a folder's files with positions.
 */
import assert from "node:assert/strict";
import { readAuditSink, validateDynamicPolicy } from "../policy/dynamic_validate.ts";
import { validateWebhookService, validateWebhookUrl } from "../policy/dynamic_webhook.ts";
import { parseSinkFile } from "../pipeline/dynamic/read.ts";
import { auditSinkUrl, resolveAuditSink } from "../pipeline/dynamic/sink.ts";
import { formatPath, formatProblem } from "../pipeline/core/problem.ts";
import { PipelineStats } from "../pipeline/core/stats.ts";
import { readiness } from "../pipeline/server.ts";

const API = "auditregistration.k8s.io/v1alpha1";

function sinkObject(spec: Record<string, unknown>, name = "myconf"): Record<string, unknown> {
  return { apiVersion: API, kind: "AuditSink", metadata: { name }, spec };
}

const messages = (errs: { path: readonly (string | number)[]; message: string }[]) =>
  errs.map((e) => `${formatPath(e.path)}: ${e.message}`).join("\n");

Deno.test("AuditSink validation: TestValidateAuditSink cases (full config passes; no policy, no webhook fail once)", () => {
  const full = readAuditSink(sinkObject({
    policy: { level: "Request", stages: ["RequestReceived"] },
    webhook: { throttle: { qps: 10 }, clientConfig: { url: "http://localhost" } },
  }));
  assert.deepEqual(full.errors, []);
  const noPolicy = readAuditSink(sinkObject({
    webhook: { clientConfig: { url: "http://localhost" } },
  }));
  assert.equal(noPolicy.errors.length, 1, messages(noPolicy.errors));
  const noWebhook = readAuditSink(sinkObject({
    policy: { level: "Metadata", stages: ["RequestReceived"] },
  }));
  assert.equal(noWebhook.errors.length, 1, messages(noWebhook.errors));
  assert.match(messages(noWebhook.errors), /exactly one of url or service is required/);
});

Deno.test("AuditSink validation: TestValidatePolicy success and error cases", () => {
  for (
    const ok of [
      { level: "Request", stages: ["RequestReceived", "ResponseStarted"] },
      { level: "None" },
    ]
  ) assert.deepEqual(validateDynamicPolicy(["policy"], ok), [], JSON.stringify(ok));
  for (
    const bad of [
      {},
      { stages: ["Bad"] },
      { level: "invalid" },
      { level: "Metadata" },
    ]
  ) assert.notDeepEqual(validateDynamicPolicy(["policy"], bad), [], JSON.stringify(bad));
  assert.deepEqual(
    messages(validateDynamicPolicy(["policy"], { level: "None", stages: ["Bad"] })),
    'policy.stages[0]: Invalid value: "Bad": allowed stages are Panic,RequestReceived,ResponseComplete,ResponseStarted',
  );
});

// TestValidateWebhookConfiguration: [name, clientConfig, expected error substring ("" = valid)].
const WEBHOOK_CASES: [string, Record<string, unknown>, string][] = [
  ["both service and URL missing", {}, "exactly one of"],
  [
    "both service and URL provided",
    { service: { namespace: "ns", name: "n", port: 443 }, url: "example.com/k8s/webhook" },
    "webhook.clientConfig: Required value: exactly one of url or service is required",
  ],
  ["blank URL", { url: "" }, 'webhook.clientConfig.url: Invalid value: "": host must be provided'],
  ["missing host", { url: "https:///fancy/webhook" }, "host must be provided"],
  ["fragment", { url: "https://example.com/#bookmark" }, '"bookmark": fragments are not permitted'],
  [
    "query",
    { url: "https://example.com?arg=value" },
    '"arg=value": query parameters are not permitted',
  ],
  [
    "user",
    { url: "https://harry.potter@example.com/" },
    '"harry.potter": user information is not permitted',
  ],
  [
    "just totally wrong",
    { url: "arg#backwards=thisis?html.index/port:host//:https" },
    "host must be provided",
  ],
  [
    "path must start with slash",
    { service: { namespace: "ns", name: "n", path: "foo/", port: 443 } },
    `clientConfig.service.path: Invalid value: "foo/": must start with a '/'`,
  ],
  [
    "invalid port >65535",
    { service: { namespace: "ns", name: "n", path: "foo/", port: 65536 } },
    "Invalid value: 65536: port is not valid: must be between 1 and 65535, inclusive",
  ],
  [
    "invalid port 0",
    { service: { namespace: "ns", name: "n", path: "foo/", port: 0 } },
    "Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive",
  ],
  ["path accepts slash", { service: { namespace: "ns", name: "n", path: "/", port: 443 } }, ""],
  ["path accepts no trailing slash", {
    service: { namespace: "ns", name: "n", path: "/foo", port: 443 },
  }, ""],
  [
    "path fails //",
    { service: { namespace: "ns", name: "n", path: "//", port: 443 } },
    `clientConfig.service.path: Invalid value: "//": segment[0] may not be empty`,
  ],
  [
    "path no empty step",
    { service: { namespace: "ns", name: "n", path: "/foo//bar/", port: 443 } },
    `clientConfig.service.path: Invalid value: "/foo//bar/": segment[1] may not be empty`,
  ],
  [
    "path no empty step 2",
    { service: { namespace: "ns", name: "n", path: "/foo/bar//", port: 443 } },
    `clientConfig.service.path: Invalid value: "/foo/bar//": segment[2] may not be empty`,
  ],
  [
    "path no non-subdomain",
    { service: { namespace: "ns", name: "n", path: "/apis/foo.bar/v1alpha1/--bad", port: 443 } },
    `clientConfig.service.path: Invalid value: "/apis/foo.bar/v1alpha1/--bad": segment[3]: a DNS-1123 subdomain`,
  ],
];

for (const [name, clientConfig, expected] of WEBHOOK_CASES) {
  Deno.test(`AuditSink validation: TestValidateWebhookConfiguration '${name}'`, () => {
    const { errors } = readAuditSink(sinkObject({
      policy: { level: "Metadata", stages: ["ResponseComplete"] },
      webhook: { clientConfig },
    }));
    // Paths relative to the webhook, as upstream's test calls ValidateWebhook(…, "webhook").
    const text = errors.map((e) => `${formatPath(e.path.slice(1))}: ${e.message}`).join("\n");
    if (expected === "") assert.equal(text, "");
    else assert.ok(text.includes(expected), `expected ${JSON.stringify(expected)} in:\n${text}`);
  });
}

Deno.test("AuditSink validation: throttle qps and burst must be > 0; http URLs are accepted", () => {
  const { errors } = readAuditSink(sinkObject({
    policy: { level: "Metadata", stages: ["ResponseComplete"] },
    webhook: { throttle: { qps: 0, burst: -1 }, clientConfig: { url: "http://127.0.0.1:1/x" } },
  }));
  assert.equal(
    messages(errors),
    "spec.webhook.throttle.qps: Invalid value: 0: qps must be a positive number\n" +
      "spec.webhook.throttle.burst: Invalid value: -1: burst must be a positive number",
  );
  assert.deepEqual(validateWebhookUrl(["url"], "http://127.0.0.1:8080/audit"), []);
  assert.match(messages(validateWebhookUrl(["url"], "ftp://host/x")), /only http and https/);
  assert.deepEqual(validateWebhookService(["s"], { namespace: "a", name: "b", port: 8443 }), []);
});

Deno.test("AuditSink validation: name must be a DNS subdomain and there is no namespace", () => {
  const bad = readAuditSink({
    apiVersion: API,
    kind: "AuditSink",
    metadata: { name: "Team_A", namespace: "default" },
    spec: { policy: { level: "None" }, webhook: { clientConfig: { url: "https://x" } } },
  });
  assert.match(
    messages(bad.errors),
    /metadata\.name: Invalid value: "Team_A": a DNS-1123 subdomain/,
  );
  assert.match(messages(bad.errors), /metadata\.namespace: Forbidden: not allowed on this type/);
  const missing = readAuditSink({ apiVersion: API, kind: "AuditSink", spec: {} });
  assert.match(
    messages(missing.errors),
    /metadata\.name: Required value: name or generateName is required/,
  );
  const other = readAuditSink({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } });
  assert.match(
    messages(other.errors),
    /apiVersion: Invalid value: "v1": must be auditregistration/,
  );
  assert.match(messages(other.errors), /kind: Invalid value: "ConfigMap": must be AuditSink/);
});

Deno.test("AuditSink defaults: throttle 10 qps / burst 15 when missing or partial; service port 443", () => {
  const { sink } = readAuditSink(sinkObject({
    policy: { level: "Metadata", stages: ["ResponseComplete"] },
    webhook: {
      clientConfig: { service: { namespace: "audit", name: "collector", path: "/events" } },
    },
  }));
  assert.deepEqual(sink?.spec.webhook.throttle, { qps: 10, burst: 15 });
  assert.equal(sink && auditSinkUrl(sink), "https://collector.audit.svc:443/events");
  const partial = readAuditSink(sinkObject({
    policy: { level: "Metadata", stages: ["ResponseComplete"] },
    webhook: { throttle: { burst: 3 }, clientConfig: { url: "https://x.example/a" } },
  }));
  assert.deepEqual(partial.sink?.spec.webhook.throttle, { qps: 10, burst: 3 });
});

Deno.test("AuditSink sink: the dynamic backend's batching, retry backoff and name", () => {
  const { sink } = readAuditSink(sinkObject({
    policy: { level: "Request", stages: ["ResponseComplete", "Panic"] },
    webhook: {
      throttle: { qps: 5, burst: 7 },
      clientConfig: { url: "https://collector.example/audit" },
    },
  }, "team-a"));
  const r = resolveAuditSink({ sink: sink!, file: "sinks/a.yaml", line: 1, col: 1 });
  assert.equal(r.config.name, "auditsink/team-a");
  assert.equal(r.config.mode, "batch");
  assert.deepEqual(r.config.batch, {
    bufferSize: 5000,
    maxSize: 400,
    maxWait: 30_000,
    throttle: { enabled: true, qps: 5, burst: 7 },
  });
  assert.ok(r.config.type === "webhook" && r.config.initialBackoff === 500);
  assert.equal(r.config.type === "webhook" && r.config.retry.maxAttempts, 5);
  assert.equal(r.config.truncate.enabled, false);
  assert.equal(r.target?.url.href, "https://collector.example/audit");
});

Deno.test("AuditSink files: multi-document YAML and a JSON List, problems at file:line:col", () => {
  const yaml = [
    "apiVersion: auditregistration.k8s.io/v1alpha1",
    "kind: AuditSink",
    "metadata: {name: good}",
    "spec:",
    "  policy: {level: Metadata, stages: [ResponseComplete]}",
    "  webhook: {clientConfig: {url: 'https://a.example/x'}}",
    "---",
    "apiVersion: auditregistration.k8s.io/v1alpha1",
    "kind: AuditSink",
    "metadata: {name: bad}",
    "spec:",
    "  policy:",
    "    level: Metadata",
    "    stages: [Later]",
    "  webhook: {clientConfig: {url: 'https://a.example/x'}}",
    "",
  ].join("\n");
  const one = parseSinkFile(yaml, "sinks.yaml");
  assert.deepEqual(one.sinks.map((s) => [s.sink.metadata.name, s.line]), [["good", 1]]);
  assert.deepEqual(one.problems.map(formatProblem), [
    'sinks.yaml:14:14 spec.policy.stages[0]: Invalid value: "Later": allowed stages are Panic,RequestReceived,ResponseComplete,ResponseStarted',
  ]);
  const list = JSON.stringify(
    {
      apiVersion: "v1",
      kind: "List",
      items: [
        sinkObject(
          { policy: { level: "None" }, webhook: { clientConfig: { url: "https://b/x" } } },
          "b",
        ),
        sinkObject({ policy: { level: "None" }, webhook: { clientConfig: {} } }, "c"),
      ],
    },
    null,
    2,
  );
  const two = parseSinkFile(list, "list.json");
  assert.deepEqual(two.sinks.map((s) => s.sink.metadata.name), ["b"]);
  assert.equal(two.problems.length, 1);
  assert.match(
    formatProblem(two.problems[0]),
    /^list\.json:\d+:\d+ items\[1\]\.spec\.webhook\.clientConfig: Required value: exactly one/,
  );
  const broken = parseSinkFile("kind: [unclosed", "broken.yaml");
  assert.equal(broken.sinks.length, 0);
  assert.match(formatProblem(broken.problems[0]), /^broken\.yaml:1:\d+: not valid YAML or JSON/);
});

Deno.test("AuditSink files: caBundle is base64 PEM, decoded", () => {
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const { sink } = readAuditSink(sinkObject({
    policy: { level: "None" },
    webhook: { clientConfig: { url: "https://x/y", caBundle: btoa(pem) } },
  }));
  assert.equal(sink?.spec.webhook.clientConfig.caBundle, pem);
  const bad = readAuditSink(sinkObject({
    policy: { level: "None" },
    webhook: { clientConfig: { url: "https://x/y", caBundle: "not base64!" } },
  }));
  assert.match(
    messages(bad.errors),
    /caBundle: Invalid value: "<bytes>": must be base64-encoded PEM/,
  );
});

Deno.test("AuditSink readiness: a failing AuditSink does not make auditpipe unready; a config sink does", () => {
  const stats = new PipelineStats();
  stats.sink("auditsink/team-a").failed(new Error("connection refused"), 0);
  assert.equal(readiness(stats, 1000, 10_000).ready, true);
  stats.sink("siem").failed(new Error("connection refused"), 0);
  assert.deepEqual(readiness(stats, 1000, 10_000).failing.map((f) => f.name), ["siem"]);
});
