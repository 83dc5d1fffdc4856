import { assert, assertEquals } from "./helpers/assert.ts";
import { BodyError, readBody } from "../pipeline/ingest/body.ts";

const bytes = new TextEncoder().encode('{"kind":"EventList","items":[]}'.repeat(1000));

/** A plain (not byte) stream of `data` in `size`-byte chunks, as Deno hands a body that arrived whole. */
function chunked(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (let i = 0; i < data.length; i += size) c.enqueue(data.slice(i, i + size));
      c.close();
    },
  });
}

function post(body: BodyInit, headers: Record<string, string> = {}): Request {
  return new Request("http://127.0.0.1/audit", { method: "POST", body, headers });
}

Deno.test("a body with a Content-Length arriving in chunks is copied into one buffer of its size", async () => {
  const out = await readBody(
    post(chunked(bytes, 4096), { "content-length": `${bytes.length}` }),
    1 << 20,
  );
  assertEquals(out, bytes);
  assertEquals(out.buffer.byteLength, bytes.length);
});

Deno.test("a body without a Content-Length is read whole", async () => {
  assertEquals(await readBody(post(chunked(bytes, 1000)), 1 << 20), bytes);
});

Deno.test("a body shorter or longer than its Content-Length is a 400", async () => {
  for (const length of [bytes.length + 10, bytes.length - 10]) {
    const err = await readBody(
      post(chunked(bytes, 4096), { "content-length": `${length}` }),
      1 << 20,
    )
      .then(() => null, (e) => e);
    assert(err instanceof BodyError, String(err));
    assertEquals(err.status, 400);
  }
});

Deno.test("gzip bodies are decompressed within the limit, and a 413 beyond it", async () => {
  const gz = new Uint8Array(
    await new Response(new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer(),
  );
  assertEquals(await readBody(post(gz, { "content-encoding": "gzip" }), 1 << 20), bytes);
  const err = await readBody(post(gz, { "content-encoding": "gzip" }), 1000).then(
    () => null,
    (e) => e,
  );
  assert(err instanceof BodyError);
  assertEquals(err.status, 413);
  const bad = await readBody(post(bytes, { "content-encoding": "br" }), 1 << 20).then(
    () => null,
    (e) => e,
  );
  assertEquals(bad?.status, 415);
});

/** A stream that fails the test if more than `allowed` chunks are pulled from it. */
function endless(allowed: number): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let n = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (++n > allowed) throw new Error(`pulled ${n} chunks`);
      c.enqueue(new Uint8Array(64 * 1024).fill(0x20));
    },
  });
  return { stream, pulled: () => n };
}

Deno.test("a Content-Length above the limit is a 413 before any of the body is read", async () => {
  const { stream, pulled } = endless(1);
  const err = await readBody(
    post(stream, { "content-length": `${200 * 1024 * 1024}` }),
    1 << 20,
  ).then(() => null, (e) => e);
  assert(err instanceof BodyError, String(err));
  assertEquals([err.status, err.reason], [413, "too_large"]);
  // The stream's first pull may run when it is created; no more than that.
  assert(pulled() <= 1, `${pulled()}`);
});

Deno.test("a body without a Content-Length is a 413 as soon as the limit is passed, also gzipped", async () => {
  const plain = endless(17);
  let err = await readBody(post(plain.stream), 1 << 20).then(() => null, (e) => e);
  assert(err instanceof BodyError, String(err));
  assertEquals([err.status, err.reason], [413, "too_large"]);
  assert(plain.pulled() <= 17, `${plain.pulled()}`);
  // Gzipped: random bytes do not compress, so the limit is met on the way in.
  const random = new Uint8Array(2 << 20);
  for (let i = 0; i < random.length; i += 65536) {
    crypto.getRandomValues(random.subarray(i, i + 65536));
  }
  const gz = new Uint8Array(
    await new Response(new Blob([random]).stream().pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer(),
  );
  assert(gz.length > 1 << 20);
  err = await readBody(post(chunked(gz, 65536), { "content-encoding": "gzip" }), 1 << 20).then(
    () => null,
    (e) => e,
  );
  assert(err instanceof BodyError, String(err));
  assertEquals([err.status, err.reason], [413, "too_large"]);
});

Deno.test("a body whose connection fails mid-way is a 400 counted as incomplete_body, without the error's text", async () => {
  const withAndWithout: Record<string, string>[] = [{ "content-length": `${bytes.length}` }, {}];
  for (const headers of withAndWithout) {
    let sent = false;
    const broken = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent) throw new Error("connection reset by peer (os error 104)");
        sent = true;
        c.enqueue(bytes.slice(0, 100));
      },
    });
    const err = await readBody(post(broken, headers), 1 << 20).then(() => null, (e) => e);
    assert(err instanceof BodyError, String(err));
    assertEquals([err.status, err.reason], [400, "incomplete_body"]);
    assert(!err.message.includes("os error"), err.message);
  }
});
