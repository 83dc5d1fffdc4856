/**
 * The webhook source's request path on the wire: bearer tokens of any header-safe charset,
 * requests cut off mid-body, limits enforced while reading over mutual TLS, and error answers
 * that carry no internal error text. In-process sources, raw sockets where a client library
 * would hide what is tested.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { testEvent } from "./helpers/events.ts";
import { createTestPki, type TestPki } from "./helpers/tls.ts";
import { ROOT } from "./helpers/daemon.ts";
import { waitFor } from "./helpers/wait.ts";
import { withWebhookSource } from "./helpers/webhook_source.ts";
import { concatBytes } from "../pipeline/core/bytes.ts";
import { needs } from "./helpers/external.ts";

const json = { "content-type": "application/json" };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function eventListBody(n: number): string {
  const ts = "2026-01-01T00:00:00.000000Z";
  const items = Array.from(
    { length: n },
    (_, i) => testEvent(`id-${i}`, { requestReceivedTimestamp: ts, stageTimestamp: ts }),
  );
  return JSON.stringify({ kind: "EventList", apiVersion: "audit.k8s.io/v1", items });
}

/** Everything the peer sends until it closes (or `ms` pass), as text. */
async function readAll(conn: Deno.Conn, ms = 10_000): Promise<string> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(16 * 1024);
  const timer = setTimeout(() => conn.close(), ms);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      parts.push(buf.slice(0, n));
      // One answer is all a test waits for; the server may keep the connection open.
      const text = decoder.decode(concatBytes(parts));
      const head = text.indexOf("\r\n\r\n");
      if (head >= 0) {
        const length = /content-length:\s*(\d+)/i.exec(text.slice(0, head));
        if (length && text.length >= head + 4 + Number(length[1])) return text;
      }
    }
  } catch {
    // The peer reset the connection, or the timer closed it.
  } finally {
    clearTimeout(timer);
  }
  return decoder.decode(concatBytes(parts));
}

function statusOf(answer: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
}

function bodyOf(answer: string): string {
  return answer.slice(answer.indexOf("\r\n\r\n") + 4);
}

Deno.test("webhook source accepts a bearer token outside RFC 6750's charset, as kube-apiserver sends whatever its kubeconfig holds", async () => {
  for (const token of ["p@ss:w0rd!", "ключ-🔑", 'a"b,c;d=e(f)g']) {
    await withWebhookSource({}, { token }, async ({ port, stats }) => {
      const url = `http://127.0.0.1:${port}/audit`;
      // Headers are byte strings: a UTF-8 token arrives as its bytes, one char each.
      const sent = String.fromCharCode(...encoder.encode(token));
      let res = await fetch(url, {
        method: "POST",
        headers: { ...json, authorization: `Bearer ${sent}` },
        body: eventListBody(1),
      });
      assertEquals(res.status, 200, `${token}: ${await res.clone().text()}`);
      assertEquals(await res.json(), { accepted: 1, rejected: 0 });
      for (const wrong of [`Bearer ${sent}x`, `Bearer ${sent.slice(1)}`, `Basic ${sent}`, ""]) {
        res = await fetch(url, {
          method: "POST",
          headers: { ...json, authorization: wrong },
          body: "[]",
        });
        assertEquals(res.status, 401, `${token} / ${wrong}`);
        await res.body?.cancel();
      }
      assertEquals(stats.rejected.get("unauthorized"), 4);
    });
  }
});

Deno.test("webhook source answers 400 to a request cut off mid-body, counts it as incomplete_body and logs it at most once an interval", async () => {
  const body = encoder.encode(eventListBody(50));
  await withWebhookSource({}, {}, async ({ port, stats, chunks, logs }) => {
    const answers: string[] = [];
    for (let i = 0; i < 5; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(encoder.encode(
        `POST /audit HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
          `content-length: ${body.length}\r\n\r\n`,
      ));
      await conn.write(body.subarray(0, body.length >> 1));
      // The client stops sending but still listens: the answer can reach it.
      await conn.closeWrite();
      answers.push(await readAll(conn));
      conn.close();
    }
    for (const a of answers) {
      assertEquals(statusOf(a), 400, a);
      assertEquals(JSON.parse(bodyOf(a)).error, "request body ended before its Content-Length");
    }
    await waitFor("5 incomplete_body", () => stats.rejected.get("incomplete_body") === 5);
    assertEquals(chunks.length, 0);
    const lines = logs.filter((r) => String(r.msg).includes("body"));
    // Five in a row within the interval: the first is logged, the rest are counted behind it.
    assert(lines.length >= 1 && lines.length <= 2, JSON.stringify(lines));
    assertEquals(lines[0].reason, "incomplete_body");
    assert(!logs.some((r) => r.level === "error"), JSON.stringify(logs));
  });
});

Deno.test("webhook source counts a request whose client went away mid-body, without an answer to send", async () => {
  const body = encoder.encode(eventListBody(50));
  await withWebhookSource({}, {}, async ({ port, stats }) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode(
      `POST /audit HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
        `content-length: ${body.length}\r\n\r\n`,
    ));
    await conn.write(body.subarray(0, body.length >> 1));
    conn.close();
    await waitFor("incomplete_body", () => stats.rejected.get("incomplete_body") === 1);
  });
});

Deno.test("webhook source never echoes internal error text: a broken gzip body gets a generic 400", async () => {
  await withWebhookSource({}, {}, async ({ port, stats }) => {
    const res = await fetch(`http://127.0.0.1:${port}/audit`, {
      method: "POST",
      headers: { ...json, "content-encoding": "gzip" },
      body: "this is not gzip at all",
    });
    assertEquals(res.status, 400);
    assertEquals(await res.json(), { error: "request body is not valid gzip" });
    assertEquals(stats.rejected.get("invalid_gzip"), 1);
  });
});

/** A TLS connection presenting the test client certificate. */
function connectMtls(pki: TestPki, port: number): Promise<Deno.TlsConn> {
  return Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [pki.caCert],
    cert: pki.clientCert,
    key: pki.clientKey,
  });
}

Deno.test(
  needs(
    "openssl",
    "mTLS: maxInFlight is checked before a body is read, maxBodyBytes while it is read, and a body cut off is counted",
  ),
  async () => {
    const pki = await createTestPki();
    let release!: () => void;
    const held = new Promise<void>((r) => release = r);
    try {
      await withWebhookSource(
        { maxInFlight: 1, maxBodyBytes: 64 * 1024 },
        {
          tls: { cert: pki.serverCert, key: pki.serverKey, clientCA: pki.caCert },
          onChunk: async (c) => (await held, c.ack.release()),
        },
        async ({ port, stats, chunks }) => {
          try {
            const body = encoder.encode(eventListBody(1));
            const first = await connectMtls(pki, port);
            await first.write(encoder.encode(
              `POST /audit HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
                `content-length: ${body.length}\r\n\r\n`,
            ));
            await first.write(body);
            await waitFor("the first request's events", () => chunks.length === 1);

            // Headers only: a body that has not arrived must not hold up the 429.
            const second = await connectMtls(pki, port);
            await second.write(encoder.encode(
              `POST /audit HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
                `content-length: 1000\r\n\r\n`,
            ));
            const busy = await readAll(second);
            assertEquals(statusOf(busy), 429, busy);
            second.close();
            release();
            assertEquals(statusOf(await readAll(first)), 200);
            first.close();

            // Chunked, without a Content-Length: the limit is met while counting what arrives.
            const third = await connectMtls(pki, port);
            await third.write(encoder.encode(
              `POST /audit HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
                `transfer-encoding: chunked\r\n\r\n`,
            ));
            const piece = new Uint8Array(16 * 1024).fill(0x20);
            const frame = concatBytes([
              encoder.encode(`${piece.length.toString(16)}\r\n`),
              piece,
              encoder.encode("\r\n"),
            ]);
            const answer = readAll(third);
            let sent = 0;
            try {
              // Never finished: only the limit can end this request.
              for (; sent < 1 << 20; sent += piece.length) await third.write(frame);
            } catch {
              // The daemon answered and closed: writes fail from then on.
            }
            const tooLarge = await answer;
            assertEquals(statusOf(tooLarge), 413, tooLarge);
            assertEquals(JSON.parse(bodyOf(tooLarge)), {
              error: "body exceeds maxBodyBytes 65536",
            });
            third.close();
            assertEquals(stats.rejected.get("overload"), 1);
            assertEquals(stats.rejected.get("too_large"), 1);

            // Cut off mid-body: counted, whether or not an answer can still reach the client.
            const fourth = await connectMtls(pki, port);
            await fourth.write(encoder.encode(
              `POST /audit HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
                `content-length: ${body.length}\r\n\r\n`,
            ));
            await fourth.write(body.subarray(0, body.length >> 1));
            fourth.close();
            await waitFor("incomplete_body", () => stats.rejected.get("incomplete_body") === 1);
          } finally {
            // Stopping waits for the held request.
            release();
          }
        },
      );
    } finally {
      release();
      await pki.cleanup();
    }
  },
);

/** `auditpipe --check` on a webhook source with `auth`, and the token file if any. */
async function check(auth: string, tokenFile?: string): Promise<{ code: number; stderr: string }> {
  const dir = await Deno.makeTempDir();
  if (tokenFile !== undefined) await Deno.writeTextFile(`${dir}/token`, tokenFile);
  await Deno.writeTextFile(
    `${dir}/pipeline.yaml`,
    `sources:\n  - type: webhook\n    auth: ${auth}\nsinks:\n  - type: stdout\n`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "--config", `${dir}/pipeline.yaml`, "--check"],
    cwd: dir,
    env: { NO_COLOR: "1" },
  }).output();
  await Deno.remove(dir, { recursive: true });
  return { code: out.code, stderr: decoder.decode(out.stderr) };
}

Deno.test("--check accepts a token of any header-safe charset and refuses one with whitespace or a control character", async () => {
  let r = await check(`{bearerToken: "p@ss:w0rd!"}`);
  assertEquals(r.code, 0, r.stderr);
  // A token file's surrounding whitespace (its final newline) is not part of the token.
  r = await check(`{bearerTokenFile: token}`, "ключ:🔑\n");
  assertEquals(r.code, 0, r.stderr);
  r = await check(`{bearerToken: "two words"}`);
  assertEquals(r.code, 2);
  assert(
    r.stderr.includes(
      "pipeline.yaml:3:12 sources[0].auth.bearerToken: token contains a space (U+0020) at character 4: it cannot be sent in an Authorization header",
    ),
    r.stderr,
  );
  r = await check(`{bearerTokenFile: token}`, "abc\u0007def\n");
  assertEquals(r.code, 2);
  assert(
    r.stderr.includes(
      "sources[0].auth.bearerTokenFile: token contains a control character (U+0007) at character 4",
    ),
    r.stderr,
  );
});
