import assert from "node:assert/strict";
import { LineSplitter, type TooLongLine } from "../pipeline/ingest/lines.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function collect(max: number, chunks: string[], opts: { skipFirstLine?: boolean } = {}) {
  const lines: [string, number][] = [];
  const tooLong: TooLongLine[] = [];
  const s = new LineSplitter({
    maxLineBytes: max,
    onTooLong: (t) => tooLong.push(t),
    ...opts,
  });
  for (const c of chunks) s.push(enc.encode(c), (l, off) => lines.push([dec.decode(l), off]));
  return { lines, tooLong, s };
}

Deno.test("lines split across reads come out whole with their offsets", () => {
  const { lines, s } = collect(100, ["ab", "c\nde", "f\n", "g"]);
  assert.deepEqual(lines, [["abc", 0], ["def", 4]]);
  assert.equal(s.consumed, 8);
  assert.equal(s.pending, 1);
  assert.equal(s.offset, 9);
});

Deno.test("a CRLF line end is removed, also when the CR and LF arrive in different reads", () => {
  const { lines } = collect(3, ["abc\r", "\nxy\r\n"]);
  assert.deepEqual(lines, [["abc", 0], ["xy", 5]]);
});

Deno.test("empty lines are handed out as empty", () => {
  const { lines } = collect(10, ["\n\na\n"]);
  assert.deepEqual(lines, [["", 0], ["", 1], ["a", 2]]);
});

Deno.test("a line over the limit is reported once and skipped, later lines still come", () => {
  const long = "x".repeat(50);
  const { lines, tooLong, s } = collect(10, [
    "ok\n",
    long.slice(0, 20),
    long.slice(20),
    "\nnext\n",
  ]);
  assert.deepEqual(lines, [["ok", 0], ["next", 54]]);
  assert.equal(tooLong.length, 1);
  assert.equal(tooLong[0].offset, 3);
  assert.ok(tooLong[0].bytes > 10);
  assert.equal(s.consumed, 59);
});

Deno.test("a line over the limit inside one read is reported and skipped", () => {
  const { lines, tooLong } = collect(4, ["a\n12345\nb\n"]);
  assert.deepEqual(lines, [["a", 0], ["b", 8]]);
  assert.deepEqual(tooLong, [{ offset: 2, bytes: 5 }]);
});

Deno.test("a line of exactly the limit passes, CRLF included", () => {
  const { lines, tooLong } = collect(4, ["1234\r\n", "12", "34\n"]);
  assert.deepEqual(lines, [["1234", 0], ["1234", 6]]);
  assert.equal(tooLong.length, 0);
});

Deno.test("a skipped long line holds no bytes while it goes on", () => {
  const s = new LineSplitter({ maxLineBytes: 8, onTooLong: () => {} });
  for (let i = 0; i < 1000; i++) s.push(new Uint8Array(1024).fill(0x61), () => {});
  // pending counts bytes since the line start, but nothing is buffered; the end comes fine
  const got: string[] = [];
  s.push(enc.encode("zz\nok\n"), (l) => got.push(dec.decode(l)));
  assert.deepEqual(got, ["ok"]);
  assert.equal(s.pending, 0);
});

Deno.test("flush returns the unterminated last line and then nothing", () => {
  const { s } = collect(100, ["a\nbc", "d\r"]);
  const last = s.flush();
  assert.ok(last);
  assert.equal(dec.decode(last.line), "bcd");
  assert.equal(last.offset, 2);
  assert.equal(s.consumed, 6);
  assert.equal(s.flush(), null);
});

Deno.test("skipFirstLine drops the torn first line silently", () => {
  const { lines, tooLong } = collect(100, ["tail of a line", "\nwhole\n"], {
    skipFirstLine: true,
  });
  assert.deepEqual(lines, [["whole", 15]]);
  assert.equal(tooLong.length, 0);
});

Deno.test("a starting offset makes offsets absolute", () => {
  const s = new LineSplitter({ maxLineBytes: 10, offset: 1000 });
  const offs: number[] = [];
  s.push(enc.encode("a\nb\n"), (_l, off) => offs.push(off));
  assert.deepEqual(offs, [1000, 1002]);
  assert.equal(s.consumed, 1004);
});

Deno.test("lines are views into the pushed read, not copies, when they fit in it", () => {
  const buf = enc.encode("abc\n");
  const s = new LineSplitter({ maxLineBytes: 10 });
  let line: Uint8Array | undefined;
  s.push(buf, (l) => line = l);
  assert.equal(line!.buffer, buf.buffer);
});
