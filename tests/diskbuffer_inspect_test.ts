/**
 * `auditpipe buffer inspect PATH [--dump] [--json]`, run as a subprocess of the real entry
 * point: segments, counts, cursor and damage, undelivered events as JSON lines, and nothing on
 * disk changed.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { DiskBuffer } from "../pipeline/diskbuffer/store.ts";
import { listSegments, segmentPath } from "../pipeline/diskbuffer/layout.ts";
import { eventRecord, readAll } from "./diskbuffer_helpers.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const dec = new TextDecoder();

async function auditpipe(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Sizes and contents of every file in `dir`. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for await (const e of Deno.readDir(dir)) {
    files.set(e.name, dec.decode(await Deno.readFile(`${dir}/${e.name}`)));
  }
  return files;
}

Deno.test("buffer inspect: prints segments, records, undelivered counts, the cursor and damage, and changes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskbuf-inspect-" });
  const buf = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24, segmentBytes: 4096 });
  await buf.append(Array.from({ length: 40 }, (_, i) => eventRecord(i)));
  const records = await readAll(buf);
  await buf.markDelivered(records[9]);
  await buf.close();
  const ids = await listSegments(dir);
  const last = ids.at(-1)!;
  const lastRecords = records.filter((r) => r.segment === last);
  await Deno.truncate(segmentPath(dir, last), lastRecords.at(-1)!.offset + 11);
  const before = await snapshot(dir);

  const r = await auditpipe("buffer", "inspect", dir);
  assert.equal(r.code, 1, r.stderr);
  const cursor = JSON.parse(before.get("cursor.json")!);
  assert.match(r.stdout, new RegExp(`cursor: segment ${cursor.segment} offset ${cursor.offset}`));
  for (const id of ids) assert.match(r.stdout, new RegExp(`${String(id).padStart(20, "0")}\\.seg`));
  assert.match(
    r.stdout,
    new RegExp(`damage: segment ${last} offset ${lastRecords.at(-1)!.offset}: record cut off`),
  );
  assert.match(r.stdout, /total: \d+ segments, \d+ bytes, \d+ records, 29 undelivered/);
  assert.deepEqual(await snapshot(dir), before, "inspect changes nothing");

  const j = await auditpipe("buffer", "inspect", "--json", dir);
  const summary = JSON.parse(j.stdout);
  assert.equal(summary.undelivered, 29);
  assert.deepEqual(summary.cursor, { segment: cursor.segment, offset: cursor.offset });
  assert.equal(summary.damage.length, 1);
  assert.equal(summary.damage[0].segment, last);
});

Deno.test("buffer inspect --dump: writes the undelivered events as JSON lines on stdout, the summary on stderr", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskbuf-inspect-" });
  const buf = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24, segmentBytes: 4096 });
  await buf.append(Array.from({ length: 25 }, (_, i) => eventRecord(i)));
  await buf.markDelivered((await readAll(buf))[4]);
  await buf.close();
  const r = await auditpipe("buffer", "inspect", dir, "--dump");
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.deepEqual(
    lines.map((l) => JSON.parse(l).auditID),
    Array.from({ length: 20 }, (_, i) => eventRecord(i + 5).auditID),
  );
  assert.equal(lines[0], dec.decode(eventRecord(5).bytes));
  assert.match(r.stderr, /20 undelivered/);
});

Deno.test("buffer inspect: a missing folder or wrong arguments exit 2 with a message", async () => {
  const r = await auditpipe("buffer", "inspect", "/nonexistent-auditpipe-buffer");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /nonexistent-auditpipe-buffer/);
  const u = await auditpipe("buffer", "list");
  assert.equal(u.code, 2);
  assert.match(u.stderr, /Usage: auditpipe buffer inspect PATH/);
  const h = await auditpipe("--help");
  assert.match(h.stdout, /auditpipe buffer inspect PATH/);
});

Deno.test("buffer inspect: a buffer a daemon holds is still read, and named in use by its pid", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskbuf-inspect-" });
  const buf = await DiskBuffer.open({ path: dir, maxBytes: 1 << 24 });
  try {
    await buf.append(Array.from({ length: 5 }, (_, i) => eventRecord(i)));
    const r = await auditpipe("buffer", "inspect", dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^in use by pid ${Deno.pid}:`, "m"));
    assert.match(r.stdout, /total: 1 segments, \d+ bytes, 5 records, 5 undelivered/);
    const j = await auditpipe("buffer", "inspect", dir, "--json");
    assert.deepEqual(JSON.parse(j.stdout).inUse, { pid: Deno.pid });
    // Inspecting took nothing from the holder: it appends, and a second opener is refused.
    await buf.append([eventRecord(5)]);
    await assert.rejects(() => DiskBuffer.open({ path: dir, maxBytes: 1 << 24 }), /in use/);
  } finally {
    await buf.close();
  }
  const after = await auditpipe("buffer", "inspect", dir, "--json");
  assert.equal(JSON.parse(after.stdout).inUse, null);
  assert.doesNotMatch((await auditpipe("buffer", "inspect", dir)).stdout, /in use/);
  await Deno.remove(dir, { recursive: true });
});
