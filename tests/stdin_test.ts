import assert from "node:assert/strict";
import { stdinSource } from "../pipeline/ingest/stdin.ts";
import type { Chunk } from "../pipeline/core/envelope.ts";
import { SourceStats } from "../pipeline/core/stats.ts";
import { createLogger } from "../pipeline/core/log.ts";

import { auditLogLines } from "./data/corpus.ts";

const realLines = auditLogLines();
const enc = new TextEncoder();

function input(parts: string[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(parts.map((p) => enc.encode(p)));
}

function run(
  parts: string[] | ReadableStream<Uint8Array>,
  opts: { maxLineBytes?: number; maxDocumentBytes?: number; signal?: AbortSignal } = {},
) {
  const stats = new SourceStats("stdin");
  const logs: Record<string, unknown>[] = [];
  const stream = stdinSource({ type: "stdin", maxLineBytes: opts.maxLineBytes ?? 65536 }, {
    name: "stdin",
    log: createLogger("debug", (l) => logs.push(JSON.parse(l))),
    stats,
    signal: opts.signal ?? new AbortController().signal,
    maxDocumentBytes: opts.maxDocumentBytes,
  }, Array.isArray(parts) ? input(parts) : parts);
  return { stream, stats, logs };
}

async function drain(stream: ReadableStream<Chunk>): Promise<{ ids: string[]; chunks: number }> {
  const ids: string[] = [];
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    for (const e of chunk.items) ids.push(`${e.event.auditID}/${e.event.stage}`);
    chunk.ack.release();
  }
  return { ids, chunks };
}

function expected(lines: string[]): string[] {
  return lines.map((l) => {
    const e = JSON.parse(l);
    return `${e.auditID}/${e.stage}`;
  });
}

Deno.test("stdin: JSON lines split across reads arrive in order and EOF closes the stream", async () => {
  const ls = realLines.slice(0, 50);
  const text = ls.join("\n") + "\n";
  const parts: string[] = [];
  for (let at = 0; at < text.length; at += 1000) parts.push(text.slice(at, at + 1000));
  const { stream, stats } = run(parts);
  assert.equal(stats.ready, true);
  const { ids, chunks } = await drain(stream);
  assert.deepEqual(ids, expected(ls));
  assert.equal(stats.events, 50);
  assert.ok(chunks > 1, "one chunk per read");
  assert.equal(stats.ready, false);
});

Deno.test("stdin: a last line without a newline is delivered at EOF", async () => {
  const ls = realLines.slice(0, 2);
  const { stream } = run([ls[0] + "\r\n" + ls[1]]);
  assert.deepEqual((await drain(stream)).ids, expected(ls));
});

Deno.test("stdin: a pretty-printed multi-line EventList document works", async () => {
  const items = realLines.slice(0, 5).map((l) => JSON.parse(l));
  const doc = JSON.stringify(
    { kind: "EventList", apiVersion: "audit.k8s.io/v1", metadata: {}, items },
    null,
    2,
  );
  const parts = [doc.slice(0, 10), doc.slice(10, 3000), doc.slice(3000)];
  const { stream, stats } = run(parts);
  assert.deepEqual((await drain(stream)).ids, expected(realLines.slice(0, 5)));
  assert.equal(stats.rejected.size, 0);
});

Deno.test("stdin: a pretty-printed single event and a pretty JSON array work", async () => {
  const one = JSON.stringify(JSON.parse(realLines[0]), null, 2);
  assert.deepEqual((await drain(run([one + "\n"]).stream)).ids, expected([realLines[0]]));
  const arr = JSON.stringify(realLines.slice(0, 3).map((l) => JSON.parse(l)), null, 1);
  assert.deepEqual((await drain(run([arr]).stream)).ids, expected(realLines.slice(0, 3)));
});

Deno.test("stdin: an EventList on one line yields all its items", async () => {
  const items = realLines.slice(0, 3).map((l) => JSON.parse(l));
  const line = JSON.stringify({ kind: "EventList", apiVersion: "audit.k8s.io/v1", items });
  assert.deepEqual((await drain(run([line + "\n"]).stream)).ids, expected(realLines.slice(0, 3)));
});

Deno.test("stdin: a broken first line that looks like JSON does not swallow the lines after it", async () => {
  const ls = realLines.slice(0, 3);
  const { stream, stats } = run([`{"kind":"Event", broken\n` + ls.join("\n") + "\n"]);
  assert.deepEqual((await drain(stream)).ids, expected(ls));
  assert.equal(stats.rejected.get("invalid_event"), 1);
});

Deno.test("stdin: a document over the size limit is read as lines instead", async () => {
  const ls = realLines.slice(0, 20);
  const { stream, stats, logs } = run(["{\n", ...ls.map((l) => l + "\n")], {
    maxDocumentBytes: 4096,
  });
  assert.deepEqual((await drain(stream)).ids, expected(ls));
  assert.equal(stats.rejected.get("invalid_event"), 1);
  assert.ok(
    logs.some((l) => l.msg === "input is larger than a document may be; reading it as lines"),
  );
});

Deno.test("stdin: invalid and over-long lines are counted, the rest goes on", async () => {
  const ls = realLines.slice(0, 2);
  const { stream, stats } = run([
    ls[0] + "\nnot json\n" + "x".repeat(5000) + "\n\n" + ls[1] + "\n",
  ], { maxLineBytes: 2000 });
  assert.deepEqual((await drain(stream)).ids, expected(ls));
  assert.equal(stats.rejected.get("invalid_event"), 1);
  assert.equal(stats.rejected.get("too_long"), 1);
});

Deno.test("stdin: aborting closes the stream while input is still open", async () => {
  const ac = new AbortController();
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(enc.encode(realLines[0] + "\n"));
    },
    cancel() {
      cancelled = true;
    },
  });
  const { stream } = run(endless, { signal: ac.signal });
  const reader = stream.getReader();
  const first = await reader.read();
  assert.equal(first.value?.items.length, 1);
  first.value?.ack.release();
  const next = reader.read();
  ac.abort();
  assert.equal((await next).done, true);
  assert.equal(cancelled, true);
});

Deno.test("stdin: the real stdin of a process is read to EOF and the stream closes", async () => {
  const mod = new URL("../pipeline/ingest/stdin.ts", import.meta.url).href;
  const stats = new URL("../pipeline/core/stats.ts", import.meta.url).href;
  const logm = new URL("../pipeline/core/log.ts", import.meta.url).href;
  const code = `
    import { stdinSource } from "${mod}";
    import { SourceStats } from "${stats}";
    import { silentLogger } from "${logm}";
    const s = stdinSource({ type: "stdin", maxLineBytes: 1 << 20 },
      { name: "stdin", log: silentLogger, stats: new SourceStats("stdin"),
        signal: new AbortController().signal });
    let n = 0;
    for await (const c of s) { n += c.items.length; c.ack.release(); }
    console.log(n);
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(enc.encode(realLines.slice(0, 100).join("\n") + "\n"));
  await w.close();
  const out = await child.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "100");
});
