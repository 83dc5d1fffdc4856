import { assert, assertEquals } from "./helpers/assert.ts";
import { testEnvelope } from "./helpers/events.ts";
import { Ack } from "../pipeline/core/ack.ts";
import type { Batch, Chunk, Envelope } from "../pipeline/core/envelope.ts";
import { coalesceStage } from "../pipeline/stages/coalesce.ts";

const env = (id: string): Envelope => testEnvelope(id);
const chunk = (...ids: string[]): Chunk => ({ items: ids.map(env), ack: new Ack() });
const ids = (b: Batch) => b.items.map((e) => e.event.auditID);

Deno.test("coalesce: chunks that queue while the sink writes go out in one batch, each ack listed once", async () => {
  const stage = coalesceStage(100);
  const w = stage.writable.getWriter();
  const r = stage.readable.getReader();
  const c1 = chunk("a"), c2 = chunk("b", "c"), c3 = chunk("d");
  await w.write(c1);
  const first = await r.read();
  assertEquals(ids(first.value!), ["a"]);
  // The sink is busy with the first batch; two more requests arrive.
  await w.write(c2);
  await w.write(c3);
  const second = await r.read();
  assertEquals(ids(second.value!), ["b", "c", "d"]);
  assertEquals(second.value!.acks, [c2.ack, c3.ack]);
  await w.close();
  assert((await r.read()).done);
});

Deno.test("coalesce: a full queue makes writers wait until the sink takes it", async () => {
  const stage = coalesceStage(3);
  const w = stage.writable.getWriter();
  const r = stage.readable.getReader();
  await w.write(chunk("a", "b"));
  let third = false;
  const p = w.write(chunk("c", "d")).then(() => third = true);
  await new Promise((res) => setTimeout(res, 5));
  assertEquals(third, false);
  assertEquals(ids((await r.read()).value!), ["a", "b"]);
  await p;
  assertEquals(ids((await r.read()).value!), ["c", "d"]);
});

Deno.test("coalesce: cancelling fails the acks of chunks still queued", async () => {
  const stage = coalesceStage(10);
  const w = stage.writable.getWriter();
  const c = chunk("a");
  await w.write(c);
  await stage.readable.cancel(new Error("sink gone"));
  assertEquals((await c.ack.settled)?.message, "sink gone");
});
