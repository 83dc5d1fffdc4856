import assert from "node:assert/strict";
import { pullStream } from "../pipeline/ingest/pull_stream.ts";
import { Ack } from "../pipeline/core/ack.ts";
import type { Chunk } from "../pipeline/core/envelope.ts";

function chunk(): Chunk {
  return { items: [], ack: new Ack() };
}

Deno.test("pullStream reads only when asked: one step per pull, nulls stepped over", async () => {
  let steps = 0;
  const stream = pullStream({
    signal: new AbortController().signal,
    stop: new AbortController(),
    next: () => Promise.resolve(++steps % 2 === 0 ? chunk() : null),
    finish: () => Promise.resolve(),
  });
  const reader = stream.getReader();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(steps, 0); // nothing read ahead
  await reader.read();
  assert.equal(steps, 2);
  await reader.cancel();
  await stream.finished;
});

Deno.test("pullStream on abort stops the step in progress, closes the stream, then finishes once", async () => {
  const ac = new AbortController();
  const stop = new AbortController();
  const order: string[] = [];
  const stream = pullStream({
    signal: ac.signal,
    stop,
    // Waits until stopping, as a source waits for data.
    next: () =>
      new Promise((r) =>
        stop.signal.addEventListener("abort", () => {
          order.push("step ended");
          r(null);
        })
      ),
    finish: () => {
      order.push("finish");
      return Promise.resolve();
    },
  });
  const reader = stream.getReader();
  const read = reader.read();
  await new Promise((r) => setTimeout(r, 10));
  ac.abort();
  assert.equal((await read).done, true);
  await stream.finished;
  assert.deepEqual(order, ["step ended", "finish"]);
});

Deno.test("pullStream fails the ack of a chunk the cancelled stream can no longer take", async () => {
  const made = chunk();
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const stream = pullStream({
    signal: new AbortController().signal,
    stop: new AbortController(),
    next: async () => {
      await gate;
      return made;
    },
    finish: () => Promise.resolve(),
  });
  const reader = stream.getReader();
  void reader.read().catch(() => {});
  await new Promise((r) => setTimeout(r, 10));
  const cancelled = reader.cancel();
  release();
  await cancelled;
  await stream.finished;
  const outcome = await made.ack.settled;
  assert.ok(outcome instanceof Error);
});
