/**
 * Events the policy lowers are written from their original bytes (`pipeline/core/splice.ts`,
 * `lowered` in the policy stage): the bytes are exactly what serializing the lowered event
 * writes, for every generated event, every corpus file and `EventList` items; bytes in any
 * other shape fall back to serializing; the body a lowered event keeps is never parsed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { decodeBodyBytes } from "../pipeline/body_parts.ts";
import { decodeLine } from "../pipeline/core/decode.ts";
import { encodeEvent, jsonBytes } from "../pipeline/core/encode.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import type { Event, Level } from "../pipeline/core/event.ts";
import { spliceLowered } from "../pipeline/core/splice.ts";
import { lowered } from "../pipeline/stages/policy.ts";
import { policyStage } from "../pipeline/stages/policy.ts";
import { Ack } from "../pipeline/core/ack.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import { applyPolicy, compilePolicy, parsePolicy, type PolicyResult } from "../policy/mod.ts";
import { clusterEvent } from "./data/cluster.ts";
import { auditLogLines, corpusFiles } from "./data/corpus.ts";
import { Rand } from "./data/rand.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const PREFIX = '{"kind":"Event","apiVersion":"audit.k8s.io/v1",';

function result(level: Level, omitManagedFields = false): PolicyResult {
  return { level, omitStages: [], omitManagedFields, rule: 0 };
}

/** Counts of envelopes lowered from bytes and by serializing. */
interface Tally {
  spliced: number;
  encoded: number;
}

/**
 * Lowers `env` to each level below its own and checks the line written is what serializing
 * the lowered event writes; counts which way it went.
 */
function checkLowerings(env: Envelope, tally: Tally, what: string): void {
  for (const level of ["Metadata", "Request"] as const) {
    for (const omitManagedFields of [false, true]) {
      const r = result(level, omitManagedFields);
      const applied = applyPolicy(r, env.event);
      if (typeof applied === "string" || applied === env.event) continue;
      const out = lowered(env, applied, r);
      const bytes = out.raw ?? out.item;
      if (bytes === undefined) tally.encoded++;
      else tally.spliced++;
      // What a log sink writes for it, against serializing the lowered event.
      assert.equal(dec.decode(jsonBytes(out)), encodeEvent(applied), `${what} → ${level}`);
    }
  }
}

function generatedLines(n: number): string[] {
  const r = new Rand(18);
  const now = Date.UTC(2024, 4, 14);
  const lines = auditLogLines();
  for (let i = 0; i < n; i++) lines.push(clusterEvent(r, now + i, i % 3 === 0).line);
  return lines;
}

Deno.test("lowered log lines are cut from their bytes, identical to serializing, for every generated event", () => {
  const tally: Tally = { spliced: 0, encoded: 0 };
  for (const line of generatedLines(3000)) {
    const env = decodeLine(enc.encode(line)).envelopes[0];
    checkLowerings(env, tally, line.slice(0, 100));
  }
  // kube-apiserver's shape throughout: nothing falls back but managedFields stripping.
  assert.ok(tally.spliced > 2000, JSON.stringify(tally));
});

Deno.test("lowered EventList items are cut from their bytes, identical to serializing", () => {
  const lines = generatedLines(1200);
  const tally: Tally = { spliced: 0, encoded: 0 };
  for (let i = 0; i < lines.length; i += 400) {
    const items = lines.slice(i, i + 400).map((l) => `{${l.slice(PREFIX.length)}`);
    const body = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${
      items.join(",")
    }]}`;
    const { envelopes } = decodeBodyBytes(enc.encode(body));
    assert.equal(envelopes.length, items.length);
    for (const env of envelopes) {
      assert.ok(env.item !== undefined);
      checkLowerings(env, tally, dec.decode(env.item!.subarray(0, 100)));
    }
  }
  assert.ok(tally.spliced > 800, JSON.stringify(tally));
});

Deno.test("lowered events of every corpus file are written as serializing writes them", () => {
  const tally: Tally = { spliced: 0, encoded: 0 };
  for (const file of corpusFiles()) {
    const bytes = enc.encode(file.text.replace(/^\ufeff/, ""));
    let envelopes: Envelope[] = [];
    try {
      envelopes = decodeBodyBytes(bytes).envelopes;
    } catch {
      for (const line of file.text.split("\n")) {
        try {
          envelopes.push(...decodeLine(enc.encode(line)).envelopes);
        } catch { /* not an event line: not this test's concern */ }
      }
    }
    for (const env of envelopes) checkLowerings(env, tally, file.name);
  }
  assert.ok(tally.spliced > 0, JSON.stringify(tally));
});

/** Lowers a line to `level` and returns what is written and whether it was cut from bytes. */
function lowerLine(line: string, level: Level): { out: string; spliced: boolean } {
  const env = decodeLine(enc.encode(line)).envelopes[0];
  const r = result(level);
  const applied = applyPolicy(r, env.event) as Event;
  assert.notEqual(applied, env.event);
  const out = lowered(env, applied, r);
  // Before jsonBytes, which caches a serialization as `raw`.
  const spliced = out.raw !== undefined;
  const written = dec.decode(jsonBytes(out));
  assert.deepEqual(JSON.parse(written), JSON.parse(encodeEvent(applied)));
  return { out: written, spliced };
}

const HEAD = `${PREFIX}"level":"RequestResponse","auditID":"a","stage":"ResponseComplete",` +
  `"requestURI":"/api/v1/pods","verb":"create","user":{"username":"u"}`;
const TAIL = `"requestReceivedTimestamp":"2024-05-14T00:00:00.000000Z",` +
  `"stageTimestamp":"2024-05-14T00:00:00.000001Z"}`;

Deno.test("bodies with brackets, quotes and escapes in strings are cut whole", () => {
  const req = `{"a":"}]\\\\","b":["\\"{",{"c":"\\\\\\""}],"n":-1.5e3,"t":true,"z":null}`;
  const resp = `{"kind":"Status","message":"x\\"}\\u0026<","details":{"causes":[{}]}}`;
  const line = `${HEAD},"requestObject":${req},"responseObject":${resp},${TAIL}`;
  const toRequest = lowerLine(line, "Request");
  assert.ok(toRequest.spliced);
  assert.equal(
    toRequest.out,
    `${HEAD.replace("RequestResponse", "Request")},"requestObject":${req},${TAIL}`,
  );
  const toMetadata = lowerLine(line, "Metadata");
  assert.ok(toMetadata.spliced);
  assert.equal(toMetadata.out, `${HEAD.replace("RequestResponse", "Metadata")},${TAIL}`);
});

Deno.test("a body key nested in another member is not taken for the event's body", () => {
  const head = HEAD.replace(
    `"user":{"username":"u"}`,
    `"user":{"username":"u","extra":{"requestObject":["x"],"responseObject":["y"]}}`,
  );
  const line = `${head},"requestObject":{"level":"x"},"responseObject":{"requestObject":1},` +
    `${TAIL.slice(0, -1)},"annotations":{"responseObject":"z"}}`;
  for (const level of ["Request", "Metadata"] as const) {
    const { out, spliced } = lowerLine(line, level);
    assert.ok(spliced, level);
    assert.ok(out.includes(`"extra":{"requestObject":["x"],"responseObject":["y"]}`));
    assert.ok(out.includes(`"annotations":{"responseObject":"z"}`));
  }
});

Deno.test("bytes not in kube-apiserver's shape are serialized instead", () => {
  const body = `"requestObject":{"a":1},"responseObject":{"b":2}`;
  const tail = TAIL.slice(0, -1);
  const cases: [string, string, Level][] = [
    ["whitespace between members", `${HEAD}, ${body},${TAIL}`, "Metadata"],
    [
      "a body key with escapes",
      `${HEAD},"requestObject":{"a":1},"respons\\u0065Object":{"b":2},${TAIL}`,
      "Request",
    ],
    ["the level repeated", `${HEAD},${body},${tail},"level":"RequestResponse"}`, "Metadata"],
    [
      "a member after a kept body",
      `${HEAD},"requestObject":{"a":1},"verb":"x","responseObject":{"b":2},${TAIL}`,
      "Request",
    ],
    [
      "a member repeated between two bodies that are both cut",
      `${HEAD},"requestObject":{"a":1},"verb":"x","responseObject":{"b":2},${TAIL}`,
      "Metadata",
    ],
    [
      "a member repeated after the one body, which is cut",
      `${HEAD},"requestObject":{"a":1},"verb":"x",${TAIL}`,
      "Metadata",
    ],
    ["a body repeated after the others", `${HEAD},${body},${tail},"responseObject":{}}`, "Request"],
    ["a member repeated before the bodies", `${HEAD},"verb":"get",${body},${TAIL}`, "Metadata"],
    ["a member repeated after the bodies", `${HEAD},${body},${tail},"verb":"get"}`, "Metadata"],
    ["a key with escapes after the bodies", `${HEAD},${body},${tail},"\\u0061":{}}`, "Metadata"],
    [
      "the level not first",
      HEAD.replace(`"level":"RequestResponse",`, "") + `,"level":"RequestResponse",${body},${TAIL}`,
      "Metadata",
    ],
  ];
  for (const [what, line, level] of cases) {
    const { spliced } = lowerLine(line, level);
    assert.equal(spliced, false, what);
  }
});

Deno.test("spliceLowered refuses bytes that do not show the level or the body to drop", () => {
  const text = `{"level":"Request","auditID":"a","requestObject":{}}`;
  const item = enc.encode(text);
  const ev = JSON.parse(text);
  const lower = { to: "Metadata", dropRequest: true, dropResponse: false } as const;
  assert.equal(
    dec.decode(spliceLowered(item, false, ev, { from: "Request", ...lower })!),
    `{"level":"Metadata","auditID":"a"}`,
  );
  assert.equal(spliceLowered(item, false, ev, { from: "RequestResponse", ...lower }), null);
  assert.equal(spliceLowered(item, true, ev, { from: "Request", ...lower }), null);
  assert.equal(
    spliceLowered(item, false, ev, { from: "Request", ...lower, dropResponse: true }),
    null,
  );
  // The bytes hold another member than the event says.
  const other = { level: "Request", auditID: "a", stage: "x", requestObject: {} };
  assert.equal(spliceLowered(item, false, other, { from: "Request", ...lower }), null);
});

Deno.test("the body a lowered event keeps is not parsed to write it", () => {
  const r = new Rand(7);
  let checked = 0;
  for (let i = 0; i < 50; i++) {
    const line = clusterEvent(r, Date.UTC(2024, 4, 14), true).line;
    const env = decodeLine(enc.encode(line)).envelopes[0];
    const lazy = Object.getOwnPropertyDescriptor(env.event, "requestObject")?.get;
    if (lazy === undefined || env.event.level !== "RequestResponse") continue;
    const res = result("Request");
    const applied = applyPolicy(res, env.event) as Event;
    const out = lowered(env, applied, res);
    assert.ok(out.raw !== undefined);
    jsonBytes(out);
    // Still the decoder's accessor: nothing read the body.
    assert.equal(Object.getOwnPropertyDescriptor(env.event, "requestObject")?.get, lazy);
    // Reading it through the lowered event gives the body, once parsed.
    assert.deepEqual(applied.requestObject, JSON.parse(JSON.stringify(env.event.requestObject)));
    assert.equal(applied.requestObject, env.event.requestObject);
    checked++;
  }
  assert.ok(checked > 10, `${checked}`);
});

Deno.test("the policy stage hands on lowered events with bytes cut from theirs, bodies unparsed", async () => {
  const compiled = compilePolicy(
    parsePolicy("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Request\n", "p.yaml")
      .policy,
  );
  const levels = { None: 0, Metadata: 0, Request: 0, RequestResponse: 0 };
  const r = new Rand(11);
  const envelopes: Envelope[] = [];
  while (envelopes.length < 20) {
    const line = clusterEvent(r, Date.UTC(2024, 4, 14), true).line;
    const env = decodeLine(enc.encode(line)).envelopes[0];
    if (env.event.level === "RequestResponse" && env.event.requestObject !== undefined) {
      envelopes.push(decodeLine(enc.encode(line)).envelopes[0]);
    }
  }
  const lazy = envelopes.map((e) => Object.getOwnPropertyDescriptor(e.event, "requestObject")?.get);
  const stage = policyStage(compiled, { stats: new SinkStats("s"), levels });
  const writer = stage.writable.getWriter();
  const reader = stage.readable.getReader();
  const wrote = writer.write({ items: envelopes, ack: new Ack() });
  const { value } = await reader.read();
  await wrote;
  assert.equal(value!.items.length, envelopes.length);
  for (const [i, out] of value!.items.entries()) {
    assert.equal(out.event.level, "Request");
    assert.ok(out.raw !== undefined, "cut from the original bytes");
    // Nothing read the body to lower the event (serializing it below does).
    const get = Object.getOwnPropertyDescriptor(envelopes[i].event, "requestObject")?.get;
    if (lazy[i] !== undefined) assert.equal(get, lazy[i]);
    assert.equal(dec.decode(out.raw), encodeEvent(out.event));
  }
});
