import { assert, assertEquals } from "./helpers/assert.ts";
import { CompactEnvelope, compactEnvelope } from "../pipeline/stages/compact.ts";
import { decodeBodyBytes, decodeLine } from "../pipeline/decode.ts";
import { itemBytes, jsonBytes } from "../pipeline/encode.ts";
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
