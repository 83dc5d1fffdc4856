/**
 * The disk buffer's deferred cursor (`cursorEveryMs`, `cursorMaxRecords`): marks within a
 * segment resolve without a cursor write and are persisted within the interval; a mark into
 * another segment, one past the record cap, and close persist at once; a crash (a reopen
 * without close) repeats only what was marked since the last write.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DiskBuffer, type DiskBufferOptions } from "../pipeline/diskbuffer/store.ts";
import { listSegments } from "../pipeline/diskbuffer/layout.ts";
import { eventRecord, readAll } from "./diskbuffer_helpers.ts";
import { waitFor } from "./helpers/wait.ts";
import { withTempDir } from "./helpers/tmp.ts";

async function open(dir: string, opts: Partial<DiskBufferOptions> = {}): Promise<DiskBuffer> {
  return await DiskBuffer.open({ path: dir, maxBytes: 64 << 20, ...opts });
}

/** The cursor file's `{segment, offset}`, or undefined when there is none. */
async function cursorOnDisk(dir: string): Promise<{ segment: number; offset: number } | undefined> {
  try {
    const c = JSON.parse(await Deno.readTextFile(join(dir, "cursor.json")));
    return { segment: c.segment, offset: c.offset };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

Deno.test("disk buffer cursorEveryMs: marks in one segment are written together once the interval passes, not one write each", () =>
  withTempDir("auditpipe-diskbuf-cursor-", async (dir) => {
    const buf = await open(dir, { cursorEveryMs: 300 });
    await buf.append(Array.from({ length: 50 }, (_, i) => eventRecord(i)));
    const got = await readAll(buf);
    await buf.markDelivered(got[9]);
    // The first mark is written at once (no write for 300 ms before it).
    await waitFor(
      "the first mark written",
      async () => (await cursorOnDisk(dir))?.offset === got[9].end,
    );
    const cursorWrites = () => buf.stats.fsync.series.get("cursor")?.counts.at(-1) ?? 0;
    // The write is counted once its fsyncs are done, a moment after the file is in place.
    await waitFor("the first mark's write counted", () => cursorWrites() >= 1);
    const writes0 = cursorWrites();
    for (let i = 10; i < 50; i++) await buf.markDelivered(got[i]);
    // Marks resolved without their cursor written: the file still holds the first mark.
    assert.equal((await cursorOnDisk(dir))?.offset, got[9].end);
    await waitFor(
      "the last mark written and counted",
      async () => (await cursorOnDisk(dir))?.offset === got[49].end && cursorWrites() > writes0,
      { timeoutMs: 5000 },
    );
    assert.equal(cursorWrites() - writes0, 1, "40 marks, one cursor write");
    assert.equal(buf.stats.events, 0);
    await buf.close();
  }));

Deno.test("disk buffer cursorEveryMs: close writes the last mark; a crash repeats only what was marked since the last write", () =>
  withTempDir("auditpipe-diskbuf-cursor-", async (root) => {
    const dir = join(root, "buf");
    const records = Array.from({ length: 30 }, (_, i) => eventRecord(i));
    {
      const buf = await open(dir, { cursorEveryMs: 60_000 });
      await buf.append(records);
      const got = await readAll(buf);
      await buf.markDelivered(got[4]); // written at once: the first
      await buf.markDelivered(got[19]); // deferred a minute
      await buf.close();
    }
    let buf = await open(dir, { cursorEveryMs: 60_000 });
    assert.deepEqual(
      (await readAll(buf)).map((r) => r.auditID),
      records.slice(20).map((r) => r.auditID),
      "close wrote the deferred mark",
    );
    const got = await readAll(buf);
    await buf.markDelivered(got[0]); // written at once (the last write was long ago)
    await waitFor("the mark written", async () => (await cursorOnDisk(dir))?.offset === got[0].end);
    await buf.markDelivered(got[5]); // deferred, then "crash": the store is not closed
    // A second store opens the folder as the next run would (the lock is this process's own).
    buf = await openAfterCrash(dir, join(root, "after-crash"), buf);
    assert.deepEqual(
      (await readAll(buf)).map((r) => r.auditID),
      records.slice(21).map((r) => r.auditID),
      "the 5 records marked after the last write come again, nothing before them",
    );
    await buf.close();
  }));

/**
 * A copy of `dir` as it is on disk now, opened as the next run would open it after a crash of
 * `old`, whose deferred cursor write never happens (`old` is closed afterwards: its close
 * writes the deferred mark into `dir`, not into the copy).
 */
async function openAfterCrash(dir: string, copy: string, old: DiskBuffer): Promise<DiskBuffer> {
  await Deno.mkdir(copy);
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name !== "LOCK") await Deno.copyFile(join(dir, e.name), join(copy, e.name));
  }
  await old.close();
  return await open(copy, { cursorEveryMs: 60_000 });
}

Deno.test("disk buffer cursorEveryMs: a mark into a later segment is written at once and deletes the segments passed", () =>
  withTempDir("auditpipe-diskbuf-cursor-", async (dir) => {
    const buf = await open(dir, { cursorEveryMs: 60_000, segmentBytes: 4096 });
    await buf.append(Array.from({ length: 40 }, (_, i) => eventRecord(i)));
    const got = await readAll(buf);
    await buf.markDelivered(got[0]);
    const firstSegment = got[0].segment;
    const later = got.find((r) => r.segment > firstSegment + 1)!;
    await buf.markDelivered(later);
    const c = await cursorOnDisk(dir);
    assert.equal(c?.segment, later.segment);
    assert.equal(c?.offset, later.end);
    assert.ok(!(await listSegments(dir)).includes(firstSegment), "passed segments deleted");
    await buf.close();
  }));

Deno.test("disk buffer cursorMaxRecords: a mark that leaves more records unwritten than the cap waits for its cursor write", () =>
  withTempDir("auditpipe-diskbuf-cursor-", async (dir) => {
    const buf = await open(dir, { cursorEveryMs: 60_000, cursorMaxRecords: 10 });
    await buf.append(Array.from({ length: 40 }, (_, i) => eventRecord(i)));
    const got = await readAll(buf);
    await buf.markDelivered(got[0]);
    await buf.markDelivered(got[5]); // 5 unwritten: deferred
    assert.equal((await cursorOnDisk(dir))?.offset, got[0].end);
    await buf.markDelivered(got[12]); // 12 unwritten: written before it resolves
    assert.equal((await cursorOnDisk(dir))?.offset, got[12].end);
    await buf.close();
  }));
