import assert from "node:assert/strict";
import { legacyLine } from "../backends/legacy.ts";
import type { SinkContext } from "../backends/sink.ts";
import { type ByteWriter, createStdoutSink } from "../backends/stdout.ts";
import { FakeClock } from "../pipeline/core/clock.ts";
import { decodeLine } from "../pipeline/core/decode.ts";
import { encodeEvent } from "../pipeline/core/encode.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { SinkStats } from "../pipeline/core/stats.ts";

import { auditLogLines } from "./data/corpus.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const ctx: SinkContext = {
  name: "out",
  log: silentLogger,
  clock: new FakeClock(),
  stats: new SinkStats("out"),
  signal: new AbortController().signal,
};

/** A writer that takes at most `chunk` bytes per call, yielding between calls. */
class SlowWriter implements ByteWriter {
  readonly calls: Uint8Array[] = [];
  constructor(readonly chunk = 7) {}
  async write(p: Uint8Array): Promise<number> {
    await Promise.resolve(); // let other writers run between chunks
    const n = Math.min(p.length, this.chunk);
    this.calls.push(p.slice(0, n));
    return n;
  }
  get text(): string {
    let s = "";
    for (const c of this.calls) s += dec.decode(c, { stream: true });
    return s + dec.decode();
  }
}

function realLines(n: number): { lines: string[]; envelopes: Envelope[] } {
  const lines = auditLogLines(n);
  return { lines, envelopes: lines.flatMap((l) => decodeLine(enc.encode(l)).envelopes) };
}

function built(id: string): Envelope {
  return {
    event: {
      level: "None",
      auditID: id,
      stage: "Panic",
      requestURI: "/",
      verb: "get",
      user: {},
      requestReceivedTimestamp: null,
      stageTimestamp: null,
    },
  };
}

Deno.test("stdout sink writes json lines, the original bytes when present", async () => {
  const out = new SlowWriter(1 << 20);
  const sink = createStdoutSink({ format: "json" }, ctx, out);
  const { lines, envelopes } = realLines(5);
  await sink.write(envelopes);
  await sink.write([built("b")]);
  await sink.close();
  assert.equal(out.text, lines.join("\n") + "\n" + encodeEvent(built("b").event) + "\n");
});

Deno.test("stdout sink writes legacy lines", async () => {
  const out = new SlowWriter(1 << 20);
  const sink = createStdoutSink({ format: "legacy" }, ctx, out);
  const { envelopes } = realLines(3);
  await sink.write(envelopes);
  await sink.close();
  assert.equal(out.text, envelopes.map((e) => legacyLine(e.event) + "\n").join(""));
});

Deno.test("a batch is one buffer written fully even when the writer takes a few bytes", async () => {
  const out = new SlowWriter(7);
  const sink = createStdoutSink({ format: "json" }, ctx, out);
  const { lines, envelopes } = realLines(4);
  await sink.write(envelopes);
  await sink.close();
  assert.equal(out.text, lines.join("\n") + "\n");
  assert.ok(out.calls.length > 4);
});

Deno.test("a batch that fits the writer goes out in one write call", async () => {
  const out = new SlowWriter(1 << 20);
  const sink = createStdoutSink({ format: "json" }, ctx, out);
  const { envelopes } = realLines(10);
  await sink.write(envelopes);
  await sink.close();
  assert.equal(out.calls.length, 1);
});

Deno.test("concurrent batches from two sinks on one writer never interleave", async () => {
  const out = new SlowWriter(5);
  const a = createStdoutSink({ format: "legacy" }, ctx, out);
  const b = createStdoutSink({ format: "json" }, ctx, out);
  const batches = [0, 1, 2, 3].map((i) => [built(`a${i}`), built(`b${i}`)]);
  await Promise.all([
    a.write(batches[0]),
    b.write(batches[1]),
    a.write(batches[2]),
    b.write(batches[3]),
  ]);
  await Promise.all([a.close(), b.close()]);
  const expected = [
    batches[0].map((e) => legacyLine(e.event) + "\n").join(""),
    batches[1].map((e) => encodeEvent(e.event) + "\n").join(""),
    batches[2].map((e) => legacyLine(e.event) + "\n").join(""),
    batches[3].map((e) => encodeEvent(e.event) + "\n").join(""),
  ].join("");
  assert.equal(out.text, expected);
});

Deno.test("a failing writer rejects the batch and later batches still go out", async () => {
  let fail = true;
  const chunks: Uint8Array[] = [];
  const out: ByteWriter = {
    write(p) {
      if (fail) return Promise.reject(new Error("Broken pipe (os error 32)"));
      chunks.push(p.slice());
      return Promise.resolve(p.length);
    },
  };
  const sink = createStdoutSink({ format: "json" }, ctx, out);
  await assert.rejects(sink.write([built("a")]), {
    message: "write stdout: Broken pipe (os error 32)",
  });
  fail = false;
  await sink.write([built("b")]);
  await sink.close();
  assert.equal(dec.decode(chunks[0]), encodeEvent(built("b").event) + "\n");
});

Deno.test("a writer that takes nothing fails instead of looping", async () => {
  const sink = createStdoutSink({ format: "json" }, ctx, { write: () => Promise.resolve(0) });
  await assert.rejects(sink.write([built("a")]), /^Error: write stdout: short write/);
});

Deno.test("close waits for a pending batch and later writes reject", async () => {
  const out = new SlowWriter(3);
  const sink = createStdoutSink({ format: "json" }, ctx, out);
  const pending = sink.write([built("a")]);
  await sink.close();
  assert.equal(out.text, encodeEvent(built("a").event) + "\n");
  await pending;
  await assert.rejects(sink.write([built("b")]), /closed/);
});

Deno.test("an empty batch writes nothing", async () => {
  const out = new SlowWriter();
  const sink = createStdoutSink({ format: "json" }, ctx, out);
  await sink.write([]);
  await sink.close();
  assert.equal(out.calls.length, 0);
});

Deno.test("after a write fails part way, the next batch ends the partial line first, so its lines are whole", async () => {
  const calls: Uint8Array[] = [];
  let failNext = false;
  const out: ByteWriter = {
    write(p) {
      if (failNext) return Promise.reject(new Error("No space left on device (os error 28)"));
      const n = Math.min(p.length, 10);
      calls.push(p.slice(0, n));
      failNext = calls.length === 1; // the first call takes 10 bytes, the second fails
      return Promise.resolve(n);
    },
  };
  const sink = createStdoutSink({ format: "json" }, ctx, out);
  await assert.rejects(sink.write([built("a")]), /write stdout: No space left/);
  failNext = false;
  await sink.write([built("b"), built("c")]);
  await sink.close();
  const lines = dec.decode(new Uint8Array(calls.flatMap((c) => [...c]))).split("\n");
  assert.equal(lines.length, 4); // the torn line, b, c, and "" after the last newline
  assert.deepEqual(lines.slice(1, 3).map((l) => JSON.parse(l).auditID), ["b", "c"]);
  assert.equal(lines[3], "");
});
