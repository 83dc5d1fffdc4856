/**
 * The fast decode path (`pipeline/core/decode_fast.ts`, `json_validate.ts`): whatever it
 * decodes is what `JSON.parse` of the whole line gives, key for key and in order, with the
 * same policy decision and the same output bytes; whatever `JSON.parse` rejects it rejects.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parses } from "./helpers/json.ts";
import { BodyParts } from "../pipeline/body_parts.ts";
import {
  decodeLine,
  decodeLineWhole,
  decodeWholeBody,
  type Rejected,
} from "../pipeline/core/decode.ts";
import { asEvent } from "../pipeline/core/event.ts";
import {
  decodeLazyObject,
  findBodyKey,
  hasValue,
  unparsedBody,
} from "../pipeline/core/decode_fast.ts";
import { isJson, jsonValueEnd } from "../pipeline/core/json_validate.ts";
import { encodeEvent, jsonBytes } from "../pipeline/core/encode.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import { applyPolicy, compilePolicy, evaluate, parsePolicy } from "../policy/mod.ts";
import { clusterEvent } from "./data/cluster.ts";
import { auditLogLines, corpusFiles } from "./data/corpus.ts";
import { Rand } from "./data/rand.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const PREFIX = '{"kind":"Event","apiVersion":"audit.k8s.io/v1",';

const policy20 = compilePolicy(
  parsePolicy(
    await Deno.readTextFile(new URL("../bench/policy20.yaml", import.meta.url)),
    "policy20.yaml",
  ).policy,
);

/** Every own key and value, in order, through getters: what serializing sees. */
function shape(event: unknown): string {
  return JSON.stringify(event);
}

/** What a log sink writes for `env` after the policy: the line, or the drop reason. */
function written(env: Envelope): string {
  const applied = applyPolicy(evaluate(policy20, env.event), env.event);
  if (typeof applied === "string") return applied;
  return applied === env.event ? dec.decode(jsonBytes(env)) : encodeEvent(applied);
}

/** Decodes `line` both ways and asserts the same outcome: error, events, decision, output. */
function assertSameAsWhole(line: string | Uint8Array, what = String(line).slice(0, 120)): void {
  const bytes = typeof line === "string" ? enc.encode(line) : line;
  let whole: ReturnType<typeof decodeLineWhole> | Error;
  let fast: ReturnType<typeof decodeLine> | Error;
  try {
    whole = decodeLineWhole(bytes);
  } catch (err) {
    whole = err as Error;
  }
  try {
    fast = decodeLine(bytes);
  } catch (err) {
    fast = err as Error;
  }
  if (whole instanceof Error || fast instanceof Error) {
    assert.ok(whole instanceof Error && fast instanceof Error, `${what}: one path failed only`);
    assert.equal(fast.message, whole.message, what);
    return;
  }
  assert.equal(fast.envelopes.length, whole.envelopes.length, what);
  assert.deepEqual(fast.rejected, whole.rejected, what);
  for (let i = 0; i < whole.envelopes.length; i++) {
    const f: Envelope = fast.envelopes[i];
    const w: Envelope = whole.envelopes[i];
    assert.deepEqual(f.raw, w.raw, what);
    // The decision and output first, so the bodies stay unparsed unless the policy reads them.
    assert.equal(written(f), written(w), what);
    assert.equal(shape(f.event), shape(w.event), what);
  }
}

Deno.test("the validator accepts exactly what JSON.parse accepts", () => {
  const cases = [
    "{}",
    "[]",
    " {} ",
    '{"a":1}',
    '{"a" : [ 1 , 2 ] }',
    '{"a":1,}',
    '{,"a":1}',
    '{"a":1 "b":2}',
    '{"a"}',
    '{"a":}',
    "[1,]",
    "[,1]",
    '["a\\u00e9\\n\\/"]',
    '["\\u00g0"]',
    '["\\x41"]',
    '["\\u12"]',
    '["a\tb"]',
    '["a\u0001b"]',
    '["a\u007fb"]',
    '"unterminated',
    '"ends in a backslash\\',
    "0",
    "-0",
    "01",
    "-",
    "1.",
    ".5",
    "1.5e",
    "1.5e+",
    "1.5E-7",
    "1e5",
    "-12.34e+56",
    "+1",
    "true",
    "tru",
    "truex",
    "false",
    "null",
    "nul",
    "NaN",
    "Infinity",
    '{"a":true}',
    '{"a":tru}',
    '{"a":null}x',
    "[1]]",
    "[[1]",
    "{]",
    "[}",
    '{"a":{"b":{"c":[]}}}',
    "\u00a0{}",
    '{"é":"ü"}',
    "",
    " ",
  ];
  for (const c of cases) assert.equal(isJson(enc.encode(c)), parses(c), JSON.stringify(c));
});

Deno.test("the validator handles nesting deeper than any stack: 100,000 levels", () => {
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  assert.equal(isJson(enc.encode(deep)), parses(deep));
  const objects = '{"a":'.repeat(50_000) + "1" + "}".repeat(50_000);
  assert.equal(isJson(enc.encode(objects)), parses(objects));
  assert.equal(isJson(enc.encode(objects.slice(0, -1))), false);
});

Deno.test("the validator agrees with JSON.parse on every cut and on corrupted bytes of real events", () => {
  const r = new Rand(7);
  const lines = [
    ...auditLogLines(20),
    ...Array.from(
      { length: 20 },
      (_, i) => clusterEvent(r, Date.UTC(2024, 4, 14), i % 2 === 0).line,
    ),
  ];
  const junk = ['"', "\\", "{", "}", "[", "]", ",", ":", "x", "\u0001", " ", "0", "-", "e"];
  for (const line of lines) {
    for (let k = 0; k < 40; k++) {
      const at = r.range(0, line.length);
      const cut = line.slice(0, at);
      assert.equal(isJson(enc.encode(cut)), parses(cut), cut.slice(-60));
      const bad = line.slice(0, at) + junk[r.range(0, junk.length)] + line.slice(at + 1);
      assert.equal(isJson(enc.encode(bad)), parses(bad), bad.slice(Math.max(0, at - 40), at + 40));
    }
  }
});

Deno.test("jsonValueEnd stops at the end of the first value and never reads past its limit", () => {
  const b = enc.encode('{"a":[1,2]},{"b":2}');
  assert.equal(jsonValueEnd(b, 0, b.length), 11);
  assert.equal(jsonValueEnd(b, 0, 10), -1);
  assert.equal(jsonValueEnd(enc.encode('"abc"xyz'), 0, 4), -1);
  assert.equal(jsonValueEnd(enc.encode("123456"), 0, 3), -1);
});

Deno.test("every generated event decodes on the fast path as JSON.parse decodes it, with the same policy decision and output", () => {
  const r = new Rand(1);
  let now = Date.UTC(2024, 4, 14, 9);
  const lines = auditLogLines();
  for (let i = 0; i < 3000; i++) {
    now += r.range(0, 3);
    lines.push(clusterEvent(r, now, r.f() < 0.2).line);
  }
  let lazy = 0;
  for (const line of lines) {
    assertSameAsWhole(line);
    const env = decodeLine(enc.encode(line)).envelopes[0];
    const d = Object.getOwnPropertyDescriptor(env.event, "responseObject") ??
      Object.getOwnPropertyDescriptor(env.event, "requestObject");
    if (d?.get) lazy++;
  }
  // The fast path is taken: about one event in five has bodies.
  assert.ok(lazy > 500, `only ${lazy} events were decoded lazily`);
});

Deno.test("every line of the corpus files decodes on both paths alike", () => {
  for (const f of corpusFiles()) {
    for (const line of f.text.split("\n")) {
      if (line.trim() !== "") assertSameAsWhole(line, `${f.name}: ${line.slice(0, 80)}`);
    }
  }
});

const BODY =
  '{"kind":"Pod","metadata":{"name":"a","managedFields":[{"manager":"m"}]},"n":[1,2.5e3,-0,true,false,null]}';
const HEAD = `${PREFIX}"level":"RequestResponse","auditID":"a1","stage":"ResponseComplete",` +
  `"requestURI":"/api/v1/namespaces/default/pods/a","verb":"update",` +
  `"user":{"username":"alice","groups":["system:authenticated"]},` +
  `"objectRef":{"resource":"pods","namespace":"default","name":"a","apiVersion":"v1"}`;
const TAIL = ',"requestReceivedTimestamp":"2024-05-14T09:00:00.000000Z",' +
  '"stageTimestamp":"2024-05-14T09:00:00.001000Z"}';

Deno.test("adversarial lines decode as JSON.parse decodes them, or fail as it does", () => {
  const cases: [string, string][] = [
    ["plain", `${HEAD},"requestObject":${BODY},"responseObject":${BODY}${TAIL}`],
    ["response only", `${HEAD},"responseObject":${BODY}${TAIL}`],
    ["bodies last", `${HEAD},"requestObject":${BODY},"responseObject":${BODY}}`],
    // Duplicate keys: the last wins in JSON.parse, as in Go's encoding/json.
    [
      "level repeated after the bodies",
      `${HEAD},"requestObject":${BODY}${TAIL.slice(0, -1)},"level":"None"}`,
    ],
    [
      "user repeated after the bodies",
      `${HEAD},"requestObject":${BODY},"user":{"username":"system:kube-proxy"}}`,
    ],
    ["body repeated", `${HEAD},"requestObject":${BODY},"requestObject":{"x":1}${TAIL}`],
    [
      "body repeated in the head",
      `${HEAD.replace('"verb"', '"requestObject":1,"verb"')},"requestObject":${BODY}${TAIL}`,
    ],
    ["escaped key after the bodies", `${HEAD},"requestObject":${BODY},"\\u006cevel":"None"}`],
    ["escaped body key", `${HEAD},"\\u0072equestObject":${BODY}${TAIL}`],
    ["__proto__ after the bodies", `${HEAD},"requestObject":${BODY},"__proto__":{"level":"None"}}`],
    [
      "out of order: bodies first",
      `${PREFIX}"requestObject":${BODY},${HEAD.slice(PREFIX.length)}${TAIL}`,
    ],
    [
      "nested requestObject in the head",
      `${
        HEAD.replace(
          '"groups"',
          '"extra":{"x":["1"]},"z":{"a":1,"requestObject":{"level":"None"}},"groups"',
        )
      },"requestObject":${BODY}${TAIL}`,
    ],
    [
      'nested ,"requestObject": inside user',
      `${HEAD.replace('"groups"', '"extra":{"a":["1"],"requestObject":["2"]},"groups"')}${TAIL}`,
    ],
    [
      "nested level inside a body",
      `${HEAD},"requestObject":{"level":"None","items":[{"level":"None"}]}${TAIL}`,
    ],
    [
      "literals and numbers ending the body",
      `${HEAD},"requestObject":[1,true,false,null,-1.5e-3]}`,
    ],
    ["number at the very end", `${HEAD},"requestObject":{},"x":12}`],
    [
      "deep nesting in a body",
      `${HEAD},"requestObject":${"[".repeat(2_000)}${"]".repeat(2_000)}${TAIL}`,
    ],
    ["truncated in a body", `${HEAD},"requestObject":${BODY.slice(0, 50)}`],
    ["truncated after a body", `${HEAD},"requestObject":${BODY}`],
    ["truncated in the tail", `${HEAD},"requestObject":${BODY}${TAIL.slice(0, 30)}`],
    ["garbage after the object", `${HEAD},"requestObject":${BODY}${TAIL}x`],
    ["whitespace after the object", `${HEAD},"requestObject":${BODY}${TAIL}  `],
    ["trailing comma", `${HEAD},"requestObject":${BODY},}`],
    ["invalid body", `${HEAD},"requestObject":{"a":01}${TAIL}`],
    ["control character in a body", `${HEAD},"requestObject":{"a":"x\u0001y"}${TAIL}`],
    ["whitespace around a body", `${HEAD},"requestObject": ${BODY} ${TAIL}`],
    [
      "invalid level",
      `${HEAD.replace("RequestResponse", "Everything")},"requestObject":${BODY}${TAIL}`,
    ],
    ["not an object body head", `${PREFIX}"level":"Metadata","requestObject":1}`],
    ["non-ASCII", `${HEAD},"requestObject":{"name":"café"}${TAIL}`],
    ["U+2028 in a body", `${HEAD},"requestObject":{"name":"a\u2028b"}${TAIL}`],
  ];
  for (const [name, line] of cases) assertSameAsWhole(line, name);
});

Deno.test("invalid UTF-8 in a body is replaced as Go decodes it, on both paths alike", () => {
  const head = enc.encode(`${HEAD},"requestObject":{"name":"a`);
  const tail = enc.encode(`b"}${TAIL}`);
  for (const bad of [[0xff], [0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
    const line = new Uint8Array([...head, ...bad, ...tail]);
    assertSameAsWhole(line, `bytes ${bad.map((b) => b.toString(16)).join(" ")}`);
    const out = jsonBytes(decodeLine(line).envelopes[0]);
    assert.doesNotThrow(() => new TextDecoder("utf-8", { fatal: true }).decode(out));
  }
});

Deno.test("a lazy body is parsed on first read only, and can be set and deleted like a plain one", () => {
  const text = `${HEAD},"requestObject":${BODY},"responseObject":{"b":2}${TAIL}`;
  const bytes = enc.encode(text);
  const src = { bytes, base: 0 };
  const obj = decodeLazyObject(text, bytes, 0, bytes.length, src)!;
  assert.ok(obj !== null);
  assert.ok(hasValue(obj, "requestObject"));
  assert.ok(!hasValue(obj, "annotations"));
  assert.ok(Object.getOwnPropertyDescriptor(obj, "requestObject")!.get !== undefined);
  // Moving the bytes (as the webhook source does) is followed by the getter.
  src.bytes = bytes.slice();
  assert.deepEqual(obj.requestObject, JSON.parse(BODY));
  assert.equal(Object.getOwnPropertyDescriptor(obj, "requestObject")!.get, undefined);
  obj.responseObject = { c: 3 };
  assert.deepEqual(obj.responseObject, { c: 3 });
  delete obj.requestObject;
  assert.deepEqual(
    Object.keys(obj),
    Object.keys(JSON.parse(text)).filter((k) => k !== "requestObject"),
  );
});

Deno.test("lowering an event to Metadata drops its bodies without parsing them", () => {
  const line = `${HEAD},"requestObject":${BODY},"responseObject":${BODY}${TAIL}`;
  const env = decodeLine(enc.encode(line)).envelopes[0];
  const out = applyPolicy(
    { level: "Metadata", omitStages: [], omitManagedFields: false, rule: 0 },
    env.event,
  );
  assert.ok(typeof out === "object");
  assert.equal(out.requestObject, undefined);
  assert.equal(out.level, "Metadata");
  // The input's bodies were never read.
  assert.ok(Object.getOwnPropertyDescriptor(env.event, "requestObject")!.get !== undefined);
  assert.ok(Object.getOwnPropertyDescriptor(env.event, "responseObject")!.get !== undefined);
});

Deno.test("EventList items decode on the fast path as JSON.parse decodes them, piece by piece", () => {
  const r = new Rand(3);
  let now = Date.UTC(2024, 4, 14, 9);
  const lines: string[] = [];
  for (let i = 0; i < 300; i++) {
    now += r.range(0, 3);
    lines.push(clusterEvent(r, now, r.f() < 0.3).line);
  }
  // Not ASCII: the items after it take the fast path all the same.
  lines.unshift(`${HEAD},"requestObject":{"name":"café 🚀"}${TAIL}`);
  // A body with items kube-apiserver would not write: the parts around them still decode.
  lines.push(`${HEAD},"requestObject":${BODY},"level":"None"}`);
  lines.push(`${HEAD},"requestObject":{"items":[{"level":"x"},{"level":"y"}]}${TAIL}`);
  const items = lines.map((l) => `{${l.slice(PREFIX.length)}`);
  const body = enc.encode(
    `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${
      items.join(",")
    }]}`,
  );
  const parts = new BodyParts(body, 7);
  const envelopes: Envelope[] = [];
  for (let p; (p = parts.next()) !== null;) envelopes.push(...p.envelopes);
  assert.equal(envelopes.length, items.length);
  let lazy = 0;
  for (let i = 0; i < items.length; i++) {
    const whole: Envelope = { event: asEvent(JSON.parse(items[i])), item: enc.encode(items[i]) };
    const d = Object.getOwnPropertyDescriptor(envelopes[i].event, "requestObject") ??
      Object.getOwnPropertyDescriptor(envelopes[i].event, "responseObject");
    if (d?.get) lazy++;
    assert.equal(written(envelopes[i]), written(whole), items[i].slice(0, 100));
    assert.equal(shape(envelopes[i].event), shape(whole.event), items[i].slice(0, 100));
  }
  assert.ok(lazy > 50, `only ${lazy} items were decoded lazily`);
});

Deno.test("the body key search finds the first top-level body key, not keys that only end like one", () => {
  const line = `${HEAD},"involvedObject":{"a":1},"x":"requestObject","requestObjects":1,` +
    `"responseObject":${BODY}${TAIL}`;
  assert.equal(findBodyKey(line, 0), line.indexOf(',"responseObject":'));
  assert.equal(findBodyKey(`{"a":1,"requestObject":{}}`, 0), 6);
  assert.equal(findBodyKey(`{"a":1,"requestObject":{}}`, 7), -1);
  // A response key starting exactly at `from`, and one starting just before it.
  assert.equal(findBodyKey(`{"a":1,"responseObject":{}}`, 6), 6);
  assert.equal(findBodyKey(`{"a":1,"responseObject":{}}`, 7), -1);
  assert.equal(findBodyKey(`{"a":"Object\\":"}`, 0), -1);
  for (
    const l of [
      line,
      `${HEAD},"involvedObject":{"requestObject":1},"requestObject":${BODY}${TAIL}`,
      `${HEAD},"responseObject":${BODY},"requestObject":${BODY}${TAIL}`,
      `${HEAD},"annotations":{"a":",\\"requestObject\\":{}"},"requestObject":${BODY}${TAIL}`,
      `${HEAD},"xrequestObject":1,"requestObject":${BODY}${TAIL}`,
    ]
  ) {
    assertSameAsWhole(l);
  }
});

Deno.test("a line that starts with a byte order mark decodes on both paths alike", () => {
  const line = `${HEAD},"requestObject":${BODY}${TAIL}`;
  assertSameAsWhole(new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode(line)]), "BOM + event");
  assertSameAsWhole(new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode(`${HEAD}${TAIL}`)]), "BOM");
});

// Lines without bodies (most of them) and webhook items, shaped the ways kube-apiserver never
// writes them: both paths must still agree, whichever path a line takes.
const METADATA = `${PREFIX}"level":"Metadata","auditID":"m1","stage":"ResponseComplete",` +
  `"requestURI":"/api/v1/namespaces/kube-system/secrets/a","verb":"get",` +
  `"user":{"username":"alice","groups":["system:authenticated"]},"sourceIPs":["10.0.0.1"],` +
  `"userAgent":"kubectl/v1.30","objectRef":{"resource":"secrets","namespace":"kube-system",` +
  `"name":"a","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200}` + TAIL;

const ODD_EVENTS: [string, string][] = [
  ["metadata", METADATA],
  ["level repeated", METADATA.replace('"stage"', '"level":"None","stage"')],
  ["level repeated last", `${METADATA.slice(0, -1)},"level":"None"}`],
  ["user repeated", `${METADATA.slice(0, -1)},"user":{"username":"system:kube-proxy"}}`],
  ["objectRef repeated", `${METADATA.slice(0, -1)},"objectRef":null}`],
  ["escaped level key", `${METADATA.slice(0, -1)},"\\u006cevel":"None"}`],
  ["escaped user key", `${METADATA.slice(0, -1)},"\\u0075ser":{"username":"bob"}}`],
  [
    "nested level and user",
    METADATA.replace('"metadata":{}', '"metadata":{"level":"None","user":{"username":"x"}}'),
  ],
  ["out of Go order", `${PREFIX}"user":{"username":"a"},"verb":"get",${METADATA.slice(46)}`],
  ["__proto__", `${METADATA.slice(0, -1)},"__proto__":{"level":"None"}}`],
  ["__proto__ first", `{"__proto__":{"level":"None"},${METADATA.slice(1)}`],
  ["deep nesting", `${METADATA.slice(0, -1)},"x":${"[".repeat(5_000)}${"]".repeat(5_000)}}`],
  ["numbers and literals last", `${METADATA.slice(0, -1)},"x":[true,false,null,-0.5e-7],"n":7}`],
  ["whitespace between tokens", METADATA.replaceAll(",", " ,\t").replaceAll(":", "\r\n: ")],
  ["truncated", METADATA.slice(0, 300)],
  ["truncated after a string", METADATA.slice(0, METADATA.indexOf(',"verb"'))],
  ["not an object", `[${METADATA}]`],
  ["a string", JSON.stringify(METADATA)],
  ["a number", "12"],
  ["two objects", `${METADATA} ${METADATA}`],
  ["invalid level", METADATA.replace('"Metadata"', '"Everything"')],
  ["sourceIPs not a list", METADATA.replace('["10.0.0.1"]', '"10.0.0.1"')],
  ["annotations not an object", `${METADATA.slice(0, -1)},"annotations":[1]}`],
  ["control character", METADATA.replace("alice", "al\u0001ice")],
  ["non-ASCII", METADATA.replace("alice", "alïce 🚀")],
];

Deno.test("lines without bodies in odd shapes decode as JSON.parse decodes them, or fail as it does", () => {
  for (const [name, line] of ODD_EVENTS) assertSameAsWhole(line, name);
  // Invalid UTF-8 in a line without bodies.
  const [a, b] = METADATA.split("alice");
  for (const bad of [[0xff], [0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80]]) {
    assertSameAsWhole(new Uint8Array([...enc.encode(a), ...bad, ...enc.encode(b)]), `${bad}`);
  }
});

Deno.test("EventList items in odd shapes decode as JSON.parse decodes them", () => {
  const items = ODD_EVENTS.filter(([, l]) => parses(l) && !l.startsWith("[") && l.startsWith("{"))
    .map(([, l]) => l.startsWith(PREFIX) ? `{${l.slice(PREFIX.length)}` : l);
  const withBodies = items.map((i) =>
    i.replace(',"responseStatus"', `,"requestObject":${BODY},"responseStatus"`)
  );
  const all = [...items, ...withBodies];
  const body = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${
    all.join(",")
  }]}`;
  // The reference: the whole body through JSON.parse, items keeping their bytes.
  const whole = decodeWholeBody(body, enc.encode(body));
  const parts = new BodyParts(enc.encode(body), 5);
  const envelopes: Envelope[] = [];
  const rejected: Rejected[] = [];
  for (let p; (p = parts.next()) !== null;) {
    envelopes.push(...p.envelopes);
    rejected.push(...p.rejected);
  }
  assert.deepEqual(rejected, whole.rejected);
  assert.equal(envelopes.length, whole.envelopes.length);
  assert.ok(envelopes.length > 20, `only ${envelopes.length} items decoded`);
  for (let i = 0; i < envelopes.length; i++) {
    const what = JSON.stringify(whole.envelopes[i].event).slice(0, 100);
    assert.equal(written(envelopes[i]), written(whole.envelopes[i]), what);
    assert.equal(shape(envelopes[i].event), shape(whole.envelopes[i].event), what);
  }
});

Deno.test("an unparsed body gives the bytes it came as, until it is read, set or deleted", () => {
  const line = `${HEAD},"requestObject":${BODY},"responseObject":{"b": [1, 2]}${TAIL}`;
  const env = decodeLine(enc.encode(line)).envelopes[0];
  const event = env.event as unknown as Record<string, unknown>;
  assert.equal(dec.decode(unparsedBody(event, "requestObject")), BODY);
  assert.equal(dec.decode(unparsedBody(event, "responseObject")), '{"b": [1, 2]}');
  assert.deepEqual(event.requestObject, JSON.parse(BODY));
  assert.equal(unparsedBody(event, "requestObject"), undefined);
  event.responseObject = { c: 1 };
  assert.equal(unparsedBody(event, "responseObject"), undefined);
  // Spreading reads every value: the copy, and the original, hold plain bodies after it.
  const decode = () => decodeLine(enc.encode(line)).envelopes[0].event as unknown as object;
  const spread = decode();
  assert.equal(unparsedBody({ ...spread }, "requestObject"), undefined);
  assert.equal(unparsedBody(spread, "requestObject"), undefined);
  const deleted = decode() as Record<string, unknown>;
  delete deleted.requestObject;
  assert.equal(unparsedBody(deleted, "requestObject"), undefined);
  // Events decoded whole, and webhook items whose bytes moved into their piece's buffer.
  assert.equal(
    unparsedBody(decodeLineWhole(enc.encode(line)).envelopes[0].event, "requestObject"),
    undefined,
  );
  const item = `{${line.slice(PREFIX.length)}`;
  const body = enc.encode(
    `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[${item},${item}]}`,
  );
  const parts = new BodyParts(body, 1);
  for (let p; (p = parts.next()) !== null;) {
    assert.equal(dec.decode(unparsedBody(p.envelopes[0].event, "requestObject")), BODY);
  }
});
