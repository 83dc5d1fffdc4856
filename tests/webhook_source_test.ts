import { assert, assertEquals } from "./helpers/assert.ts";
import { eventList, realEvents } from "./helpers/daemon.ts";
import { waitFor } from "./helpers/wait.ts";
import { withWebhookSource } from "./helpers/webhook_source.ts";
import type { WebhookSourceConfig } from "../pipeline/ingest/webhook.ts";
import type { SourceStats } from "../pipeline/core/stats.ts";
import type { Chunk } from "../pipeline/core/envelope.ts";

/** Runs `fn` against a webhook source with `cfg` (see helpers/webhook_source.ts). */
function withSource(
  cfg: Partial<WebhookSourceConfig>,
  opts: { token?: string; onChunk?: (c: Chunk) => Promise<void> | void },
  fn: (url: string, chunks: Chunk[], stats: SourceStats) => Promise<void>,
): Promise<void> {
  return withWebhookSource(cfg, opts, (s) => fn(s.url, s.chunks, s.stats));
}

const json = { "content-type": "application/json" };

Deno.test("webhook source accepts an EventList and answers with counts once the ack settles", async () => {
  const events = await realEvents(20);
  await withSource({}, {}, async (url, chunks) => {
    const res = await fetch(url, { method: "POST", headers: json, body: eventList(events) });
    assertEquals(res.status, 200);
    assertEquals(await res.json(), { accepted: events.length, rejected: 0 });
    assertEquals(chunks.length, 1);
    assertEquals(chunks[0].items.length, events.length);
  });
});

Deno.test("webhook source reads a body with a Content-Length into one buffer its events are cut from, and a streamed body without one", async () => {
  const events = await realEvents(20);
  const body = new TextEncoder().encode(eventList(events));
  await withSource({}, {}, async (url, chunks) => {
    let res = await fetch(url, { method: "POST", headers: json, body });
    assertEquals(await res.json(), { accepted: events.length, rejected: 0 });
    const buffers = new Set(chunks[0].items.map((e) => e.item!.buffer));
    assertEquals(buffers.size, 1);
    assertEquals([...buffers][0].byteLength, body.byteLength);
    // A stream body goes out chunked, without a Content-Length.
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < body.length; i += 4096) c.enqueue(body.slice(i, i + 4096));
        c.close();
      },
    });
    res = await fetch(url, { method: "POST", headers: json, body: stream });
    assertEquals(await res.json(), { accepted: events.length, rejected: 0 });
    assertEquals(chunks[1].items.map((e) => e.event), chunks[0].items.map((e) => e.event));
  });
});

Deno.test("webhook source accepts a single Event and a JSON array of events", async () => {
  const events = await realEvents(3);
  await withSource({}, {}, async (url) => {
    let res = await fetch(url, { method: "POST", headers: json, body: JSON.stringify(events[0]) });
    assertEquals(await res.json(), { accepted: 1, rejected: 0 });
    res = await fetch(url, { method: "POST", headers: json, body: JSON.stringify(events) });
    assertEquals(await res.json(), { accepted: 3, rejected: 0 });
  });
});

Deno.test("webhook source counts invalid items, writes them to the dead-letter file and keeps the valid ones", async () => {
  const dir = await Deno.makeTempDir();
  const events = await realEvents(2);
  const body = JSON.stringify({
    kind: "EventList",
    items: [events[0], { auditID: "x", level: "Loud" }, events[1]],
  });
  await withSource({ deadLetterFile: `${dir}/dead.jsonl` }, {}, async (url, chunks, stats) => {
    const res = await fetch(url, { method: "POST", headers: json, body });
    assertEquals(await res.json(), { accepted: 2, rejected: 1 });
    assertEquals(chunks[0].items.length, 2);
    assertEquals(stats.rejected.get("invalid_event"), 1);
  });
  const dead = (await Deno.readTextFile(`${dir}/dead.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assertEquals(dead.length, 1);
  assertEquals(dead[0].index, 1);
  assert(String(dead[0].reason).includes("level"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("webhook source answers 400 for a body that is not JSON or not an event list", async () => {
  await withSource({}, {}, async (url) => {
    let res = await fetch(url, { method: "POST", headers: json, body: "{not json" });
    assertEquals(res.status, 400);
    assert((await res.json()).error.includes("not JSON"));
    res = await fetch(url, {
      method: "POST",
      headers: json,
      body: '{"kind":"PodList","items":[]}',
    });
    assertEquals(res.status, 400);
    await res.body?.cancel();
  });
});

Deno.test("webhook source passes on the events before a list turns out not to be JSON, and answers 400 with their count", async () => {
  const events = await realEvents(200);
  const items = events.map(({ kind: _k, apiVersion: _v, level, ...rest }) => ({ level, ...rest }));
  const good = JSON.stringify({ kind: "EventList", items });
  // Broken near the end: the header and the first pieces parse.
  const at = good.lastIndexOf('{"level"');
  const body = good.slice(0, at) + '{"level":,' + good.slice(at + 8);
  await withSource({}, {}, async (url, chunks) => {
    const res = await fetch(url, { method: "POST", headers: json, body });
    assertEquals(res.status, 400);
    const answer = await res.json();
    assert(answer.error.includes("not JSON"), answer.error);
    const passed = chunks.reduce((n, c) => n + c.items.length, 0);
    assert(passed > 0 && passed < items.length, `${passed}`);
    assertEquals(answer.accepted, passed);
  });
});

Deno.test("webhook source answers 413 above maxBodyBytes, also after gzip", async () => {
  await withSource({ maxBodyBytes: 1000 }, {}, async (url) => {
    const big = JSON.stringify({ kind: "EventList", items: [], pad: "x".repeat(2000) });
    let res = await fetch(url, { method: "POST", headers: json, body: big });
    assertEquals(res.status, 413);
    await res.body?.cancel();
    const gz = await new Response(
      new Blob([big]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer();
    assert(gz.byteLength < 1000);
    res = await fetch(url, {
      method: "POST",
      headers: { ...json, "content-encoding": "gzip" },
      body: gz,
    });
    assertEquals(res.status, 413);
    await res.body?.cancel();
  });
});

Deno.test("webhook source accepts gzip bodies", async () => {
  const events = await realEvents(5);
  await withSource({}, {}, async (url) => {
    const gz = await new Response(
      new Blob([eventList(events)]).stream().pipeThrough(new CompressionStream("gzip")),
    )
      .arrayBuffer();
    const res = await fetch(url, {
      method: "POST",
      headers: { ...json, "content-encoding": "gzip" },
      body: gz,
    });
    assertEquals(await res.json(), { accepted: 5, rejected: 0 });
  });
});

Deno.test("webhook source answers 415 for a non-JSON content type and 405 for other methods", async () => {
  await withSource({}, {}, async (url) => {
    let res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "{}",
    });
    assertEquals(res.status, 415);
    await res.body?.cancel();
    res = await fetch(url, { method: "GET" });
    assertEquals(res.status, 405);
    assertEquals(res.headers.get("allow"), "POST");
    await res.body?.cancel();
  });
});

Deno.test("webhook source answers 401 for a missing or wrong bearer token and 200 for the right one", async () => {
  await withSource({}, { token: "s3cret" }, async (url) => {
    let res = await fetch(url, { method: "POST", headers: json, body: "[]" });
    assertEquals(res.status, 401);
    await res.body?.cancel();
    res = await fetch(url, {
      method: "POST",
      headers: { ...json, authorization: "Bearer nope" },
      body: "[]",
    });
    assertEquals(res.status, 401);
    await res.body?.cancel();
    res = await fetch(url, {
      method: "POST",
      headers: { ...json, authorization: "Bearer s3cret" },
      body: "[]",
    });
    assertEquals(res.status, 200);
    await res.body?.cancel();
  });
});

Deno.test("webhook source answers 503 when a blocking-strict sink fails the ack", async () => {
  const events = await realEvents(2);
  await withSource({}, { onChunk: (c) => c.ack.fail(new Error("disk full")) }, async (url) => {
    const res = await fetch(url, { method: "POST", headers: json, body: eventList(events) });
    assertEquals(res.status, 503);
    assertEquals(res.headers.get("retry-after"), "1");
    // The sink's error is the daemon's to log, not the client's to read.
    assertEquals(await res.json(), {
      error: "not delivered: a blocking-strict sink failed; see auditpipe's log",
    });
  });
});

Deno.test("webhook source answers 429 with Retry-After beyond maxInFlight", async () => {
  const events = await realEvents(1);
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  await withSource(
    { maxInFlight: 2 },
    { onChunk: async (c) => (await held, c.ack.release()) },
    async (url, chunks) => {
      const slow = [1, 2].map(() =>
        fetch(url, { method: "POST", headers: json, body: eventList(events) })
      );
      await waitFor("two requests held by the sink", () => chunks.length >= 2);
      const res = await fetch(url, { method: "POST", headers: json, body: eventList(events) });
      assertEquals(res.status, 429);
      assertEquals(res.headers.get("retry-after"), "1");
      await res.body?.cancel();
      release();
      for (const r of await Promise.all(slow)) assertEquals(r.status, 200), await r.body?.cancel();
    },
  );
});
