/**
 * Disk buffer recovery on open: flipped bytes and records cut mid-way are found by the CRC,
 * cut off, counted and reported with segment and offset; everything intact is delivered.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DiskBuffer } from "../pipeline/diskbuffer/store.ts";
import { listSegments, segmentPath } from "../pipeline/diskbuffer/layout.ts";
import { createLogger } from "../pipeline/core/log.ts";
import { eventRecord, readAll } from "./diskbuffer_helpers.ts";

const tmp = () => Deno.makeTempDir({ prefix: "auditpipe-diskbuf-" });

/** A buffer of 4 KiB segments holding events 0..n-1; returns where each record is. */
async function filled(dir: string, n: number) {
  const buf = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24, segmentBytes: 4096 });
  for (let i = 0; i < n; i += 10) {
    await buf.append(Array.from({ length: 10 }, (_, k) => eventRecord(i + k)));
  }
  const records = await readAll(buf);
  await buf.close();
  return records;
}

Deno.test("disk buffer recovery: flipped bytes in one segment and a record cut in another are cut off, counted and logged; the rest is delivered", async () => {
  const dir = await tmp();
  const records = await filled(dir, 100);
  const ids = await listSegments(dir);
  assert.ok(ids.length >= 5, `${ids.length} segments`);
  const inSeg = (id: number) => records.filter((r) => r.segment === id);
  // Segment B: flip bytes inside its third record's event.
  const b = ids[1];
  const flipped = inSeg(b)[2];
  const pathB = segmentPath(dir, b);
  const bytesB = await Deno.readFile(pathB);
  const mid = flipped.offset + 40;
  bytesB[mid] ^= 0xff;
  bytesB[mid + 1] ^= 0x55;
  await Deno.writeFile(pathB, bytesB);
  // Segment C: cut mid-record (a torn write).
  const c = ids[3];
  const cut = inSeg(c)[4];
  const pathC = segmentPath(dir, c);
  await Deno.truncate(pathC, cut.offset + 20);

  const logs: Record<string, unknown>[] = [];
  const logger = createLogger("info", (line) => logs.push(JSON.parse(line)));
  const buf = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24, segmentBytes: 4096, logger });
  assert.deepEqual(
    buf.recovery.damage.map((d) => [d.segment, d.offset, d.reason]),
    [[b, flipped.offset, "CRC mismatch"], [c, cut.offset, "record cut off"]],
  );
  assert.equal(buf.stats.corruptRecords, 2);
  assert.equal(buf.stats.corruptBytes, (bytesB.length - flipped.offset) + 20);
  const warned = logs.filter((l) => l.level === "warn");
  assert.equal(warned.length, 2);
  assert.equal(warned[0].segment, b);
  assert.equal(warned[0].offset, flipped.offset);
  assert.equal(warned[1].path, pathC);
  // Segments were cut at the last intact record.
  assert.equal((await Deno.stat(pathB)).size, flipped.offset);
  assert.equal((await Deno.stat(pathC)).size, cut.offset);

  const lost = new Set(
    records.filter((r) =>
      (r.segment === b && r.offset >= flipped.offset) || (r.segment === c && r.offset >= cut.offset)
    ).map((r) => r.auditID),
  );
  const expected = records.filter((r) => !lost.has(r.auditID)).map((r) => r.auditID);
  const got = await readAll(buf);
  assert.deepEqual(got.map((r) => r.auditID), expected);
  assert.ok(got.some((r) => r.segment === ids.at(-1)), "later segments are still delivered");
  assert.equal(buf.stats.events, expected.length);
  // Appends after recovery go after what was recovered.
  await buf.append([eventRecord(1000)]);
  assert.equal((await readAll(buf)).at(-1)!.auditID, eventRecord(1000).auditID);
  await buf.close();

  const again = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24 });
  assert.deepEqual(again.recovery.damage, [], "the damage was cut off for good");
  assert.equal(again.stats.events, expected.length + 1);
  await again.close();
});

Deno.test("disk buffer recovery: a torn tail after the last record is cut off and new records follow intact ones", async () => {
  const dir = await tmp();
  const records = await filled(dir, 20);
  const last = (await listSegments(dir)).at(-1)!;
  const path = segmentPath(dir, last);
  const f = await Deno.open(path, { append: true });
  await f.write(new Uint8Array([0x40, 0, 0, 0, 1, 2, 3])); // a header cut short
  f.close();
  const buf = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24 });
  assert.equal(buf.recovery.damage.length, 1);
  assert.equal(buf.recovery.damage[0].segment, last);
  assert.equal(buf.recovery.damage[0].bytes, 7);
  await buf.append([eventRecord(500)]);
  const got = await readAll(buf);
  assert.deepEqual(
    got.map((r) => r.auditID),
    [...records.map((r) => r.auditID), eventRecord(500).auditID],
  );
  await buf.close();
});

Deno.test("disk buffer recovery: zeroed bytes (a preallocated or lost page) are not read as records", async () => {
  const dir = await tmp();
  const records = await filled(dir, 10);
  const path = segmentPath(dir, (await listSegments(dir)).at(-1)!);
  const f = await Deno.open(path, { append: true });
  await f.write(new Uint8Array(4096));
  f.close();
  const buf = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24 });
  assert.equal(buf.recovery.damage.length, 1);
  assert.equal((await readAll(buf)).length, records.length);
  await buf.close();
});

Deno.test("disk buffer recovery: an unreadable cursor delivers everything again instead of losing it", async () => {
  const dir = await tmp();
  let buf = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24, segmentBytes: 4096 });
  await buf.append(Array.from({ length: 30 }, (_, i) => eventRecord(i)));
  const got = await readAll(buf);
  await buf.markDelivered(got[5]);
  await buf.close();
  await Deno.writeTextFile(join(dir, "cursor.json"), '{"segm');
  buf = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24 });
  assert.match(buf.recovery.cursorInvalid ?? "", /JSON/);
  const again = await readAll(buf);
  // Everything still on disk is read again (the first segment may have been deleted).
  assert.ok(again.length >= 24);
  assert.equal(again.at(-1)!.auditID, got.at(-1)!.auditID);
  await buf.close();
});

Deno.test("disk buffer recovery: a segment left behind the cursor by a crash before its deletion is deleted on open", async () => {
  const dir = await tmp();
  let buf = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24, segmentBytes: 2048 });
  await buf.append(Array.from({ length: 30 }, (_, i) => eventRecord(i)));
  const got = await readAll(buf);
  const first = got[0].segment;
  const copy = await Deno.readFile(segmentPath(dir, first));
  await buf.markDelivered(got[20]);
  await buf.close();
  await Deno.writeFile(segmentPath(dir, first), copy); // as if the delete never happened
  buf = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24 });
  assert.ok(!(await listSegments(dir)).includes(first));
  assert.deepEqual((await readAll(buf)).map((r) => r.auditID), got.slice(21).map((r) => r.auditID));
  await buf.close();
});

Deno.test("disk buffer: a record that goes bad after open is skipped to the end of its segment, counted and logged with segment and offset; reading goes on and the count of undelivered events ends at 0", async () => {
  const dir = await tmp();
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger("info", (line) => logs.push(JSON.parse(line)));
  const buf = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24, segmentBytes: 4096, logger });
  for (let i = 0; i < 100; i += 10) {
    await buf.append(Array.from({ length: 10 }, (_, k) => eventRecord(i + k)));
  }
  const before = await readAll(buf);
  const ids = [...new Set(before.map((r) => r.segment))];
  assert.ok(ids.length >= 4, `${ids.length} segments`);
  // A sealed segment and the active one both go bad while the buffer is open.
  const sealed = before.filter((r) => r.segment === ids[1])[2];
  const active = before.filter((r) => r.segment === ids.at(-1))[1];
  for (const r of [sealed, active]) {
    const path = segmentPath(dir, r.segment);
    const bytes = await Deno.readFile(path);
    bytes[r.offset + 40] ^= 0xff;
    await Deno.writeFile(path, bytes);
  }
  const damaged: number[][] = [];
  const bothSeen = Promise.withResolvers<void>();
  const got: string[] = [];
  const ac = new AbortController();
  const reader = (async () => {
    for await (
      const r of buf.read({
        follow: true,
        signal: ac.signal,
        onDamage: (d) => {
          if (damaged.push([d.segment, d.offset, d.records]) === 2) bothSeen.resolve();
        },
      })
    ) {
      got.push(r.auditID);
      if (r.auditID === eventRecord(100).auditID) ac.abort();
      await buf.markDelivered(r);
    }
  })();
  // Appended once the damage was skipped: read (in the active segment, after the damage).
  await bothSeen.promise;
  await buf.append([eventRecord(100)]);
  await reader;
  const lost = before.filter((r) =>
    (r.segment === sealed.segment && r.offset >= sealed.offset) ||
    (r.segment === active.segment && r.offset >= active.offset)
  );
  const lostIds = new Set(lost.map((r) => r.auditID));
  assert.deepEqual(got, [
    ...before.filter((r) => !lostIds.has(r.auditID)).map((r) => r.auditID),
    eventRecord(100).auditID,
  ]);
  const lostIn = (id: number) => lost.filter((r) => r.segment === id).length;
  assert.deepEqual(damaged, [
    [sealed.segment, sealed.offset, lostIn(sealed.segment)],
    [active.segment, active.offset, lostIn(active.segment)],
  ]);
  assert.equal(buf.stats.corruptRecords, 2);
  assert.equal(buf.stats.events, 0, "skipped records are no longer counted as undelivered");
  assert.equal(buf.stats.delivered, got.length);
  const logged = logs.filter((l) => l.level === "error" && l.segment !== undefined);
  assert.deepEqual(logged.map((l) => [l.segment, l.offset]), [
    [sealed.segment, sealed.offset],
    [active.segment, active.offset],
  ]);
  await buf.close();
});
