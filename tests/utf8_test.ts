/**
 * Invalid UTF-8 in events: every sink writes valid UTF-8, and the same event the same way
 * whether a sink writes its original bytes or serializes it again, with U+FFFD where Go's
 * decoder puts it (one per byte that does not start a valid sequence).
 *
 * @module
 */
import assert from "node:assert/strict";
import { encodeLines } from "../backends/lines.ts";
import { BodyParts, decodeBodyBytes } from "../pipeline/body_parts.ts";
import { decodeLine } from "../pipeline/core/decode.ts";
import { encodeEvent, encodeItem, itemBytes, jsonBytes } from "../pipeline/core/encode.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import { decodeUtf8, toWellFormedUtf8 } from "../pipeline/core/utf8.ts";
import { startDaemon } from "./helpers/daemon.ts";
import { testEvent } from "./helpers/events.ts";

const enc = new TextEncoder();
const strict = new TextDecoder("utf-8", { fatal: true });
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

/** `text`'s UTF-8 with each `#` replaced by the bytes `bad`. */
function withBytes(text: string, bad: number[]): Uint8Array {
  const parts = text.split("#").map((s) => enc.encode(s));
  const out: number[] = [];
  parts.forEach((p, i) => {
    if (i > 0) out.push(...bad);
    out.push(...p);
  });
  return new Uint8Array(out);
}

function assertValidUtf8(b: Uint8Array, what: string): void {
  assert.doesNotThrow(() => strict.decode(b), `${what} is not valid UTF-8: ${hex(b)}`);
}

/** What each kind of sink writes for `env`: log/stdout json line, NATS message, webhook item. */
function outputs(env: Envelope): { line: Uint8Array; message: Uint8Array; item: Uint8Array } {
  return { line: encodeLines([env], "json").bytes, message: jsonBytes(env), item: itemBytes(env) };
}

Deno.test("invalid bytes become U+FFFD one per byte, as Go's decoder does; valid UTF-8 is left alone", () => {
  const cases: [number[], string][] = [
    [[0xff], "\uFFFD"],
    [[0xe2, 0x82, 0x41], "\uFFFD\uFFFDA"], // cut-off sequence: WHATWG would give one U+FFFD
    [[0xed, 0xa0, 0x80], "\uFFFD\uFFFD\uFFFD"], // a surrogate
    [[0xc0, 0xaf], "\uFFFD\uFFFD"], // overlong
    [[0xf4, 0x90, 0x80, 0x80], "\uFFFD\uFFFD\uFFFD\uFFFD"], // above U+10FFFF
    [[0xf0, 0x9f, 0x98], "\uFFFD\uFFFD\uFFFD"], // cut off at the end
  ];
  for (const [bad, want] of cases) {
    const fixed = toWellFormedUtf8(new Uint8Array([0x61, ...bad]));
    assert.equal(strict.decode(fixed), "a" + want, hex(new Uint8Array(bad)));
  }
  const valid = enc.encode("plain é € 😀 \uFFFD");
  assert.equal(toWellFormedUtf8(valid), valid);
  assert.equal(decodeUtf8(valid).bytes, valid);
});

Deno.test("an audit.log line with invalid UTF-8 is written as valid UTF-8 by every sink, the same as if serialized again", () => {
  const template = encodeEvent(testEvent("a", { userAgent: "kubectl/#v1" }));
  const line = withBytes(template, [0xe2, 0x82]);
  const { envelopes } = decodeLine(line);
  assert.equal(envelopes.length, 1);
  const env = envelopes[0];
  assert.equal(env.event.userAgent, "kubectl/\uFFFD\uFFFDv1");
  const expected = encodeEvent(testEvent("a", { userAgent: "kubectl/\uFFFD\uFFFDv1" }));
  const out = outputs(env);
  for (const [what, bytes] of Object.entries(out)) assertValidUtf8(bytes, what);
  assert.equal(strict.decode(out.line), expected + "\n");
  assert.equal(strict.decode(out.message), expected);
  assert.equal(strict.decode(out.item), encodeItem(env.event));
  // A sink that serializes the event again (after a stage changed it) writes the same.
  assert.deepEqual(out.line, encodeLines([{ event: env.event }], "json").bytes);
});

Deno.test("a webhook EventList with invalid UTF-8 keeps every item's bytes right and valid", () => {
  const items = [
    testEvent("a", { userAgent: "caf\u00e9 #" }),
    testEvent("b", { userAgent: "ok \u00e9" }),
    testEvent("c", { userAgent: "#x#" }),
  ];
  const list = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${
    items.map((e) => JSON.stringify(e)).join(",")
  }]}`;
  const body = withBytes(list, [0xff]);
  const want = items.map((e) =>
    encodeEvent({ ...e, userAgent: e.userAgent!.replaceAll("#", "\uFFFD") })
  );
  for (
    const decoded of [
      decodeBodyBytes(body),
      // The piecewise path, as the webhook source takes it.
      (() => {
        const parts = new BodyParts(body, 1);
        const envelopes = [];
        for (let p; (p = parts.next()) !== null;) envelopes.push(...p.envelopes);
        return { envelopes, rejected: [] };
      })(),
    ]
  ) {
    assert.equal(decoded.envelopes.length, 3);
    decoded.envelopes.forEach((env, i) => {
      const out = outputs(env);
      for (const [what, bytes] of Object.entries(out)) assertValidUtf8(bytes, `${what} ${i}`);
      assert.equal(strict.decode(out.line), want[i] + "\n");
      assert.equal(strict.decode(out.item), encodeItem(env.event));
    });
  }
});

Deno.test("daemon: audit.log lines with invalid UTF-8 come out valid and identical on stdout and in the log file", async () => {
  const lines = ["a", "b", "c"].map((id, i) =>
    withBytes(encodeEvent(testEvent(id, { userAgent: "ua-#" })), [[0xff], [0xe2, 0x82], [0xc3]][i])
  );
  const input = new Uint8Array(lines.reduce((n, l) => n + l.length + 1, 0));
  let off = 0;
  for (const l of lines) {
    input.set(l, off);
    off += l.length;
    input[off++] = 0x0a;
  }
  const d = await startDaemon((dir) => `
sources:
  - type: stdin
sinks:
  - type: stdout
    name: console
  - type: log
    name: local
    path: ${dir}/out.log
`, { stdin: input });
  try {
    const { code, stdout } = await d.exited();
    assert.equal(code, 0);
    const file = await Deno.readFile(`${d.dir}/out.log`);
    assertValidUtf8(file, "the log file");
    const expected = ["\uFFFD", "\uFFFD\uFFFD", "\uFFFD"].map((r, i) =>
      encodeEvent(testEvent(["a", "b", "c"][i], { userAgent: `ua-${r}` })) + "\n"
    ).join("");
    assert.equal(strict.decode(file), expected);
    assert.equal(stdout, expected);
  } finally {
    await Deno.remove(d.dir, { recursive: true });
  }
});

Deno.test("a pretty-printed document on stdin with a cut-off multi-byte sequence gets one U+FFFD per byte, as a line would", async () => {
  const { stdinSource } = await import("../pipeline/ingest/stdin.ts");
  const { SourceStats } = await import("../pipeline/core/stats.ts");
  const { silentLogger } = await import("../pipeline/core/log.ts");
  // 0xE2 0x82 is the start of "€" (E2 82 AC) cut short: Go writes two U+FFFD, a browser one.
  const doc = withBytes(
    JSON.stringify({ ...testEvent("doc-1"), annotations: { note: "a#b" } }, null, 2),
    [0xe2, 0x82],
  );
  const stream = stdinSource({ type: "stdin", maxLineBytes: 1 << 20 }, {
    name: "stdin",
    log: silentLogger,
    stats: new SourceStats("stdin"),
    signal: new AbortController().signal,
  }, ReadableStream.from([doc]));
  const notes: string[] = [];
  for await (const chunk of stream) {
    for (const e of chunk.items) notes.push(e.event.annotations?.note ?? "");
    chunk.ack.release();
  }
  assert.deepEqual(notes, ["a\uFFFD\uFFFDb"]);
});
