/**
 * Issue 14 (ack p99 0.6 s at 4,000 events/s): an append never waits for a delivered segment
 * to be deleted. When the reader has delivered all of the active segment, the next append
 * seals it and starts a new one so it can be deleted; that deletion (an unlink of up to a
 * segment's size, tens of ms and more on a busy disk) runs beside the append, not before it.
 */
import assert from "node:assert/strict";
import { DiskBuffer } from "../pipeline/diskbuffer/store.ts";
import { listSegments, segmentPath } from "../pipeline/diskbuffer/layout.ts";
import { waitFor } from "./helpers/wait.ts";
import { eventRecord, readAll, segmentBytes } from "./diskbuffer_helpers.ts";

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
    // Two records hold more than a quarter of a segment: delivered, it is rolled.
    segmentBytes: 2048,
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
    // The folder's fsync after a segment is made is observed beside the segment's own: the
    // first segment (made in line) and the next (made ahead), perhaps the one after it too.
    const dirSyncs = buf.stats.fsync.series.get("dir")?.counts.at(-1) ?? 0;
    assert.ok(dirSyncs >= 2, `the segments made synced the folder (${dirSyncs})`);
  } finally {
    clearTimeout(safety);
    gate.resolve();
    await buf.close();
  }
  // close waits for the deletion it started.
  await assert.rejects(Deno.stat(segmentPath(dir, seg)), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("disk buffer: appends that find a small active segment fully delivered keep writing to it instead of starting a segment each", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskbuf-stall-" });
  // 64 KiB segments: the rolls seen below are the quarter-full ones only.
  const buf = await DiskBuffer.open({ path: dir, maxBytes: 64 << 20, segmentBytes: 64 * 1024 });
  try {
    const segments = new Set<number>();
    let bytes = 0;
    for (let i = 0; i < 100; i++) {
      await buf.append([eventRecord(i)]);
      const got = await readAll(buf);
      assert.equal(got.length, 1);
      segments.add(got[0].segment);
      bytes += got[0].end - got[0].offset;
      await buf.markDelivered(got[0]);
    }
    // A reader that keeps up used to make every append start a segment (100 of them).
    const quarter = 64 * 1024 / 4;
    assert.ok(
      segments.size <= Math.ceil(bytes / quarter) + 1,
      `${segments.size} segments for ${bytes} bytes appended one record at a time`,
    );
    assert.equal(buf.stats.events, 0);
  } finally {
    await buf.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("disk buffer: a delivered active segment is rolled and deleted before an append that needs its space", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskbuf-stall-" });
  const maxBytes = 8 * 1024;
  // A big segment: the delivered one stays under a quarter of it, rolled only for space.
  const buf = await DiskBuffer.open({ path: dir, maxBytes, segmentBytes: maxBytes });
  try {
    await buf.append([eventRecord(0), eventRecord(1)]);
    const got = await readAll(buf);
    await buf.markDelivered(got.at(-1)!);
    // 978 bytes delivered + these 7,395 exceed maxBytes: without the roll it would be "full".
    const big = Array.from({ length: 15 }, (_, i) => eventRecord(100 + i));
    assert.equal(await buf.append(big), "appended");
    assert.ok(await segmentBytes(dir) <= maxBytes);
    assert.equal(buf.stats.bytes, await segmentBytes(dir));
    assert.deepEqual((await readAll(buf)).map((r) => r.auditID), big.map((r) => r.auditID));
  } finally {
    await buf.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("disk buffer: the next segment is made ahead and a roll writes into it; empty, it is neither listed nor counted, and close or open removes it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskbuf-spare-" });
  const exists = (id: number) => Deno.stat(segmentPath(dir, id)).then(() => true, () => false);
  let buf = await DiskBuffer.open({ path: dir, maxBytes: 64 << 20, segmentBytes: 2048 });
  try {
    await buf.append([eventRecord(0, 1500)]);
    const [first] = await readAll(buf);
    const next = first.segment + 1;
    await waitFor("the next segment made ahead", () => exists(next));
    const made = await Deno.stat(segmentPath(dir, next));
    assert.equal(made.size, 0);
    assert.deepEqual(await listSegments(dir), [first.segment], "an empty segment is not listed");
    assert.equal(buf.stats.segments, 1);
    assert.equal(buf.stats.bytes, (await Deno.stat(segmentPath(dir, first.segment))).size);
    // Two records exceed 2048 bytes: the roll takes the file made ahead (same inode), not a new one.
    await buf.append([eventRecord(1, 1500)]);
    const rolled = (await readAll(buf)).at(-1)!;
    assert.equal(rolled.segment, next);
    assert.equal((await Deno.stat(segmentPath(dir, next))).ino, made.ino);
    await waitFor("the segment after it made ahead", () => exists(next + 1));
    await buf.close();
    assert.equal(await exists(next + 1), false, "close removes the unused segment");
    // One left by a crash: open removes it and appends after the segments that hold records.
    await Deno.writeFile(segmentPath(dir, next + 5), new Uint8Array());
    buf = await DiskBuffer.open({ path: dir, maxBytes: 64 << 20, segmentBytes: 2048 });
    assert.equal(await exists(next + 5), false, "open removes an empty segment");
    assert.equal(buf.stats.segments, 2);
    assert.equal(buf.stats.events, 2);
    assert.equal(buf.recovery.damage.length, 0);
  } finally {
    await buf.close();
    await Deno.remove(dir, { recursive: true });
  }
});
