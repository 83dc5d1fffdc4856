import { assert, assertEquals } from "./helpers/assert.ts";
import { BodyParts, decodeBodyBytes } from "../pipeline/body_parts.ts";
import { DecodeError } from "../pipeline/core/decode.ts";
import type { Decoded } from "../pipeline/core/decode.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function event(i: number, extra: Record<string, unknown> = {}) {
  return {
    level: "Metadata",
    auditID: `id-${i}`,
    stage: "ResponseComplete",
    requestURI: "/api/v1/pods",
    verb: "list",
    user: { username: "u" },
    ...extra,
  };
}

function all(parts: BodyParts): Decoded[] {
  const out: Decoded[] = [];
  for (let p; (p = parts.next()) !== null;) out.push(p);
  return out;
}

const list = (items: unknown[]) => enc.encode(JSON.stringify({ kind: "EventList", items }));

Deno.test("a compact EventList comes out in pieces of partSize, in order, each event with its bytes", () => {
  const items = Array.from({ length: 10 }, (_, i) => event(i));
  const parts = all(new BodyParts(list(items), 4));
  assertEquals(parts.map((p) => p.envelopes.length), [4, 4, 2]);
  const envs = parts.flatMap((p) => p.envelopes);
  assertEquals(envs.map((e) => e.event.auditID), items.map((e) => e.auditID));
  assertEquals(envs.map((e) => dec.decode(e.item!)), items.map((e) => JSON.stringify(e)));
});

Deno.test("each piece of a compact list has a buffer of its own, so a sink holding a few events never pins the body", () => {
  const items = Array.from({ length: 10 }, (_, i) => event(i));
  const body = list(items);
  const parts = new BodyParts(body, 4);
  const pieces = all(parts);
  for (const p of pieces) {
    const buffers = new Set(p.envelopes.map((e) => e.item!.buffer));
    assertEquals(buffers.size, 1);
    const [buffer] = buffers;
    assert(buffer !== body.buffer);
    const size = p.envelopes.reduce((n, e) => n + e.item!.byteLength, 0) + p.envelopes.length - 1;
    assertEquals(buffer.byteLength, size, "the items and the commas between them");
  }
  assert(parts.copied);
  assert(!allCopied(enc.encode(JSON.stringify(items))), "a plain array is cut from the body");
});

function allCopied(bytes: Uint8Array): boolean {
  const parts = new BodyParts(bytes, 4);
  all(parts);
  return parts.copied;
}

Deno.test("a split inside an event makes the rest of the list go the slow way, still in order and with bytes", () => {
  const tricky = event(5, { requestObject: { sinks: [{ level: "debug" }, { level: "info" }] } });
  const items = Array.from({ length: 10 }, (_, i) => i === 5 ? tricky : event(i));
  const body = list(items);
  assert(dec.decode(body).includes('},{"level":"info"'));
  const parts = all(new BodyParts(body, 4));
  const envs = parts.flatMap((p) => p.envelopes);
  assertEquals(envs.map((e) => e.event), items);
  assertEquals(envs.map((e) => dec.decode(e.item!)), items.map((e) => JSON.stringify(e)));
  assert(parts.every((p) => p.envelopes.length <= 4));
});

Deno.test("invalid items are rejected with their index in the whole list", () => {
  const items: unknown[] = Array.from({ length: 9 }, (_, i) => event(i));
  items[6] = { level: "Metadata", auditID: 7 };
  const parts = all(new BodyParts(list(items), 4));
  assertEquals(parts.flatMap((p) => p.rejected.map((r) => r.index)), [6]);
  assertEquals(parts.flatMap((p) => p.envelopes).length, 8);
});

Deno.test("a list whose rest is not JSON throws after the pieces before it were handed out", () => {
  const items = Array.from({ length: 8 }, (_, i) => event(i));
  const good = JSON.stringify({ kind: "EventList", items });
  // An item broken in the second half: the header and the first pieces still parse.
  const broken = good.replace('"auditID":"id-6"', '"auditID":"id-6",,');
  const parts = new BodyParts(enc.encode(broken), 4);
  assertEquals(parts.next()!.envelopes.length, 4);
  let err: unknown;
  try {
    parts.next();
  } catch (e) {
    err = e;
  }
  assert(err instanceof DecodeError, String(err));
});

Deno.test("a body that is not a compact list is decoded whole and handed out in pieces", () => {
  const items = Array.from({ length: 6 }, (_, i) => event(i));
  const pretty = enc.encode(JSON.stringify({ kind: "EventList", items }, null, 2));
  const parts = all(new BodyParts(pretty, 4));
  assertEquals(parts.map((p) => p.envelopes.length), [4, 2]);
  const array = all(new BodyParts(enc.encode(JSON.stringify(items)), 4));
  assertEquals(array.flatMap((p) => p.envelopes).map((e) => e.event), items);
  const single = decodeBodyBytes(enc.encode(JSON.stringify({ kind: "Event", ...items[0] })));
  assertEquals(single.envelopes.length, 1);
});

Deno.test("a body that is not an event container fails before any piece", () => {
  for (const body of ["{", '{"kind":"Pod"}', '{"kind":"EventList","apiVersion":"v9","items":[]}']) {
    let err: unknown;
    try {
      new BodyParts(enc.encode(body));
    } catch (e) {
      err = e;
    }
    assert(err instanceof DecodeError, body);
  }
});
