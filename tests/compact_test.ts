import { assert, assertEquals } from "./helpers/assert.ts";
import {
  CompactEnvelope,
  compactEnvelope,
  compactEnvelopes,
  KEEP_VIEWS_AT,
} from "../pipeline/stages/compact.ts";
import { decodeLine } from "../pipeline/core/decode.ts";
import { decodeBodyBytes } from "../pipeline/body_parts.ts";
import { itemBytes, jsonBytes } from "../pipeline/core/encode.ts";
import { realEvents, realLines } from "./helpers/daemon.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("compaction keeps an EventList item's bytes, copied out of the request body, and parses on demand", async () => {
  const events = await realEvents(10);
  const items = events.map(({ kind: _k, apiVersion: _v, ...rest }) => rest);
  const body = enc.encode(JSON.stringify({ kind: "EventList", items }));
  const { envelopes } = decodeBodyBytes(body);
  for (const [i, env] of envelopes.entries()) {
    const c = compactEnvelope(env);
    assert(c instanceof CompactEnvelope);
    assert(c.item !== undefined && c.item.buffer !== body.buffer, "copied out of the body");
    assertEquals(dec.decode(itemBytes(c)), JSON.stringify(items[i]));
    assertEquals(c.event, env.event);
  }
});

Deno.test("compaction keeps a log line's bytes, and serializes an event the policy changed", async () => {
  const [line] = await realLines(1);
  const { envelopes: [env] } = decodeLine(enc.encode(line));
  const c = compactEnvelope(env);
  assertEquals(dec.decode(jsonBytes(c)), line);
  const changed = { event: { ...env.event, level: "Metadata" as const } };
  const c2 = compactEnvelope(changed);
  assertEquals(JSON.parse(dec.decode(jsonBytes(c2))), {
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    ...changed.event,
  });
  assertEquals(compactEnvelope(c2), c2);
});

Deno.test("compaction keeps a chunk's events as views into the body when the chunk keeps most of it", async () => {
  const events = await realEvents(20);
  const items = events.map(({ kind: _k, apiVersion: _v, ...rest }) => rest);
  const body = enc.encode(JSON.stringify({ kind: "EventList", items }));
  const { envelopes } = decodeBodyBytes(body);
  const compacted = compactEnvelopes(envelopes);
  for (const [i, c] of compacted.entries()) {
    assert(c instanceof CompactEnvelope);
    assert(c.item !== undefined && c.item.buffer === body.buffer, "a view, not a copy");
    assertEquals(dec.decode(itemBytes(c)), JSON.stringify(items[i]));
  }
});

Deno.test("compaction copies the few events a chunk keeps of a body into one buffer of their size", async () => {
  const events = await realEvents(20);
  const items = events.map(({ kind: _k, apiVersion: _v, ...rest }) => rest);
  const body = enc.encode(JSON.stringify({ kind: "EventList", items }));
  const { envelopes } = decodeBodyBytes(body);
  const few = envelopes.filter((_, i) => i % 4 === 0);
  const size = few.reduce((n, e) => n + e.item!.byteLength, 0);
  assert(size < KEEP_VIEWS_AT * body.byteLength);
  const compacted = compactEnvelopes(few);
  const buffers = new Set(compacted.map((c) => c.item!.buffer));
  assertEquals(buffers.size, 1, "one allocation for the chunk");
  assertEquals([...buffers][0].byteLength, size);
  for (const [i, c] of compacted.entries()) {
    assertEquals(dec.decode(itemBytes(c)), JSON.stringify(items[i * 4]));
    assertEquals(c.event, few[i].event);
  }
});
