/**
 * The disk buffer store: append → read → mark delivered → segment deletion, reopening,
 * group commit, maxBytes, and disk errors that leave the store whole.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DiskBuffer, type DiskBufferOptions } from "../pipeline/diskbuffer/store.ts";
import { DiskBufferError } from "../pipeline/diskbuffer/errors.ts";
import { listSegments, segmentPath } from "../pipeline/diskbuffer/layout.ts";
import { scanSegment } from "../pipeline/diskbuffer/scan.ts";
import { eventRecord, readAll, segmentBytes } from "./diskbuffer_helpers.ts";
import { waitFor } from "./helpers/wait.ts";

const dec = new TextDecoder();

async function open(dir: string, opts: Partial<DiskBufferOptions> = {}): Promise<DiskBuffer> {
  return await DiskBuffer.open({ path: dir, maxBytes: 64 << 20, ...opts });
}

const tmp = () => Deno.makeTempDir({ prefix: "auditpipe-diskbuf-" });

Deno.test("disk buffer: appended records are read back in order with auditID, stage, level flag and bytes", async () => {
  const dir = await tmp();
  const buf = await open(dir, { segmentBytes: 4096 });
  const records = Array.from({ length: 50 }, (_, i) => eventRecord(i));
  assert.equal(await buf.append(records.slice(0, 20)), "appended");
  assert.equal(await buf.append(records.slice(20)), "appended");
  const got = await readAll(buf);
  assert.equal(got.length, 50);
  for (let i = 0; i < 50; i++) {
    assert.equal(got[i].auditID, records[i].auditID);
    assert.equal(got[i].stage, "ResponseComplete");
    assert.equal(got[i].levelChanged, i % 3 === 0);
    assert.equal(dec.decode(got[i].bytes), dec.decode(records[i].bytes));
    assert.equal(got[i].ordinal, i);
  }
  assert.ok((await listSegments(dir)).length > 3, "4 KiB segments roll");
  assert.equal(buf.stats.events, 50);
  assert.equal(buf.stats.bytes, await segmentBytes(dir));
  await buf.close();
});

Deno.test("disk buffer: marking records delivered persists the cursor and deletes passed segments", async () => {
  const dir = await tmp();
  const buf = await open(dir, { segmentBytes: 4096 });
  await buf.append(Array.from({ length: 60 }, (_, i) => eventRecord(i)));
  const got = await readAll(buf);
  const before = await listSegments(dir);
  await buf.markDelivered(got[39]);
  const after = await listSegments(dir);
  assert.ok(after.length < before.length, `${before} → ${after}`);
  assert.equal(after[0], got[40].segment, "the segment of the first undelivered record stays");
  assert.equal(buf.stats.events, 20);
  assert.equal(buf.stats.delivered, 40);
  assert.equal(buf.stats.bytes, await segmentBytes(dir));
  const cursor = JSON.parse(await Deno.readTextFile(join(dir, "cursor.json")));
  // Right after record 39, or at the start of record 40's segment when 39 ended its own.
  assert.ok(
    (cursor.segment === got[39].segment && cursor.offset === got[39].end) ||
      (cursor.segment === got[40].segment && cursor.offset === got[40].offset),
    JSON.stringify(cursor),
  );
  // A new reader starts after the delivered records.
  const rest = await readAll(buf);
  assert.deepEqual(rest.map((r) => r.auditID), got.slice(40).map((r) => r.auditID));
  // Marking an earlier record again changes nothing.
  await buf.markDelivered(got[10]);
  assert.equal(buf.stats.events, 20);
  await buf.markDelivered(got[59]);
  assert.equal(buf.stats.events, 0);
  assert.equal(buf.stats.oldestUndeliveredAt, undefined);
  assert.deepEqual(await readAll(buf), []);
  // The fully delivered last segment is deleted once the next append starts a new one (the
  // append does not wait for the deletion, so it may still run).
  await buf.append([eventRecord(100)]);
  await waitFor(
    "the delivered segment deleted",
    async () => (await listSegments(dir)).length === 1,
  );
  assert.deepEqual((await readAll(buf)).map((r) => r.auditID), [eventRecord(100).auditID]);
  await buf.close();
});

Deno.test("disk buffer: after close and reopen only undelivered records are read again", async () => {
  const dir = await tmp();
  let buf = await open(dir, { segmentBytes: 2048 });
  await buf.append(Array.from({ length: 30 }, (_, i) => eventRecord(i)));
  const got = await readAll(buf);
  await buf.markDelivered(got[11]);
  await buf.close();
  buf = await open(dir, { segmentBytes: 2048 });
  assert.equal(buf.stats.events, 18);
  assert.deepEqual(buf.recovery.damage, []);
  const again = await readAll(buf);
  assert.deepEqual(again.map((r) => r.auditID), got.slice(12).map((r) => r.auditID));
  // New appends go after the recovered ones.
  await buf.append([eventRecord(99)]);
  const all = await readAll(buf);
  assert.equal(all.at(-1)!.auditID, eventRecord(99).auditID);
  assert.equal(all.length, 19);
  await buf.close();
});

Deno.test("disk buffer: a following reader gets records appended while it waits, and ends on abort", async () => {
  const dir = await tmp();
  const buf = await open(dir, { segmentBytes: 1024 });
  const ac = new AbortController();
  const seen: string[] = [];
  const reading = (async () => {
    for await (const r of buf.read({ follow: true, signal: ac.signal })) {
      seen.push(r.auditID);
      await buf.markDelivered(r);
      if (seen.length === 40) ac.abort();
    }
  })();
  for (let i = 0; i < 40; i += 4) {
    await buf.append([0, 1, 2, 3].map((k) => eventRecord(i + k)));
    await new Promise((r) => setTimeout(r, 2));
  }
  await reading;
  assert.deepEqual(seen, Array.from({ length: 40 }, (_, i) => eventRecord(i).auditID));
  assert.equal(buf.stats.events, 0);
  await buf.close();
});

Deno.test("disk buffer: concurrent appends share fsyncs (group commit) and each resolves after one", async () => {
  const dir = await tmp();
  const buf = await open(dir);
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) => buf.append([eventRecord(i)])),
  );
  assert.ok(results.every((r) => r === "appended"));
  const fsyncs = buf.stats.fsync.series.get("segment")!.counts.at(-1)!;
  assert.ok(fsyncs >= 1 && fsyncs < 100, `${fsyncs} fsyncs for 200 appends`);
  assert.equal((await readAll(buf)).length, 200);
  await buf.close();
});

Deno.test("disk buffer: records larger than the read buffer round-trip", async () => {
  const dir = await tmp();
  const buf = await open(dir, { segmentBytes: 1 << 20 });
  const big = [eventRecord(1, 3 << 20), eventRecord(2), eventRecord(3, 1 << 20)];
  await buf.append(big);
  const got = await readAll(buf);
  assert.deepEqual(got.map((r) => r.bytes.length), big.map((r) => r.bytes.length));
  assert.equal(dec.decode(got[0].bytes), dec.decode(big[0].bytes));
  await buf.close();
});

Deno.test("disk buffer: segment files never exceed maxBytes; a refused append writes nothing; space returns after delivery", async () => {
  const dir = await tmp();
  const maxBytes = 64 * 1024;
  const buf = await open(dir, { maxBytes, segmentBytes: 8 * 1024 });
  let appended = 0, full = 0;
  for (let i = 0; i < 400; i++) {
    const n = 1 + (i % 7);
    const res = await buf.append(
      Array.from({ length: n }, (_, k) => eventRecord(i * 10 + k, i % 50)),
    );
    if (res === "appended") appended += n;
    else full += n;
    const onDisk = await segmentBytes(dir);
    assert.ok(onDisk <= maxBytes, `${onDisk} bytes on disk > ${maxBytes}`);
    assert.equal(onDisk, buf.stats.bytes);
  }
  assert.ok(full > 0 && appended > 0);
  assert.equal(buf.stats.full, full);
  const got = await readAll(buf);
  assert.equal(got.length, appended);
  // Blocked appender: waits for space, which delivery frees.
  const blocked = (async () => {
    for (;;) {
      const res = await buf.append([eventRecord(9999, 2000)]);
      if (res === "appended") return;
      await buf.whenSpace();
    }
  })();
  await buf.markDelivered(got.at(-1)!);
  await blocked;
  assert.ok(await segmentBytes(dir) <= maxBytes);
  assert.deepEqual((await readAll(buf)).map((r) => r.auditID), [eventRecord(9999).auditID]);
  await assert.rejects(
    buf.append([eventRecord(1, maxBytes)]),
    (e) => e instanceof DiskBufferError && e.code === "too_large",
  );
  await buf.close();
});

Deno.test("disk buffer: a failed write or fsync rejects with an io error, keeps nothing and leaves whole records; the next append works", async () => {
  const dir = await tmp();
  let fail: "write" | "fsync" | undefined;
  let failOnSegment = -1;
  const buf = await open(dir, {
    segmentBytes: 2048,
    faults: (op, path) => {
      if (op === fail && (failOnSegment < 0 || path === segmentPath(dir, failOnSegment))) {
        throw new Deno.errors.WriteZero("No space left on device (os error 28)");
      }
    },
  });
  await buf.append(Array.from({ length: 5 }, (_, i) => eventRecord(i)));
  const goodBytes = await segmentBytes(dir);
  for (const op of ["write", "fsync"] as const) {
    fail = op;
    // Enough to roll into a new segment: the first part is written, then a later step fails.
    failOnSegment = op === "write" ? (await listSegments(dir)).at(-1)! + 1 : -1;
    const err = await buf.append(Array.from({ length: 20 }, (_, i) => eventRecord(100 + i)))
      .then(() => undefined, (e) => e);
    assert.ok(err instanceof DiskBufferError, String(err));
    assert.equal(err.code, "io");
    assert.equal(err.op, op);
    assert.match(err.message, /No space left on device/);
    assert.equal(await segmentBytes(dir), goodBytes, `${op}: segments cut back`);
    for (const id of await listSegments(dir)) {
      const scan = await scanSegment(segmentPath(dir, id), id, 0);
      assert.equal(scan.damage, undefined);
    }
  }
  assert.equal(buf.stats.appendErrors, 40);
  fail = undefined;
  assert.equal(await buf.append([eventRecord(200)]), "appended");
  assert.deepEqual(
    (await readAll(buf)).map((r) => r.auditID),
    [0, 1, 2, 3, 4, 200].map((i) => eventRecord(i).auditID),
  );
  await buf.close();
  const again = await open(dir);
  assert.deepEqual(again.recovery.damage, []);
  assert.equal(again.stats.events, 6);
  await again.close();
});

Deno.test("disk buffer: a segment that cannot be created is a typed error, and the next append uses another", async () => {
  const dir = await tmp();
  const buf = await open(dir);
  // Something in the way of the first segment's file name.
  await Deno.mkdir(segmentPath(dir, 1));
  const err = await buf.append([eventRecord(1)]).then(() => undefined, (e) => e);
  assert.ok(err instanceof DiskBufferError && err.code === "io", String(err));
  assert.equal(await buf.append([eventRecord(2)]), "appended");
  assert.deepEqual((await readAll(buf)).map((r) => r.auditID), [eventRecord(2).auditID]);
  await buf.close();
});

Deno.test("disk buffer: counters report bytes, events, segments and the oldest undelivered record's age", async () => {
  const dir = await tmp();
  let now = 1_000_000;
  const buf = await open(dir, { segmentBytes: 1024, now: () => now });
  await buf.append([eventRecord(1), eventRecord(2)]);
  now += 5000;
  await buf.append([eventRecord(3)]);
  assert.equal(buf.stats.events, 3);
  assert.equal(buf.stats.oldestUndeliveredAgeSeconds(now), 5);
  const got = await readAll(buf);
  await buf.markDelivered(got[1]);
  assert.equal(buf.stats.oldestUndeliveredAt, 1_005_000);
  assert.equal(buf.stats.segments, (await listSegments(dir)).length);
  await buf.close();
  const again = await open(dir);
  assert.equal(again.stats.oldestUndeliveredAt, 1_005_000);
  await again.close();
});

Deno.test("disk buffer: non-ASCII auditIDs and stages round-trip", async () => {
  const dir = await tmp();
  const buf = await open(dir);
  const r = { ...eventRecord(1), auditID: "prüfung-日本-1", stage: "Panic" };
  await buf.append([r, eventRecord(2)]);
  const got = await readAll(buf);
  assert.equal(got[0].auditID, "prüfung-日本-1");
  assert.equal(got[0].stage, "Panic");
  assert.equal(got[1].auditID, eventRecord(2).auditID);
  await buf.close();
});

Deno.test("disk buffer: the bytes gauge matches the files while deliveries delete segments during appends", async () => {
  const dir = await tmp();
  const buf = await open(dir, { segmentBytes: 2048 });
  const ac = new AbortController();
  let delivered = 0;
  const consumer = (async () => {
    for await (const r of buf.read({ follow: true, signal: ac.signal })) {
      await buf.markDelivered(r);
      if (++delivered === 600) ac.abort();
    }
  })();
  await Promise.all(Array.from({ length: 6 }, async (_, p) => {
    for (let i = 0; i < 100; i++) await buf.append([eventRecord(p * 1000 + i)]);
  }));
  await consumer;
  await buf.close();
  assert.equal(buf.stats.bytes, await segmentBytes(dir));
  assert.equal(buf.stats.events, 0);
});
