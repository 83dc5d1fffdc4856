import { assert, assertEquals } from "./helpers/assert.ts";
import { compactItemRanges, itemRanges } from "../pipeline/core/scan.ts";
import { decodeBodyBytes } from "../pipeline/body_parts.ts";
import { encodeEvent, itemBytes, jsonBytes } from "../pipeline/core/encode.ts";
import { realEvents } from "./helpers/daemon.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function slices(text: string): string[] | null {
  const b = enc.encode(text);
  return itemRanges(b)?.map((r) => dec.decode(b.subarray(r.start, r.end))) ?? null;
}

Deno.test("item ranges: the items of an EventList, whatever comes before them", () => {
  assertEquals(
    slices(
      '{"kind":"EventList","metadata":{"items":[1]},"x":"items","items":[{"a":"]}"},{"b":{"items":[{}]}}]}',
    ),
    ['{"a":"]}"}', '{"b":{"items":[{}]}}'],
  );
});

Deno.test("item ranges: a root list, escaped quotes and backslashes in strings", () => {
  assertEquals(slices(String.raw`[{"a":"q\"}"},{"b":"\\"},{"c":"\\\"{"}]`), [
    String.raw`{"a":"q\"}"}`,
    String.raw`{"b":"\\"}`,
    String.raw`{"c":"\\\"{"}`,
  ]);
});

Deno.test("item ranges: multi-line items are marked, a single event has none", () => {
  const b = enc.encode('{"items":[\n  {"a":\n 1},{"b":2}\n]}');
  assertEquals(itemRanges(b)?.map((r) => r.multiline), [true, false]);
  assertEquals(slices('{"level":"None"}'), null);
  assertEquals(slices('{"items":[]}'), []);
});

Deno.test("EventList items keep their original bytes as top-level documents", async () => {
  const events = await realEvents(50);
  const items = events.map(({ kind: _k, apiVersion: _v, ...rest }) => rest);
  const body = JSON.stringify({ kind: "EventList", apiVersion: "audit.k8s.io/v1", items });
  const { envelopes } = decodeBodyBytes(enc.encode(body));
  assertEquals(envelopes.length, 50);
  for (let i = 0; i < 50; i++) {
    const env = envelopes[i];
    assert(env.item !== undefined);
    assertEquals(dec.decode(env.item), JSON.stringify(items[i]));
    assertEquals(
      dec.decode(jsonBytes(env)),
      `{"kind":"Event","apiVersion":"audit.k8s.io/v1",${JSON.stringify(items[i]).slice(1)}`,
    );
    assertEquals(JSON.parse(dec.decode(jsonBytes(env))), {
      kind: "Event",
      apiVersion: "audit.k8s.io/v1",
      ...items[i],
    });
    assertEquals(dec.decode(itemBytes(env)), JSON.stringify(items[i]));
  }
});

Deno.test("an item with its own apiVersion or spread over lines is serialized, not passed through", () => {
  const body =
    '{"kind":"EventList","items":[{"apiVersion":"audit.k8s.io/v1beta1","level":"None","auditID":"a","stage":"Panic"},\n{"level":"None",\n"auditID":"b","stage":"Panic"}]}';
  const { envelopes } = decodeBodyBytes(enc.encode(body));
  assertEquals(envelopes.map((e) => e.item), [undefined, undefined]);
  assertEquals(
    dec.decode(jsonBytes(envelopes[1])),
    '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"None","auditID":"b","stage":"Panic","verb":"","requestURI":"","user":{}}',
  );
});

Deno.test("kube-apiserver's own bytes pass through: Go escapes survive, nothing is re-serialized", () => {
  const item =
    '{"level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/x?a=1\\u0026b=2","verb":"get","user":{}}';
  const { envelopes } = decodeBodyBytes(enc.encode(`{"kind":"EventList","items":[${item}]}`));
  assertEquals(
    dec.decode(jsonBytes(envelopes[0])),
    `{"kind":"Event","apiVersion":"audit.k8s.io/v1",${item.slice(1)}`,
  );
  // Serializing would have given the same bytes here, since Go escapes & as \u0026 too.
  assertEquals(encodeEvent(envelopes[0].event), dec.decode(jsonBytes(envelopes[0])));
});

Deno.test("a log line written from item bytes equals the serialized line, and its size is measured without copying", async () => {
  const { writeJson, jsonSize } = await import("../pipeline/core/encode.ts");
  const events = await realEvents(20);
  const items = events.map(({ kind: _k, apiVersion: _v, ...rest }) => rest);
  const { envelopes } = decodeBodyBytes(enc.encode(JSON.stringify({ kind: "EventList", items })));
  for (const env of envelopes) {
    const size = jsonSize(env);
    assertEquals(env.raw, undefined, "measuring did not build the top-level bytes");
    const out = new Uint8Array(size);
    assertEquals(writeJson(env, out, 0), size - 1);
    const line = dec.decode(out.subarray(0, size - 1));
    assertEquals(
      line,
      `{"kind":"Event","apiVersion":"audit.k8s.io/v1",${dec.decode(env.item!).slice(1)}`,
    );
    assertEquals(JSON.parse(line), JSON.parse(encodeEvent(env.event)));
  }
});

Deno.test("a compact EventList is split on item starts, and the result equals parsing it whole", async () => {
  const events = await realEvents(200);
  // As kube-apiserver writes them: level first (Go's field order), no type inside the list.
  const itemTexts = events.map(({ kind: _k, apiVersion: _v, level, ...rest }) =>
    JSON.stringify({ level, ...rest })
  );
  const items = itemTexts.map((t) => JSON.parse(t));
  const text = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${
    itemTexts.join(",")
  }]}\n`;
  const found = compactItemRanges(text);
  assert(found !== null);
  assertEquals(found.items.length, items.length);
  const { envelopes } = decodeBodyBytes(enc.encode(text));
  assertEquals(envelopes.map((e) => e.event), items);
  for (const [i, env] of envelopes.entries()) assertEquals(dec.decode(env.item!), itemTexts[i]);
});

Deno.test("a split candidate inside an event (a nested list whose objects start with level) is rejected, and the body decodes the slow way", () => {
  const tricky = {
    level: "RequestResponse",
    auditID: "a",
    stage: "ResponseComplete",
    requestURI: "/apis/x/v1/loggers",
    verb: "create",
    user: { username: "u" },
    requestObject: { spec: { sinks: [{ level: "debug" }, { level: "info", 'a},{"level":"': 1 }] } },
  };
  const plain = { ...tricky, auditID: "b", requestObject: undefined };
  const text = JSON.stringify({ kind: "EventList", items: [plain, tricky, plain] });
  assert(text.includes('},{"level":"info"'));
  const { envelopes, rejected } = decodeBodyBytes(enc.encode(text));
  assertEquals(rejected, []);
  assertEquals(envelopes.map((e) => e.event.auditID), ["b", "a", "b"]);
  assertEquals(JSON.parse(dec.decode(envelopes[1].item!)), tricky);
});

Deno.test("a compact EventList with non-ASCII text cuts each item's bytes at byte offsets", () => {
  const items = ["23.203µs", "日本", "emoji 🎉", "plain"].map((a, i) => ({
    level: "Metadata",
    auditID: `id-${i}`,
    stage: "ResponseComplete",
    requestURI: "/api",
    verb: "get",
    user: { username: a },
    annotations: { "apiserver.latency.k8s.io/total": a },
  }));
  const body = enc.encode(JSON.stringify({ kind: "EventList", items }));
  assert(compactItemRanges(dec.decode(body)) !== null);
  const { envelopes } = decodeBodyBytes(body);
  assertEquals(envelopes.map((e) => dec.decode(e.item!)), items.map((i) => JSON.stringify(i)));
});

Deno.test("bodies not in kube-apiserver's compact shape take the slow way and keep item bytes only on one line", async () => {
  const [event] = await realEvents(1);
  const { kind: _k, apiVersion: _v, ...item } = event;
  const cases = {
    "pretty-printed": JSON.stringify({ kind: "EventList", items: [item, item] }, null, 2),
    "items not last": `{"items":[${JSON.stringify(item)}],"kind":"EventList"}`,
  };
  assertEquals(compactItemRanges(cases["pretty-printed"]), null);
  assertEquals(compactItemRanges(cases["items not last"]), null);
  for (const [name, text] of Object.entries(cases)) {
    const { envelopes } = decodeBodyBytes(enc.encode(text));
    assert(envelopes.length >= 1, name);
    for (const env of envelopes) {
      if (env.item) assert(!dec.decode(env.item).includes("\n"), name);
      assertEquals(JSON.parse(dec.decode(itemBytes(env))).auditID, item.auditID, name);
    }
  }
});
