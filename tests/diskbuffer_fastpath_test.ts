/**
 * The disk buffer's fast paths: group commit (appends made during an fsync are written and
 * synced together once it is done; a failed fsync fails only its own commit); a following reader
 * that keeps up is handed fsynced records from memory, one that falls behind reads from disk
 * again (in order, nothing skipped or repeated, across segment rolls); a record given as
 * `EventList` item bytes is framed as the same top-level document its bytes would be.
 */
import assert from "node:assert/strict";
import { DiskBuffer, type StoredRecord } from "../pipeline/diskbuffer/store.ts";
import { segmentPath } from "../pipeline/diskbuffer/layout.ts";
import { DiskBufferError } from "../pipeline/diskbuffer/errors.ts";
import { topLevelFromItem } from "../pipeline/core/encode.ts";
import { eventRecord, readAll } from "./diskbuffer_helpers.ts";
import { Rand } from "./data/rand.ts";
import { waitFor } from "./helpers/wait.ts";

const dec = new TextDecoder();
const enc = new TextEncoder();
const tmp = () => Deno.makeTempDir({ prefix: "auditpipe-diskbuf-handoff-" });

Deno.test("disk buffer: a reader that keeps up and one that stalls both get every record once, in order, across segment rolls, while appends run", async () => {
  const dir = await tmp();
  const buf = await DiskBuffer.open({ path: dir, maxBytes: 64 << 20, segmentBytes: 16 * 1024 });
  const r7 = new Rand(7);
  const rand = () => r7.f();
  const n = 3000;
  const ac = new AbortController();
  const got: StoredRecord[] = [];
  const stalls = [500, 1200];
  const reading = (async () => {
    for await (const batch of buf.readBatches({ follow: true, signal: ac.signal })) {
      for (const r of batch) got.push(r);
      // Twice the consumer stalls until well over a batch was committed behind it.
      if (stalls.length && got.length >= stalls[0]) {
        stalls.shift();
        const behind = Math.min(n, got.length + 1500);
        await waitFor("appends past the stalled reader", () => buf.stats.appended >= behind, {
          intervalMs: 1,
        });
      } else if (rand() < 0.2) await new Promise((r) => setTimeout(r, rand() * 3));
      await buf.markDelivered(batch.at(-1)!);
      if (got.length >= n) ac.abort();
    }
  })();
  const appends: Promise<unknown>[] = [];
  const records = Array.from({ length: n }, (_, i) => eventRecord(i));
  for (let i = 0; i < n;) {
    const k = Math.min(n - i, 1 + Math.floor(rand() * 40));
    appends.push(buf.append(records.slice(i, i + k)));
    i += k;
    if (rand() < 0.3) await Promise.all(appends.splice(0));
  }
  await Promise.all(appends);
  await reading;
  assert.deepEqual(
    got.map((r) => r.auditID),
    Array.from({ length: n }, (_, i) => eventRecord(i).auditID),
  );
  assert.deepEqual(got.map((r) => r.ordinal), Array.from({ length: n }, (_, i) => i));
  for (let i = 1; i < n; i++) {
    const [a, b] = [got[i - 1], got[i]];
    assert.ok(b.segment > a.segment || b.offset === a.end, `record ${i} follows ${i - 1} on disk`);
  }
  assert.equal(dec.decode(got[n - 1].bytes), dec.decode(eventRecord(n - 1).bytes));
  // Both ways were taken: handed over (the appended bytes themselves) and read back (copies).
  const handed = got.filter((r, i) => r.bytes === records[i].bytes).length;
  assert.ok(handed > 0 && handed < n, `${handed} of ${n} handed over from memory`);
  assert.equal(buf.stats.events, 0);
  assert.ok(buf.stats.segments <= 2, `${buf.stats.segments} segments left`);
  await buf.close();
});

Deno.test("disk buffer: a caught-up reader is handed records from memory once they are fsynced; a reader started later reads the same records from disk", async () => {
  const dir = await tmp();
  const buf = await DiskBuffer.open({ path: dir, maxBytes: 64 << 20 });
  const ac = new AbortController();
  const it = buf.readBatches({ follow: true, signal: ac.signal });
  const first = it.next(); // waits at the end: caught up
  await new Promise((r) => setTimeout(r, 10));
  const records = Array.from({ length: 5 }, (_, i) => eventRecord(i));
  assert.equal(await buf.append(records), "appended");
  // The bytes on disk go bad after the commit: the handed records are the appended ones.
  const path = segmentPath(dir, buf.cursor.segment || 1);
  const bytes = await Deno.readFile(path);
  bytes[bytes.length >> 1] ^= 0xff;
  await Deno.writeFile(path, bytes);
  const handed = (await first).value as StoredRecord[];
  assert.deepEqual(handed.map((r) => r.auditID), records.map((r) => r.auditID));
  assert.ok(handed.every((r, i) => r.bytes === records[i].bytes), "not read back");
  ac.abort();
  await it.return();
  // A new reader has nothing in memory: it reads the file and meets the damage.
  const again = await readAll(buf);
  assert.ok(again.length < 5, `${again.length} intact before the damage`);
  assert.equal(buf.stats.corruptRecords, 1);
  await buf.close();
});

Deno.test("disk buffer: a record given as EventList item bytes is stored and read back as its top-level document", async () => {
  const dir = await tmp();
  const buf = await DiskBuffer.open({ path: dir, maxBytes: 64 << 20 });
  const item = enc.encode(
    '{"level":"Metadata","auditID":"a-1","stage":"ResponseComplete","verb":"get"}',
  );
  const doc = topLevelFromItem(item);
  const record = {
    auditID: "a-1",
    stage: "ResponseComplete",
    levelChanged: false,
    item,
    get bytes(): Uint8Array {
      throw new Error("bytes read although item was given");
    },
  };
  assert.equal(await buf.append([record, eventRecord(2)]), "appended");
  const got = await readAll(buf);
  assert.equal(dec.decode(got[0].bytes), dec.decode(doc));
  assert.deepEqual(JSON.parse(dec.decode(got[0].bytes)), {
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    ...JSON.parse(dec.decode(item)),
  });
  assert.equal(dec.decode(got[1].bytes), dec.decode(eventRecord(2).bytes));
  assert.equal(buf.stats.bytes, (await Deno.stat(segmentPath(dir, got[0].segment))).size);
  await buf.close();
});

Deno.test("disk buffer: appends made while a commit's fsync runs wait for it and are written and synced together by the next commit, in order", async () => {
  const dir = await tmp();
  const during: Promise<unknown>[] = [];
  let fsyncsAtThirdWrite = -1;
  let writes = 0;
  const order: string[] = [];
  const buf: DiskBuffer = await DiskBuffer.open({
    path: dir,
    maxBytes: 64 << 20,
    faults: (op) => {
      if (op === "write" && ++writes === 3) {
        fsyncsAtThirdWrite = buf.stats.fsync.series.get("segment")!.counts.at(-1)!;
      }
      if (op === "fsync" && writes === 2 && during.length === 0) {
        for (const i of [2, 3]) {
          during.push(buf.append([eventRecord(i)]).then((r) => order.push(`${i} ${r}`)));
        }
      }
    },
  });
  await buf.append([eventRecord(0)]); // the segment exists: later commits append to it
  await buf.append([eventRecord(1)]).then((r) => order.push(`1 ${r}`));
  await Promise.all(during);
  // Two fsyncs observed before the third write: the commit of 2 and 3 waited for the one of 1.
  assert.equal(fsyncsAtThirdWrite, 2, "the next commit was written after the running fsync");
  assert.equal(writes, 3, "2 and 3 went in one commit");
  assert.deepEqual(order, ["1 appended", "2 appended", "3 appended"]);
  assert.deepEqual(
    (await readAll(buf)).map((r) => r.auditID),
    [0, 1, 2, 3].map((i) => eventRecord(i).auditID),
  );
  await buf.close();
});

Deno.test("disk buffer: when a commit's fsync fails, its appends reject and the segment is cut back to where it started; an append made meanwhile is kept", async () => {
  const dir = await tmp();
  let writes = 0;
  let later: Promise<unknown> | undefined;
  const buf: DiskBuffer = await DiskBuffer.open({
    path: dir,
    maxBytes: 64 << 20,
    faults: (op) => {
      if (op === "write") writes++;
      if (op === "fsync" && writes === 2 && !later) {
        later = buf.append([eventRecord(2), eventRecord(3)]).then(() => "appended", (e) => e);
        throw new Deno.errors.WriteZero("Input/output error (os error 5)");
      }
    },
  });
  await buf.append([eventRecord(0)]);
  const first = await buf.append([eventRecord(1)]).then(() => "appended", (e) => e);
  assert.ok(first instanceof DiskBufferError && first.op === "fsync", String(first));
  assert.equal(await later, "appended");
  assert.equal(writes, 3);
  assert.equal(buf.stats.appendErrors, 1);
  const kept = await readAll(buf);
  assert.deepEqual(kept.map((r) => r.auditID), [0, 2, 3].map((i) => eventRecord(i).auditID));
  assert.equal(buf.stats.bytes, kept.at(-1)!.end);
  assert.equal((await Deno.stat(segmentPath(dir, kept[0].segment))).size, kept.at(-1)!.end);
  await buf.close();
  const again = await DiskBuffer.open({ path: dir, maxBytes: 64 << 20 });
  assert.deepEqual(again.recovery.damage, []);
  assert.equal(again.stats.events, 3);
  await again.close();
});

Deno.test("disk buffer: a commit whose write fails fails alone: the one before it is kept, the segment ends where it did, the next append works", async () => {
  const dir = await tmp();
  let writes = 0;
  let later: Promise<unknown> | undefined;
  const buf: DiskBuffer = await DiskBuffer.open({
    path: dir,
    maxBytes: 64 << 20,
    faults: (op) => {
      if (op === "write" && ++writes === 3) {
        throw new Deno.errors.WriteZero("No space left on device (os error 28)");
      }
      if (op === "fsync" && writes === 2 && !later) {
        later = buf.append([eventRecord(2)]).then(() => "appended", (e) => e);
      }
    },
  });
  await buf.append([eventRecord(0)]);
  assert.equal(await buf.append([eventRecord(1)]), "appended");
  const second = await later;
  assert.ok(second instanceof DiskBufferError && second.op === "write", String(second));
  const kept = await readAll(buf);
  assert.deepEqual(kept.map((r) => r.auditID), [0, 1].map((i) => eventRecord(i).auditID));
  assert.equal((await Deno.stat(segmentPath(dir, kept[0].segment))).size, kept[1].end);
  assert.equal(await buf.append([eventRecord(3)]), "appended");
  assert.deepEqual(
    (await readAll(buf)).map((r) => r.auditID),
    [0, 1, 3].map((i) => eventRecord(i).auditID),
  );
  await buf.close();
  const again = await DiskBuffer.open({ path: dir, maxBytes: 64 << 20 });
  assert.deepEqual(again.recovery.damage, []);
  assert.equal(again.stats.events, 3);
  await again.close();
});
