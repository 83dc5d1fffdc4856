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
