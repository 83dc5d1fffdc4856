/**
 * Issue 14 (ack p99 0.6 s at 4,000 events/s): an append never waits for a delivered segment
 * to be deleted. When the reader has delivered all of the active segment, the next append
 * seals it and starts a new one so it can be deleted; that deletion (an unlink of up to a
 * segment's size, tens of ms and more on a busy disk) runs beside the append, not before it.
 */
import assert from "node:assert/strict";
import { DiskBuffer } from "../pipeline/diskbuffer/store.ts";
import { segmentPath } from "../pipeline/diskbuffer/layout.ts";
import { eventRecord, readAll } from "./diskbuffer_helpers.ts";

Deno.test("disk buffer: an append that rolls a fully delivered segment does not wait for its deletion", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskbuf-stall-" });
  const held: string[] = [];
  const order: string[] = [];
  const gate = Promise.withResolvers<void>();
  // Only a safety net so that a buffer that does wait still ends this test (and fails it).
  const safety = setTimeout(() => {
    order.push("deletion released");
    gate.resolve();
  }, 10_000);
  const buf = await DiskBuffer.open({
    path: dir,
    maxBytes: 64 << 20,
    beforeRemove: (path) => {
      held.push(path);
      return gate.promise;
    },
  });
  let seg = -1;
  try {
    await buf.append([eventRecord(0), eventRecord(1)]);
    const first = await readAll(buf);
    assert.equal(first.length, 2);
    await buf.markDelivered(first.at(-1)!);
    seg = first[0].segment;
    assert.deepEqual(held, [], "the active segment is not deleted by a mark");

    const r = await buf.append([eventRecord(2)]);
    order.push(`append ${r}`);
    assert.deepEqual(held, [segmentPath(dir, seg)], "the delivered segment's deletion started");
    assert.deepEqual(order, ["append appended"], "the append resolved while the deletion was held");
    const rest = await readAll(buf);
    assert.deepEqual(rest.map((x) => x.auditID), [eventRecord(2).auditID]);
    assert.notEqual(rest[0].segment, seg);
    // The folder's fsync after a segment is started is observed beside the segment's own.
    const dirSyncs = buf.stats.fsync.series.get("dir")?.counts.at(-1);
    assert.equal(dirSyncs, 2, "the first segment and the rolled one each synced the folder");
  } finally {
    clearTimeout(safety);
    gate.resolve();
    await buf.close();
  }
  // close waits for the deletion it started.
  await assert.rejects(Deno.stat(segmentPath(dir, seg)), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});
