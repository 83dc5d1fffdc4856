/**
 * The policy CLI's streaming record scanner: values and list items found in bytes pushed
 * in chunks of any size, line numbers, and recovery from damaged input.
 */
import assert from "node:assert/strict";
import { RecordScanner, type Scanned } from "../cli/policy/records.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** What the scanner found, one readable string each. */
function describe(s: Scanned): string {
  switch (s.type) {
    case "value":
      return `value@${s.line}${s.multiline ? "+" : ""} ${
        s.bytes ? dec.decode(s.bytes) : `(${s.size} bytes)`
      }`;
    case "item":
      return `${s.list}[${s.index}]@${s.line}${s.multiline ? "+" : ""} ${
        s.bytes ? dec.decode(s.bytes) : `(${s.size} bytes)`
      }`;
    case "listStart":
    case "listEnd":
      return `${s.type} ${s.list}@${s.line}${s.type === "listEnd" ? ` count=${s.count}` : ""}${
        s.header ? ` ${dec.decode(s.header)}` : ""
      }`;
    case "broken":
      return `broken@${s.line} ${s.reason}`;
  }
}

function scan(chunks: (string | Uint8Array)[], max = 1 << 20): string[] {
  const scanner = new RecordScanner({ maxRecordBytes: max });
  const out: string[] = [];
  for (const c of chunks) {
    // A fresh copy, as a stream hands out: the scanner must not rely on earlier chunks.
    const bytes = typeof c === "string" ? enc.encode(c) : c.slice();
    for (const s of scanner.push(bytes)) out.push(describe(s));
  }
  for (const s of scanner.end()) out.push(describe(s));
  return out;
}

/** The input cut at every position into two chunks, and into one-byte chunks. */
function everySplit(text: string): (string | Uint8Array)[][] {
  const bytes = enc.encode(text);
  const out: Uint8Array[][] = [];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  out.push([...bytes].map((b) => new Uint8Array([b])));
  return out;
}

Deno.test("records: JSON lines are one value per line, with CRLF, blank lines and a BOM", () => {
  assert.deepEqual(scan(['\ufeff{"a":1}\r\n\n  {"b":[1,{"c":"}"}]}\n{"d":2}']), [
    'value@1 {"a":1}',
    'value@3 {"b":[1,{"c":"}"}]}',
    'value@4 {"d":2}',
  ]);
});

Deno.test("records: an EventList's items come one by one between its header's start and end", () => {
  const list =
    '{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{"items":[9]},"items":[{"a":"]}"},{"b":{"items":[{}]}}],"x":"items"}';
  assert.deepEqual(scan([list]), [
    'listStart items@1 {"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{"items":[9]},"items":[]}',
    'items[0]@1 {"a":"]}"}',
    'items[1]@1 {"b":{"items":[{}]}}',
    'listEnd items@1 count=2 {"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{"items":[9]},"items":[],"x":"items"}',
  ]);
});

Deno.test("records: the same records whatever the chunks, escapes and all", () => {
  const text = [
    `{"e":\n  {"f": [1,\n 2]}\n}`,
    String
      .raw`{"kind":"EventList","items":[{"a":"q\"}"},{"b":"\\"},{"c":"\\\"{["}, 7, "s\"", null]}`,
    String.raw`[{"d":1},[2,[3]]]`,
    String.raw`{"records":[{"properties":{"log":"{\"x\":1}"}}]}`,
    // Long strings: escaped quotes and runs of backslashes anywhere.
    String.raw`{"long":"${"a".repeat(40)}\"${"b".repeat(40)}\\\\","l2":"${"c".repeat(33)}\\\"}"}`,
    "",
  ].join("\n");
  const whole = scan([text]);
  assert.equal(whole.length, 17, whole.join("\n"));
  assert.equal(whole[0], 'value@1+ {"e":\n  {"f": [1,\n 2]}\n}');
  assert.ok(whole.includes(String.raw`items[2]@5 {"c":"\\\"{["}`));
  assert.ok(whole.includes("items[3]@5 7"));
  assert.ok(whole.includes(String.raw`items[4]@5 "s\""`));
  assert.ok(whole.includes("array[1]@6 [2,[3]]"));
  assert.ok(whole.includes(String.raw`records[0]@7 {"properties":{"log":"{\"x\":1}"}}`));
  assert.equal(JSON.parse(whole[16].slice("value@8 ".length)).l2, `${"c".repeat(33)}\\"}`);
  for (const chunks of everySplit(text)) assert.deepEqual(scan(chunks), whole);
});

Deno.test("records: pretty-printed documents one after another, and a pretty list", () => {
  const a = JSON.stringify({ level: "None", auditID: "a" }, null, 2);
  const list = JSON.stringify([{ auditID: "b" }, { auditID: "c" }], null, 2);
  assert.deepEqual(scan([`${a}\n${a}\n${list}\n`]), [
    `value@1+ ${a}`,
    `value@5+ ${a}`,
    "listStart array@9",
    `array[0]@10+ ${JSON.stringify({ auditID: "b" }, null, 2).replaceAll("\n", "\n  ")}`,
    `array[1]@13+ ${JSON.stringify({ auditID: "c" }, null, 2).replaceAll("\n", "\n  ")}`,
    "listEnd array@9 count=2",
  ]);
});

Deno.test("records: a cut line in JSON lines is reported with its number and the next line is read", () => {
  const text = `{"a":1}\n{"b":{"c":2}\n{"d":"${
    "long ".repeat(10)
  }\nnot json at all\n{"e":"x"}\n{"f":"y`;
  for (const chunks of everySplit(text)) {
    assert.deepEqual(scan(chunks), [
      'value@1 {"a":1}',
      "broken@2 the line ends inside a JSON value",
      "broken@3 a line ends inside a string",
      "broken@4 not JSON: not json at all",
      'value@5 {"e":"x"}',
      "broken@6 the input ends inside a JSON value",
    ]);
  }
});

Deno.test("records: a cut EventList line ends its list; the next line is read", () => {
  assert.deepEqual(scan(['{"z":0}\n{"items":[{"a":1},{"b":\n{"c":3}\n']), [
    'value@1 {"z":0}',
    'listStart items@2 {"items":[]}',
    'items[0]@2 {"a":1}',
    "broken@2 the line ends inside a JSON value",
    'value@3 {"c":3}',
  ]);
});

Deno.test("records: a broken pretty-printed document is skipped to the next line starting a value", () => {
  const good = JSON.stringify({ auditID: "g" }, null, 2);
  const text = `${good}\n{\n  "auditID": "bad\n  "x": {}\n}\n${good}\n`;
  assert.deepEqual(scan([text]), [
    `value@1+ ${good}`,
    "broken@4 a line ends inside a string",
    `value@8+ ${good}`,
  ]);
});

Deno.test("records: a record over the limit is reported by size, not held, and the next is read", () => {
  const big = `{"a":"${"x".repeat(100)}"}`;
  const text = `${big}\n{"b":1}\n[{"c":2},${big}]\n`;
  for (const chunks of [[text], ...everySplit(text).slice(0, 40)]) {
    assert.deepEqual(scan(chunks, 50), [
      `value@1 (${big.length} bytes)`,
      'value@2 {"b":1}',
      "listStart array@3",
      'array[0]@3 {"c":2}',
      `array[1]@3 (${big.length} bytes)`,
      "listEnd array@3 count=2",
    ]);
  }
});
