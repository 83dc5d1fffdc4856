/**
 * The byte validator (`pipeline/core/json_validate.ts`) against `JSON.parse` on generated
 * texts: nearly-JSON made of the tokens and mistakes that matter (every escape, numbers at
 * their edges, literals cut short, whitespace of every kind between tokens, missing and extra
 * separators, unclosed and crossed brackets, control characters and bytes above 0x7f), whole,
 * cut at every length, and inside a larger buffer with a limit.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parses } from "./helpers/json.ts";
import { isJson, jsonStringEnd, jsonValueEnd } from "../pipeline/core/json_validate.ts";
import { Rand } from "./data/rand.ts";

const enc = new TextEncoder();

const STRINGS = [
  '""',
  '"a"',
  '"plain text of some length, past any short-string loop"',
  '"\\" \\\\ \\/ \\b \\f \\n \\r \\t"',
  '"\\u00e9\\uD83D\\uDE80"',
  '"\\u00g9"',
  '"\\u12"',
  '"\\x"',
  '"\\"',
  '"tab\there"',
  '"nul\u0000"',
  '"del\u007f"',
  '"é🚀"',
  '"unterminated',
];
const NUMBERS = [
  "0",
  "-0",
  "7",
  "-12",
  "1.5",
  "1.",
  ".5",
  "01",
  "-",
  "1e5",
  "1E+5",
  "1e-5",
  "1e",
  "2.5e+",
  "1.0e0",
  "+1",
  "0x1",
];
const LITERALS = ["true", "false", "null", "tru", "fals", "nul", "truex", "True", "NaN"];
const WS = ["", "", "", " ", "\t", "\n", "\r\n", "  ", "\u00a0", "\u000b"];

function value(r: Rand, depth: number): string {
  const w = () => r.pick(WS);
  const kind = depth > 6 ? r.int(3) : r.int(6);
  switch (kind) {
    case 0:
      return r.pick(STRINGS);
    case 1:
      return r.pick(NUMBERS);
    case 2:
      return r.pick(LITERALS);
    case 3:
    case 4: {
      const n = r.int(4);
      const members: string[] = [];
      for (let i = 0; i < n; i++) {
        const key = r.f() < 0.9 ? `"k${r.int(3)}"` : r.pick(STRINGS.concat(["k", "1"]));
        const colon = r.f() < 0.97 ? ":" : r.pick(["", "::", ","]);
        members.push(`${w()}${key}${w()}${colon}${w()}${value(r, depth + 1)}${w()}`);
      }
      const sep = r.f() < 0.97 ? "," : r.pick(["", ",,", ":"]);
      const close = r.f() < 0.97 ? "}" : r.pick(["", "]", "}}"]);
      return `{${w()}${members.join(sep)}${r.f() < 0.03 ? "," : ""}${close}`;
    }
    default: {
      const n = r.int(4);
      const items: string[] = [];
      for (let i = 0; i < n; i++) items.push(`${w()}${value(r, depth + 1)}${w()}`);
      const sep = r.f() < 0.97 ? "," : r.pick(["", ",,"]);
      const close = r.f() < 0.97 ? "]" : r.pick(["", "}", "]]"]);
      return `[${w()}${items.join(sep)}${r.f() < 0.03 ? "," : ""}${close}`;
    }
  }
}

Deno.test("the validator agrees with JSON.parse on 20,000 generated texts and every cut of them", () => {
  const r = new Rand(18);
  let valid = 0;
  for (let n = 0; n < 20_000; n++) {
    const text = `${r.pick(WS)}${value(r, 0)}${r.pick(WS)}${
      r.f() < 0.05 ? r.pick(["x", "1", "{}"]) : ""
    }`;
    const ok = parses(text);
    if (ok) valid++;
    assert.equal(isJson(enc.encode(text)), ok, JSON.stringify(text));
    if (n % 10 === 0) {
      for (let cut = 0; cut < text.length; cut++) {
        const part = text.slice(0, cut);
        assert.equal(isJson(enc.encode(part)), parses(part), JSON.stringify(part));
      }
    }
  }
  // Both outcomes are well represented.
  assert.ok(valid > 4_000 && valid < 16_000, `${valid} valid of 20,000`);
});

Deno.test("a limit inside a buffer counts as the end of the input, whatever follows it", () => {
  const r = new Rand(19);
  const tails = ['"', "0", "e5", "}", "]", ",1]", "ue", "  "];
  for (let n = 0; n < 5_000; n++) {
    const text = value(r, 0);
    const bytes = enc.encode(text);
    const end = jsonValueEnd(bytes, 0, bytes.length);
    for (const tail of tails) {
      // A bare number running on past the limit is refused: it may not end there.
      if (/^[-0-9]/.test(text) && /^[-+.0-9eE]/.test(tail)) continue;
      // The same bytes followed by more: a limit at their length gives the same answer.
      const padded = enc.encode(text + tail);
      assert.equal(jsonValueEnd(padded, 0, bytes.length), end, JSON.stringify(text + tail));
    }
    if (text.startsWith('"')) {
      assert.equal(jsonStringEnd(bytes, 0, bytes.length), end, JSON.stringify(text));
    }
  }
});

Deno.test("bytes above 0x7f are taken as they are inside strings and rejected outside them", () => {
  for (const b of [0x80, 0xc3, 0xff]) {
    const inString = new Uint8Array([0x5b, 0x22, b, 0x22, 0x5d]);
    assert.equal(isJson(inString), true);
    assert.equal(isJson(new Uint8Array([0x5b, b, 0x5d])), false);
    assert.equal(isJson(new Uint8Array([0x7b, b, 0x7d])), false);
  }
});
