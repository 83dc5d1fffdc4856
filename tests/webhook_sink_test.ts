import assert from "node:assert/strict";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { stringify } from "yaml";
import { createWebhookSink, eventListBody, type WebhookSinkConfig } from "../backends/webhook.ts";
import { errorText } from "../pipeline/core/errors.ts";
import type { WebhookTarget } from "../backends/kubeconfig.ts";
import type { SinkContext } from "../backends/sink.ts";
import { type Clock, FakeClock, systemClock } from "../pipeline/core/clock.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import type { Event } from "../pipeline/core/event.ts";
import { createLogger } from "../pipeline/core/log.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import { createTestPki, type TestPki } from "./helpers/tls.ts";
import { needs } from "./helpers/external.ts";
import { waitFor } from "./helpers/wait.ts";

// ---------- fixtures ----------

let seq = 0;
function env(extra: Partial<Event> = {}): Envelope {
  const event: Event = {
    level: "Metadata",
    auditID: `id-${seq++}`,
    stage: "ResponseComplete",
    requestURI: "/api/v1/pods?x=<y>",
    verb: "list",
    user: { username: "alice" },
    requestReceivedTimestamp: "2024-03-01T12:34:56.789000Z",
    stageTimestamp: "2024-03-01T12:34:56.801234Z",
    ...extra,
  };
  return { event };
}

function config(over: Partial<WebhookSinkConfig> = {}): WebhookSinkConfig {
  return {
    kubeconfig: "/unused",
    initialBackoff: 10,
    timeout: 30_000,
    compress: "none",
    retry: { maxAttempts: 5 },
    maxInFlight: 1,
    ...over,
  };
}

interface TestCtx {
  ctx: SinkContext;
  stats: SinkStats;
  logs: Record<string, unknown>[];
  abort: AbortController;
}

function context(clock: Clock = systemClock): TestCtx {
  const logs: Record<string, unknown>[] = [];
  const stats = new SinkStats("siem");
  const abort = new AbortController();
  const log = createLogger("debug", (line) => logs.push(JSON.parse(line)));
  return { ctx: { name: "siem", log, clock, stats, signal: abort.signal }, stats, logs, abort };
}

const target = (url: string, headers: WebhookTarget["headers"] = {}): WebhookTarget => ({
  url: new URL(url),
  headers,
  warnings: [],
  files: [],
});

// ---------- receivers ----------

interface Received {
  path: string;
  headers: Headers;
  /** The body as sent (still gzip-compressed if it was). */
  raw: Uint8Array;
  /** The body, decompressed if needed. */
  text: string;
}

type Reply = (n: number) => Response | Promise<Response>;

/** A plain-HTTP receiver on an ephemeral 127.0.0.1 port; `reply(n)` answers request n (1-based). */
function httpReceiver(reply: Reply = () => new Response("{}")) {
  const got: Received[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const raw = new Uint8Array(await req.arrayBuffer());
    const gz = req.headers.get("content-encoding") === "gzip";
    const plain = gz
      ? new Uint8Array(
        await new Response(new Blob([raw]).stream().pipeThrough(new DecompressionStream("gzip")))
          .arrayBuffer(),
      )
      : raw;
    const u = new URL(req.url);
    got.push({
      path: u.pathname + u.search,
      headers: req.headers,
      raw,
      text: new TextDecoder().decode(plain),
    });
    return await reply(got.length);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    got,
    close: () => server.shutdown(),
  };
}

/** An https receiver that demands a client certificate signed by the PKI's CA. */
async function mtlsReceiver(pki: TestPki) {
  const got: { cn: string | undefined; authorization: string | undefined; body: string }[] = [];
  const server = https.createServer({
    key: pki.serverKey,
    cert: pki.serverCert,
    ca: pki.caCert,
    requestCert: true,
    rejectUnauthorized: true,
  }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => body += c);
    req.on("end", () => {
      got.push({ cn: peer?.subject?.CN, authorization: req.headers.authorization, body });
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}/audit`,
    got,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Runs `fn` against an mTLS receiver and the PKI it trusts, then closes both. */
async function withMtlsReceiver(
  fn: (pki: TestPki, rx: Awaited<ReturnType<typeof mtlsReceiver>>) => Promise<void>,
): Promise<void> {
  const pki = await createTestPki();
  const rx = await mtlsReceiver(pki);
  try {
    await fn(pki, rx);
  } finally {
    await rx.close();
    await pki.cleanup();
  }
}

/** Runs `fn` with `it`, then closes it, also when `fn` throws. */
async function closing<T extends { close(): Promise<void> }>(
  it: T,
  fn: (it: T) => Promise<void>,
): Promise<void> {
  try {
    await fn(it);
  } finally {
    await it.close();
  }
}

/** Writes a kubeconfig with files next to it (relative paths), returns its path. */
async function writeKubeconfig(
  dir: string,
  server: string,
  files: { ca: string; cert?: string; key?: string; token?: string },
): Promise<string> {
  await Deno.mkdir(`${dir}/kc`, { recursive: true });
  await Deno.writeTextFile(`${dir}/kc/ca.pem`, files.ca);
  const user: Record<string, string> = {};
  if (files.cert && files.key) {
    await Deno.writeTextFile(`${dir}/kc/client.pem`, files.cert);
    await Deno.writeTextFile(`${dir}/kc/client-key.pem`, files.key);
    user["client-certificate"] = "client.pem";
    user["client-key"] = "client-key.pem";
  }
  if (files.token) {
    await Deno.writeTextFile(`${dir}/kc/token`, files.token + "\n");
    user.tokenFile = "token";
  }
  const path = `${dir}/kc/siem.kubeconfig`;
  await Deno.writeTextFile(
    path,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "siem", cluster: { server, "certificate-authority": "ca.pem" } }],
      users: [{ name: "auditpipe", user }],
      contexts: [{ name: "default", context: { cluster: "siem", user: "auditpipe" } }],
      "current-context": "default",
    }),
  );
  return path;
}

/** Waits (real time) until `cond` holds, for I/O that a FakeClock does not drive. */
const until = (cond: () => boolean, what: string, ms = 5000) =>
  waitFor(what, cond, { timeoutMs: ms, intervalMs: 2 });

// ---------- tests ----------

Deno.test("a batch is one POST of an EventList whose items lack kind/apiVersion, ending in \\n", async () => {
  const rx = await httpReceiver();
  const { ctx } = context();
  const sink = await createWebhookSink(config(), ctx, target(`${rx.url}/audit/`));
  try {
    const items = [env({ kind: "Event", apiVersion: "audit.k8s.io/v1" }), env(), env()];
    await sink.write(items);
    assert.equal(rx.got.length, 1);
    const r = rx.got[0];
    assert.equal(r.path, "/audit/?timeout=30s", "the target URL is used as given plus the timeout");
    assert.equal(r.headers.get("content-type"), "application/json");
    assert.equal(r.headers.get("accept"), "application/json, */*");
    assert.equal(r.headers.get("authorization"), null);
    assert.ok(r.text.endsWith("}\n"));
    assert.equal(r.text, new TextDecoder().decode(eventListBody(items)));
    const list = JSON.parse(r.text);
    assert.equal(list.kind, "EventList");
    assert.equal(list.apiVersion, "audit.k8s.io/v1");
    assert.deepEqual(list.metadata, {});
    assert.deepEqual(list.items.map((e: Event) => e.auditID), items.map((e) => e.event.auditID));
    for (const item of list.items) {
      assert.equal(item.kind, undefined);
      assert.equal(item.apiVersion, undefined);
    }
    assert.ok(r.text.includes("\\u003cy\\u003e"), "HTML characters escaped as Go does");
  } finally {
    await sink.close();
    await rx.close();
  }
});

Deno.test("an empty batch sends nothing", async () => {
  const rx = await httpReceiver();
  const sink = await createWebhookSink(config(), context().ctx, target(rx.url));
  await sink.write([]);
  assert.equal(rx.got.length, 0);
  await sink.close();
  await rx.close();
});

Deno.test("the timeout query follows cfg.timeout as a Go duration", async () => {
  const rx = await httpReceiver();
  const sink = await createWebhookSink(config({ timeout: 1500 }), context().ctx, target(rx.url));
  await sink.write([env()]);
  assert.equal(rx.got[0].path, "/?timeout=1.5s");
  await sink.close();
  await rx.close();
});

Deno.test("the target's Authorization header is sent (basic auth)", async () => {
  const rx = await httpReceiver();
  const basic = `Basic ${btoa("audit:pw")}`;
  const sink = await createWebhookSink(
    config(),
    context().ctx,
    target(rx.url, { Authorization: basic }),
  );
  await sink.write([env()]);
  assert.equal(rx.got[0].headers.get("authorization"), basic);
  await sink.close();
  await rx.close();
});

Deno.test("gzip bodies decompress to the same EventList", async () => {
  const rx = await httpReceiver();
  const sink = await createWebhookSink(config({ compress: "gzip" }), context().ctx, target(rx.url));
  const items = Array.from({ length: 50 }, () => env());
  await sink.write(items);
  const r = rx.got[0];
  assert.equal(r.headers.get("content-encoding"), "gzip");
  assert.deepEqual([...r.raw.slice(0, 2)], [0x1f, 0x8b]);
  assert.ok(r.raw.length < r.text.length);
  assert.equal(r.text, new TextDecoder().decode(eventListBody(items)));
  await sink.close();
  await rx.close();
});

Deno.test(
  needs("openssl", "mTLS with a kubeconfig CA, client certificate and token file is accepted"),
  () =>
    withMtlsReceiver(async (pki, rx) => {
      const kc = await writeKubeconfig(pki.dir, rx.url, {
        ca: pki.caCert,
        cert: pki.clientCert,
        key: pki.clientKey,
        token: "t0ken",
      });
      await closing(
        await createWebhookSink(config({ kubeconfig: kc }), context().ctx),
        async (sink) => {
          const items = [env(), env()];
          await sink.write(items);
          assert.equal(rx.got.length, 1);
          assert.equal(rx.got[0].cn, pki.clientCN);
          assert.equal(rx.got[0].authorization, "Bearer t0ken");
          assert.equal(rx.got[0].body, new TextDecoder().decode(eventListBody(items)));
        },
      );
    }),
);

Deno.test(
  needs(
    "openssl",
    "insecure-skip-tls-verify delivers to a server whose CA is unknown, with the client certificate",
  ),
  () =>
    withMtlsReceiver(async (pki, rx) => {
      const sink = await createWebhookSink(config(), context().ctx, {
        url: new URL(rx.url),
        cert: pki.clientCert,
        key: pki.clientKey,
        insecureSkipTLSVerify: true,
        headers: { Authorization: "Bearer t0ken" },
        warnings: [],
        files: [],
      });
      await closing(sink, async () => {
        await sink.write([env()]);
        assert.equal(rx.got.length, 1);
        assert.equal(rx.got[0].cn, pki.clientCN);
        assert.equal(rx.got[0].authorization, "Bearer t0ken");
      });
    }),
);

Deno.test(
  needs(
    "openssl",
    "tls-server-name checks the certificate against that name, not the server's address",
  ),
  () =>
    withMtlsReceiver(async (pki, rx) => {
      const target = (name: string) => ({
        url: new URL(rx.url),
        caCerts: [pki.caCert],
        cert: pki.clientCert,
        key: pki.clientKey,
        tlsServerName: name,
        headers: {},
        warnings: [],
        files: [],
      });
      // The server certificate is valid for 127.0.0.1 and localhost.
      const ok = await createWebhookSink(config(), context().ctx, target("localhost"));
      await closing(ok, async () => {
        await ok.write([env()]);
        assert.equal(rx.got.length, 1);
      });
      const wrong = await createWebhookSink(
        config({ retry: { maxAttempts: 1 } }),
        context().ctx,
        target("siem.example"),
      );
      await closing(wrong, async () => {
        const err = await wrong.write([env()]).then(() => null, (e) => e);
        assert.ok(err instanceof Error);
        assert.match(errorText(err), /siem\.example/);
        assert.equal(rx.got.length, 1);
      });
    }),
);

Deno.test(
  needs("openssl", "a server certificate from another CA is refused and the error says why"),
  () =>
    withMtlsReceiver(async (pki, rx) => {
      const kc = await writeKubeconfig(pki.dir, rx.url, {
        ca: pki.otherCaCert,
        cert: pki.clientCert,
        key: pki.clientKey,
      });
      const { ctx, logs } = context();
      const sink = await createWebhookSink(
        config({ kubeconfig: kc, retry: { maxAttempts: 1 } }),
        ctx,
      );
      await closing(sink, async () => {
        const err = await sink.write([env()]).catch((e) => e);
        assert.ok(err instanceof Error);
        assert.match(
          err.message,
          /^webhook siem: 1 event not delivered, failed after 1 attempt: POST https:\/\/127\.0\.0\.1:\d+\/audit\?timeout=30s: /,
        );
        assert.match(err.message, /invalid peer certificate: UnknownIssuer/);
        assert.equal(rx.got.length, 0);
        const warn = logs.find((l) => l.msg === "webhook attempt failed");
        assert.match(String(warn?.error), /UnknownIssuer/);
      });
    }),
);

Deno.test(
  needs("openssl", "without a client certificate the mTLS receiver's refusal is reported"),
  () =>
    withMtlsReceiver(async (pki, rx) => {
      const kc = await writeKubeconfig(pki.dir, rx.url, { ca: pki.caCert });
      const sink = await createWebhookSink(
        config({ kubeconfig: kc, retry: { maxAttempts: 1 } }),
        context().ctx,
      );
      const err = await sink.write([env()]).catch((e) => e);
      // TLS 1.3: the refusal arrives as an alert after the handshake (or, racing, as a reset).
      assert.match(String(err?.message), /fetch failed: .*(CertificateRequired|reset|closed)/i);
      await sink.close();
    }),
);

Deno.test("a receiver failing 3 times then succeeding gets the batch delivered once", async () => {
  const rx = await httpReceiver((n) =>
    n <= 3 ? new Response("nope", { status: 500 }) : new Response("{}")
  );
  const { ctx, stats, logs } = context();
  const sink = await createWebhookSink(config({ initialBackoff: 10 }), ctx, target(rx.url));
  const items = [env(), env(), env()];
  await sink.write(items);
  assert.equal(rx.got.length, 4);
  assert.ok(rx.got.every((r) => r.text === rx.got[0].text), "every attempt sends the same body");
  assert.equal(stats.retries, 3);
  const warns = logs.filter((l) => l.msg === "webhook attempt failed");
  assert.ok(warns.length >= 1, "failed attempts are logged");
  assert.equal(warns[0].level, "warn");
  assert.equal(warns[0].events, 3);
  assert.match(String(warns[0].error), /HTTP 500 Internal Server Error: nope/);
  await sink.close();
  await rx.close();
});

Deno.test("exhausting maxAttempts rejects with attempts, event count and the last error", async () => {
  const rx = await httpReceiver(() => new Response("  overloaded,\n try later ", { status: 500 }));
  const { ctx, stats } = context();
  const sink = await createWebhookSink(
    config({ initialBackoff: 5, retry: { maxAttempts: 3 } }),
    ctx,
    target(`${rx.url}/hook`),
  );
  const err = await sink.write([env(), env()]).catch((e) => e);
  assert.ok(err instanceof Error);
  assert.equal(
    err.message,
    `webhook siem: 2 events not delivered, failed after 3 attempts: POST ${rx.url}/hook?timeout=30s: ` +
      `HTTP 500 Internal Server Error: overloaded, try later`,
  );
  assert.equal(rx.got.length, 3);
  assert.equal(stats.retries, 2);
  await sink.close();
  await rx.close();
});

Deno.test("retry delays follow initialBackoff x1.5 with jitter (FakeClock, r = 0.1)", async () => {
  const rx = await httpReceiver(() => new Response("", { status: 502 }));
  const clock = new FakeClock();
  const { ctx, stats } = context(clock);
  const sink = await createWebhookSink(
    config({ initialBackoff: 10_000, retry: { maxAttempts: 5 } }),
    ctx,
    target(rx.url),
    { random: () => 0.5 },
  );
  const done = sink.write([env()]).catch((e) => e);
  const waits: number[] = [];
  for (let i = 1; i <= 4; i++) {
    await until(() => clock.sleeping === 1, `backoff ${i}`);
    waits.push(...clock.pending());
    await clock.advance(clock.pending()[0]);
  }
  const err = await done;
  assert.deepEqual(waits, [11_000, 16_500, 24_750, 37_125]);
  assert.match(err.message, /failed after 5 attempts: .*HTTP 502 Bad Gateway$/);
  assert.equal(rx.got.length, 5);
  assert.equal(stats.retries, 4);
  await sink.close();
  await rx.close();
});

Deno.test("Retry-After on 429 and 503 is waited instead of the backoff", async () => {
  const rx = await httpReceiver((n) => {
    if (n === 1) return new Response("slow down", { status: 429, headers: { "Retry-After": "7" } });
    if (n === 2) return new Response("", { status: 503, headers: { "Retry-After": "2" } });
    if (n === 3) return new Response("", { status: 400, headers: { "Retry-After": "99" } });
    return new Response("{}");
  });
  const clock = new FakeClock();
  const { ctx } = context(clock);
  const sink = await createWebhookSink(
    config({ initialBackoff: 10_000 }),
    ctx,
    target(rx.url),
    { random: () => 0 },
  );
  const done = sink.write([env()]);
  const waits: number[] = [];
  for (let i = 1; i <= 3; i++) {
    await until(() => clock.sleeping === 1, `wait ${i}`);
    waits.push(...clock.pending());
    await clock.advance(clock.pending()[0]);
  }
  await done;
  // 400 is not a status that may ask to wait: its Retry-After is ignored, d_3 = 22.5s applies.
  assert.deepEqual(waits, [7000, 2000, 22_500]);
  assert.equal(rx.got.length, 4);
  await sink.close();
  await rx.close();
});

Deno.test("an attempt with no response within cfg.timeout fails as a timeout", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  const rx = await httpReceiver(async () => {
    await released;
    return new Response("{}");
  });
  const sink = await createWebhookSink(
    config({ timeout: 50, retry: { maxAttempts: 1 } }),
    context().ctx,
    target(rx.url),
  );
  const err = await sink.write([env()]).catch((e) => e);
  assert.match(err.message, /\?timeout=50ms: no response within 50ms$/);
  release();
  await sink.close();
  await rx.close();
});

Deno.test("a refused connection is an error that carries fetch's cause", async () => {
  const rx = await httpReceiver();
  const url = rx.url;
  await rx.close();
  const sink = await createWebhookSink(
    config({ retry: { maxAttempts: 1 } }),
    context().ctx,
    target(url),
  );
  const err = await sink.write([env()]).catch((e) => e);
  assert.match(err.message, /fetch failed: .*(refused|Connect)/i);
  await sink.close();
});

Deno.test("aborting ctx.signal during a backoff rejects the write promptly", async () => {
  const rx = await httpReceiver(() => new Response("", { status: 500 }));
  const clock = new FakeClock();
  const { ctx, abort } = context(clock);
  const sink = await createWebhookSink(config({ initialBackoff: 10_000 }), ctx, target(rx.url));
  const done = sink.write([env(), env()]).catch((e) => e);
  await until(() => clock.sleeping === 1, "first backoff");
  abort.abort(new Error("shutdown"));
  const err = await done;
  assert.match(
    err.message,
    /^webhook siem: 2 events not delivered, aborted after 1 attempt: .*HTTP 500/,
  );
  await sink.close();
  await rx.close();
});

Deno.test("concurrent writes (maxInFlight > 1) each deliver their own batch", async () => {
  const rx = await httpReceiver(async (n) => {
    await new Promise((r) => setTimeout(r, n % 2 ? 30 : 5));
    return n === 2 ? new Response("", { status: 500 }) : new Response("{}");
  });
  const { ctx } = context();
  const sink = await createWebhookSink(
    config({ maxInFlight: 4, initialBackoff: 5 }),
    ctx,
    target(rx.url),
  );
  const batches = Array.from({ length: 4 }, () => [env(), env()]);
  await Promise.all(batches.map((b) => sink.write(b)));
  const delivered = new Set(rx.got.map((r) => r.text));
  for (const b of batches) {
    assert.ok(delivered.has(new TextDecoder().decode(eventListBody(b))));
  }
  assert.equal(rx.got.length, 5, "four batches, one of them retried once");
  await sink.close();
  await rx.close();
});

Deno.test("a rotated token file is re-read after a minute", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-tok-" });
  const rx = await httpReceiver();
  try {
    await Deno.writeTextFile(`${dir}/token`, "first\n");
    const clock = new FakeClock();
    const t: WebhookTarget = {
      ...target(rx.url, { Authorization: "Bearer first" }),
      tokenFile: `${dir}/token`,
    };
    const sink = await createWebhookSink(config(), context(clock).ctx, t);
    await Deno.writeTextFile(`${dir}/token`, "second\n");
    await sink.write([env()]);
    await clock.advance(60_000);
    await sink.write([env()]);
    await Deno.remove(`${dir}/token`);
    await clock.advance(60_000);
    await sink.write([env()]);
    assert.deepEqual(rx.got.map((r) => r.headers.get("authorization")), [
      "Bearer first",
      "Bearer second",
      "Bearer second",
    ]);
    await sink.close();
  } finally {
    await rx.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  needs("openssl", "a client key that does not match the certificate fails at sink creation"),
  async () => {
    const pki = await createTestPki();
    try {
      const err = await createWebhookSink(
        config({ kubeconfig: "/etc/siem.kubeconfig" }),
        context().ctx,
        {
          ...target("https://127.0.0.1:1/"),
          caCerts: [pki.caCert],
          cert: pki.clientCert,
          key: pki.serverKey,
        },
      ).catch((e) => e);
      assert.ok(err instanceof Error);
      assert.match(
        err.message,
        /^webhook siem: TLS settings from \/etc\/siem\.kubeconfig are unusable: .*KeyMismatch/,
      );
    } finally {
      await pki.cleanup();
    }
  },
);

Deno.test("kubeconfig warnings are logged when the sink starts", async () => {
  const { ctx, logs } = context();
  const sink = await createWebhookSink(config(), ctx, {
    ...target("http://127.0.0.1:1"),
    warnings: ["clusters[0].cluster.sever: unknown key, ignored"],
  });
  assert.ok(logs.some((l) => l.level === "warn" && String(l.msg).includes("sever: unknown key")));
  await sink.close();
});
