import assert from "node:assert/strict";
import { stringify } from "yaml";
import {
  KubeconfigError,
  loadKubeconfig,
  parseKubeconfig,
  type ReadFile,
} from "../backends/kubeconfig.ts";

const CA = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n";
const b64 = (s: string) => btoa(s);

/** Files the fake reader knows, by absolute path. */
const FILES: Record<string, string> = {
  "/etc/auditpipe/certs/ca.crt": CA,
  "/etc/auditpipe/certs/client.crt": CERT,
  "/etc/auditpipe/certs/client.key": KEY,
  "/etc/auditpipe/token": "  s3cr3t-from-file\n",
  "/etc/auditpipe/empty-token": "\n",
};
const readFile: ReadFile = (path) => {
  const text = FILES[path];
  if (text === undefined) return Promise.reject(new Deno.errors.NotFound(`no such file: ${path}`));
  return Promise.resolve(new TextEncoder().encode(text));
};

const FILE = "/etc/auditpipe/siem.kubeconfig";

/** A one-context kubeconfig with the given cluster and user fields. */
function kubeconfig(cluster: Record<string, unknown>, user?: Record<string, unknown>): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "siem", cluster }],
    users: user ? [{ name: "auditpipe", user }] : [],
    contexts: [{
      name: "default",
      context: { cluster: "siem", ...(user && { user: "auditpipe" }) },
    }],
    "current-context": "default",
  });
}

const parse = (text: string) => parseKubeconfig(text, FILE, readFile);

async function rejectsWith(text: string, message: string): Promise<void> {
  const err = await parse(text).then(() => undefined, (e) => e);
  assert.ok(err instanceof KubeconfigError, `expected a KubeconfigError, got ${err}`);
  assert.equal(err.message, message);
}

Deno.test("CA, client certificate and token files are read relative to the kubeconfig", async () => {
  const t = await parse(kubeconfig(
    { server: "https://siem.example:8443/audit/", "certificate-authority": "certs/ca.crt" },
    {
      "client-certificate": "certs/client.crt",
      "client-key": "./certs/client.key",
      tokenFile: "token",
    },
  ));
  assert.equal(t.url.href, "https://siem.example:8443/audit");
  assert.deepEqual(t.caCerts, [CA]);
  assert.equal(t.cert, CERT);
  assert.equal(t.key, KEY);
  assert.equal(t.headers.Authorization, "Bearer s3cr3t-from-file");
  assert.equal(t.tokenFile, "/etc/auditpipe/token");
  assert.deepEqual(t.warnings, []);
});

Deno.test("a relative kubeconfig path resolves its files against its own directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-kc-" });
  try {
    await Deno.mkdir(`${dir}/conf/certs`, { recursive: true });
    await Deno.writeTextFile(`${dir}/conf/certs/ca.crt`, CA);
    await Deno.writeTextFile(
      `${dir}/conf/siem.kubeconfig`,
      kubeconfig({ server: "https://127.0.0.1:9443", "certificate-authority": "certs/ca.crt" }),
    );
    const cwd = Deno.cwd();
    Deno.chdir(dir);
    try {
      const t = await loadKubeconfig("conf/siem.kubeconfig");
      assert.deepEqual(t.caCerts, [CA]);
    } finally {
      Deno.chdir(cwd);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("*-data fields are base64-decoded PEM", async () => {
  const t = await parse(kubeconfig(
    { server: "https://siem.example", "certificate-authority-data": b64(CA) },
    { "client-certificate-data": b64(CERT), "client-key-data": b64(KEY), token: "abc" },
  ));
  assert.deepEqual(t.caCerts, [CA]);
  assert.equal(t.cert, CERT);
  assert.equal(t.key, KEY);
  assert.equal(t.headers.Authorization, "Bearer abc");
  assert.equal(t.tokenFile, undefined);
});

Deno.test("username and password become Basic auth", async () => {
  const t = await parse(kubeconfig(
    { server: "https://siem.example" },
    { username: "audit", password: "pä:ss" },
  ));
  const bytes = new TextEncoder().encode("audit:pä:ss");
  assert.equal(t.headers.Authorization, `Basic ${btoa(String.fromCharCode(...bytes))}`);
});

Deno.test("server path is cleaned and any query or fragment dropped", async () => {
  const cases: [string, string][] = [
    ["https://siem.example:8443", "https://siem.example:8443/"],
    ["https://siem.example/", "https://siem.example/"],
    ["https://siem.example//a//b/./c/../d/?x=1#f", "https://siem.example/a/b/d"],
  ];
  for (const [server, want] of cases) {
    const t = await parse(kubeconfig({ server }));
    assert.equal(t.url.href, want, server);
  }
});

Deno.test("server without scheme gets https with TLS settings, else http", async () => {
  const tls = await parse(
    kubeconfig({ server: "10.0.0.7:8443", "certificate-authority": "certs/ca.crt" }),
  );
  assert.equal(tls.url.href, "https://10.0.0.7:8443/");
  const withCert = await parse(kubeconfig(
    { server: "siem.example:8443" },
    { "client-certificate-data": b64(CERT), "client-key-data": b64(KEY) },
  ));
  assert.equal(withCert.url.protocol, "https:");
  const plain = await parse(kubeconfig({ server: "10.0.0.7:8080" }));
  assert.equal(plain.url.href, "http://10.0.0.7:8080/");
});

Deno.test("server without scheme but with a path is refused, as client-go does", async () => {
  await rejectsWith(
    kubeconfig({ server: "siem.example:8443/audit" }),
    `${FILE}: clusters[0].cluster.server: must be a URL or a host:port pair, got "siem.example:8443/audit"`,
  );
});

Deno.test("credentials and TLS settings are not used for an http server, with a warning", async () => {
  const t = await parse(kubeconfig(
    { server: "http://127.0.0.1:8080/audit", "certificate-authority": "certs/ca.crt" },
    { token: "abc" },
  ));
  assert.equal(t.headers.Authorization, undefined);
  assert.equal(t.caCerts, undefined);
  assert.equal(t.warnings.length, 1);
  assert.match(t.warnings[0], /credentials and TLS settings of the context are not used/);
});

Deno.test("certificate-authority and certificate-authority-data together are an error", async () => {
  await rejectsWith(
    kubeconfig({
      server: "https://siem.example",
      "certificate-authority": "certs/ca.crt",
      "certificate-authority-data": b64(CA),
    }),
    `${FILE}: clusters[0].cluster: certificate-authority-data and certificate-authority are both set`,
  );
});

Deno.test("client-certificate and client-certificate-data together are an error", async () => {
  await rejectsWith(
    kubeconfig({ server: "https://siem.example" }, {
      "client-certificate": "certs/client.crt",
      "client-certificate-data": b64(CERT),
      "client-key": "certs/client.key",
    }),
    `${FILE}: users[0].user: client-certificate-data and client-certificate are both set`,
  );
});

Deno.test("client-key and client-key-data together are an error", async () => {
  await rejectsWith(
    kubeconfig({ server: "https://siem.example" }, {
      "client-certificate": "certs/client.crt",
      "client-key": "certs/client.key",
      "client-key-data": b64(KEY),
    }),
    `${FILE}: users[0].user: client-key-data and client-key are both set`,
  );
});

Deno.test("a client certificate without a key, or a key without a certificate, is an error", async () => {
  await rejectsWith(
    kubeconfig({ server: "https://siem.example" }, { "client-certificate": "certs/client.crt" }),
    `${FILE}: users[0].user: client-certificate(-data) is set without client-key(-data)`,
  );
  await rejectsWith(
    kubeconfig({ server: "https://siem.example" }, { "client-key-data": b64(KEY) }),
    `${FILE}: users[0].user: client-key(-data) is set without client-certificate(-data)`,
  );
});

Deno.test("insecure-skip-tls-verify with a CA is an error", async () => {
  await rejectsWith(
    kubeconfig({
      server: "https://siem.example",
      "insecure-skip-tls-verify": true,
      "certificate-authority-data": b64(CA),
    }),
    `${FILE}: clusters[0].cluster: insecure-skip-tls-verify is set together with a certificate authority`,
  );
});

Deno.test("insecure-skip-tls-verify alone is honoured, with a warning", async () => {
  const t = await parse(
    kubeconfig({ server: "siem.example:8443", "insecure-skip-tls-verify": true }),
  );
  assert.equal(t.insecureSkipTLSVerify, true);
  // As client-go: the insecure flag alone makes a scheme-less server https.
  assert.equal(t.url.protocol, "https:");
  assert.ok(t.warnings.some((w) => w.includes("not verified")));
});

Deno.test("token together with username/password is an error", async () => {
  await rejectsWith(
    kubeconfig({ server: "https://siem.example" }, { token: "abc", username: "u", password: "p" }),
    `${FILE}: users[0].user: username/password and token/tokenFile are both set; only one may be`,
  );
  await rejectsWith(
    kubeconfig({ server: "https://siem.example" }, { tokenFile: "token", username: "u" }),
    `${FILE}: users[0].user: username/password and token/tokenFile are both set; only one may be`,
  );
});

Deno.test("tokenFile wins over token while readable; token stands in when it is not", async () => {
  const both = await parse(kubeconfig(
    { server: "https://siem.example" },
    { token: "static", tokenFile: "token" },
  ));
  assert.equal(both.headers.Authorization, "Bearer s3cr3t-from-file");
  const missing = await parse(kubeconfig(
    { server: "https://siem.example" },
    { token: "static", tokenFile: "missing-token" },
  ));
  assert.equal(missing.headers.Authorization, "Bearer static");
  assert.equal(missing.tokenFile, "/etc/auditpipe/missing-token");
  assert.match(missing.warnings[0], /cannot read \/etc\/auditpipe\/missing-token: file not found/);
});

Deno.test("an unreadable or empty tokenFile alone is an error naming the field", async () => {
  await rejectsWith(
    kubeconfig({ server: "https://siem.example" }, { tokenFile: "/nope/token" }),
    `${FILE}: users[0].user.tokenFile: cannot read /nope/token: file not found`,
  );
  await rejectsWith(
    kubeconfig({ server: "https://siem.example" }, { tokenFile: "empty-token" }),
    `${FILE}: users[0].user.tokenFile: /etc/auditpipe/empty-token is empty`,
  );
});

Deno.test("a missing CA file is an error naming the field and the resolved path", async () => {
  await rejectsWith(
    kubeconfig({ server: "https://siem.example", "certificate-authority": "certs/nope.crt" }),
    `${FILE}: clusters[0].cluster.certificate-authority: cannot read /etc/auditpipe/certs/nope.crt: file not found`,
  );
});

Deno.test("data that is not PEM or not base64 is an error", async () => {
  await rejectsWith(
    kubeconfig({ server: "https://siem.example", "certificate-authority-data": b64("hello") }),
    `${FILE}: clusters[0].cluster.certificate-authority-data: does not contain a PEM certificate`,
  );
  await rejectsWith(
    kubeconfig({ server: "https://siem.example", "certificate-authority-data": "%%%" }),
    `${FILE}: clusters[0].cluster.certificate-authority-data: is not valid base64`,
  );
});

Deno.test("current-context must be set and name a context", async () => {
  const noCurrent = stringify({
    clusters: [{ name: "siem", cluster: { server: "https://siem.example" } }],
    contexts: [{ name: "default", context: { cluster: "siem" } }],
  });
  await rejectsWith(
    noCurrent,
    `${FILE}: current-context: is not set; it must name one of contexts[].name`,
  );
  const wrong = kubeconfig({ server: "https://siem.example" }).replace(
    "current-context: default",
    "current-context: prod",
  );
  await rejectsWith(wrong, `${FILE}: current-context: context "prod" is not in contexts`);
});

Deno.test("current-context selects its own cluster and user among several", async () => {
  const text = stringify({
    clusters: [
      { name: "a", cluster: { server: "https://a.example" } },
      { name: "b", cluster: { server: "https://b.example/hook" } },
    ],
    users: [{ name: "ua", user: { token: "ta" } }, { name: "ub", user: { token: "tb" } }],
    contexts: [
      { name: "ca", context: { cluster: "a", user: "ua" } },
      { name: "cb", context: { cluster: "b", user: "ub" } },
    ],
    "current-context": "cb",
  });
  const t = await parse(text);
  assert.equal(t.url.href, "https://b.example/hook");
  assert.equal(t.headers.Authorization, "Bearer tb");
});

Deno.test("a context naming a missing cluster or user is an error", async () => {
  const text = (ctx: Record<string, string>) =>
    stringify({
      clusters: [{ name: "siem", cluster: { server: "https://siem.example" } }],
      users: [{ name: "u", user: { token: "t" } }],
      contexts: [{ name: "c", context: ctx }],
      "current-context": "c",
    });
  await rejectsWith(
    text({ cluster: "other", user: "u" }),
    `${FILE}: contexts[0].context.cluster: cluster "other" is not in clusters`,
  );
  await rejectsWith(
    text({ cluster: "siem", user: "x" }),
    `${FILE}: contexts[0].context.user: user "x" is not in users`,
  );
});

Deno.test("duplicate names in a list are an error", async () => {
  const text = stringify({
    clusters: [
      { name: "siem", cluster: { server: "https://a.example" } },
      { name: "siem", cluster: { server: "https://b.example" } },
    ],
    contexts: [{ name: "c", context: { cluster: "siem" } }],
    "current-context": "c",
  });
  await rejectsWith(text, `${FILE}: clusters[1].name: duplicate name "siem" (also clusters[0])`);
});

Deno.test("exec, auth-provider and impersonation are refused as not supported", async () => {
  await rejectsWith(
    kubeconfig({ server: "https://siem.example" }, {
      exec: { apiVersion: "client.authentication.k8s.io/v1", command: "get-token" },
    }),
    `${FILE}: users[0].user.exec: exec credential plugins are not supported`,
  );
  await rejectsWith(
    kubeconfig({ server: "https://siem.example" }, { "auth-provider": { name: "oidc" } }),
    `${FILE}: users[0].user.auth-provider: auth providers are not supported`,
  );
  await rejectsWith(
    kubeconfig({ server: "https://siem.example" }, { as: "admin", token: "t" }),
    `${FILE}: users[0].user.as: impersonation is not supported`,
  );
});

Deno.test("proxy-url is refused: the sink talks to the configured server only", async () => {
  const err = await parse(
    kubeconfig({ server: "https://siem.example", "proxy-url": "http://proxy:3128" }),
  )
    .catch((e) => e);
  assert.ok(err instanceof KubeconfigError);
  assert.equal(err.field, "clusters[0].cluster.proxy-url");
  assert.match(err.message, /is not supported/);
});

Deno.test("tls-server-name is kept for https servers", async () => {
  const t = await parse(
    kubeconfig({ server: "https://10.0.0.7:8443", "tls-server-name": "siem.example" }),
  );
  assert.equal(t.tlsServerName, "siem.example");
  assert.equal(t.url.hostname, "10.0.0.7");
});

Deno.test("unknown keys are ignored with a warning, as client-go ignores them", async () => {
  const t = await parse(
    kubeconfig({ server: "https://siem.example", sever: "x" }, { tokenfile: "token" }),
  );
  assert.deepEqual(t.warnings, [
    "clusters[0].cluster.sever: unknown key, ignored",
    "users[0].user.tokenfile: unknown key, ignored",
  ]);
});

Deno.test("a token with a line break is refused rather than failing every request", async () => {
  await rejectsWith(
    kubeconfig({ server: "https://siem.example" }, { token: "abc\ndef" }),
    `${FILE}: users[0].user.token: contains a line break, control or non-Latin-1 character`,
  );
});

Deno.test("a numeric token must be quoted rather than silently converted", async () => {
  await rejectsWith(
    "clusters: [{name: s, cluster: {server: 'https://s'}}]\n" +
      "users: [{name: u, user: {token: 12345678901234567890}}]\n" +
      "contexts: [{name: c, context: {cluster: s, user: u}}]\ncurrent-context: c\n",
    `${FILE}: users[0].user.token: must be a string, got number 12345678901234567000 (quote it)`,
  );
});

Deno.test("invalid YAML and a missing server are errors naming the file", async () => {
  const yamlErr = await parse("clusters: [\n").catch((e) => e);
  assert.ok(yamlErr instanceof KubeconfigError);
  assert.match(yamlErr.message, /^\/etc\/auditpipe\/siem\.kubeconfig: not valid YAML: /);
  await rejectsWith(
    kubeconfig({ "certificate-authority-data": b64(CA) }),
    `${FILE}: clusters[0].cluster.server: is not set`,
  );
});

Deno.test("loadKubeconfig says file not found with the path", async () => {
  const err = await loadKubeconfig("/nonexistent/siem.kubeconfig").catch((e) => e);
  assert.ok(err instanceof KubeconfigError);
  assert.equal(err.message, "file not found: /nonexistent/siem.kubeconfig");
});
