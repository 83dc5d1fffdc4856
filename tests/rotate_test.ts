import assert from "node:assert/strict";
import { join } from "node:path";
import { RotatingFile, type RotatingFileOptions } from "../backends/rotate.ts";
import { FakeClock } from "../pipeline/core/clock.ts";
import { dirNames, withTempDir } from "./helpers/tmp.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);
const line = (ch: string, n: number) => bytes(ch.repeat(n - 1) + "\n");
const DAY = 24 * 60 * 60 * 1000;
/** The FakeClock's default wall time as a backup stamp. */
const STAMP0 = "2024-03-01T12-34-56.789";

const withDir = <T>(fn: (dir: string) => Promise<T>) => withTempDir("auditpipe-rotate-", fn);

const names = dirNames;

function opts(extra: Partial<RotatingFileOptions> = {}): RotatingFileOptions {
  return { maxSize: 0, maxBackup: 0, maxAge: 0, compress: false, clock: new FakeClock(), ...extra };
}

async function gunzip(path: string): Promise<string> {
  const file = await Deno.open(path);
  const stream = file.readable.pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

Deno.test("a write that would exceed the limit rotates the file first", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 100 }));
    await f.write(line("a", 60));
    await f.write(line("b", 40)); // exactly 100: fits
    await f.write(line("c", 1)); // 101 would not
    await f.close();
    assert.deepEqual(await names(dir), [`audit-${STAMP0}.log`, "audit.log"]);
    assert.equal(
      await Deno.readTextFile(join(dir, `audit-${STAMP0}.log`)),
      "a".repeat(59) + "\n" + "b".repeat(39) + "\n",
    );
    assert.equal(await Deno.readTextFile(path), "\n");
  });
});

Deno.test("a write longer than the limit fails and writes nothing", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 100 }));
    await assert.rejects(
      f.write(line("x", 101)),
      { message: "write length 101 exceeds maximum file size 100" },
    );
    await f.write(line("y", 10));
    await f.close();
    assert.equal(await Deno.readTextFile(path), "y".repeat(9) + "\n");
  });
});

Deno.test("open creates the file 0600 and missing parent directories 0700", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "a", "b", "audit.log");
    const f = await RotatingFile.open(path, opts());
    assert.equal((await Deno.stat(path)).size, 0);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(join(dir, "a"))).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(join(dir, "a", "b"))).mode! & 0o777, 0o700);
    await f.close();
  });
});

Deno.test("the first write rotates an existing file when size + length reaches the limit", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    await Deno.writeTextFile(path, "x".repeat(40));
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 100 }));
    await f.write(line("a", 60)); // 40 + 60 >= 100
    await f.close();
    assert.deepEqual(await names(dir), [`audit-${STAMP0}.log`, "audit.log"]);
    assert.equal(await Deno.readTextFile(join(dir, `audit-${STAMP0}.log`)), "x".repeat(40));
  });
});

Deno.test("the first write appends to an existing file below the limit", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    await Deno.writeTextFile(path, "x".repeat(40));
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 100 }));
    await f.write(line("a", 59)); // 99 < 100
    await f.write(line("b", 1)); // 100 is not > 100
    assert.equal(f.size, 100);
    await f.close();
    assert.deepEqual(await names(dir), ["audit.log"]);
  });
});

Deno.test("a first write exactly the limit long rotates even an empty file, as lumberjack", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 10 }));
    await f.write(line("a", 10)); // 0 + 10 >= 10 at first open
    await f.close();
    assert.deepEqual(await names(dir), [`audit-${STAMP0}.log`, "audit.log"]);
    assert.equal(await Deno.readTextFile(join(dir, `audit-${STAMP0}.log`)), "");
  });
});

Deno.test("rotation keeps the old file's mode for the new file", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 10 }));
    await Deno.chmod(path, 0o640);
    await f.write(line("a", 8));
    await f.write(line("b", 8));
    await f.close();
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640);
  });
});

Deno.test("a file without extension gets the stamp at the end of its name", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit");
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 10 }));
    await f.write(line("a", 8));
    await f.rotate();
    await f.close();
    assert.deepEqual(await names(dir), ["audit", `audit-${STAMP0}`]);
  });
});

Deno.test("two rotations in one millisecond do not overwrite a backup", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 10 }));
    for (const ch of "abc") await f.write(line(ch, 6));
    await f.close();
    assert.deepEqual(await names(dir), [
      "audit-2024-03-01T12-34-56.789.log",
      "audit-2024-03-01T12-34-56.790.log",
      "audit.log",
    ]);
    assert.equal(
      await Deno.readTextFile(join(dir, "audit-2024-03-01T12-34-56.790.log")),
      "bbbbb\n",
    );
  });
});

Deno.test("maxBackup keeps only the newest backups", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const clock = new FakeClock();
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 10, maxBackup: 2, clock }));
    for (const ch of "abcde") {
      await f.write(line(ch, 10));
      await clock.advance(1000);
    }
    await f.idle();
    await f.close();
    assert.deepEqual(await names(dir), [
      "audit-2024-03-01T12-34-59.789.log",
      "audit-2024-03-01T12-35-00.789.log",
      "audit.log",
    ]);
    assert.equal(
      await Deno.readTextFile(join(dir, "audit-2024-03-01T12-35-00.789.log")),
      "d".repeat(9) + "\n",
    );
  });
});

Deno.test("a backup and its .gz count once toward maxBackup", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    await Deno.writeTextFile(join(dir, "audit-2024-03-01T10-00-00.000.log"), "old");
    await Deno.writeTextFile(join(dir, "audit-2024-03-01T10-00-00.000.log.gz"), "old");
    await Deno.writeTextFile(join(dir, "audit-2024-03-01T09-00-00.000.log.gz"), "older");
    const f = await RotatingFile.open(path, opts({ maxBackup: 1 }));
    await f.idle();
    await f.close();
    assert.deepEqual(await names(dir), [
      "audit-2024-03-01T10-00-00.000.log",
      "audit-2024-03-01T10-00-00.000.log.gz",
      "audit.log",
    ]);
  });
});

Deno.test("maxAge removes backups older than that many days, by the time in the name", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    // Two days and one day minus a minute before the FakeClock's wall time.
    await Deno.writeTextFile(join(dir, "audit-2024-02-28T12-34-56.789.log"), "");
    await Deno.writeTextFile(join(dir, "audit-2024-02-29T12-35-56.789.log.gz"), "");
    // Not backups of this file: other names, bad stamps, directories.
    await Deno.writeTextFile(join(dir, "audit-2020-01-01T00-00-00.000.txt"), "");
    await Deno.writeTextFile(join(dir, "other-2020-01-01T00-00-00.000.log"), "");
    await Deno.writeTextFile(join(dir, "audit-2020-01-01T00-00-00.log"), "");
    await Deno.mkdir(join(dir, "audit-2020-01-01T00-00-00.000.log"));
    const clock = new FakeClock();
    const f = await RotatingFile.open(path, opts({ maxAge: 1, clock }));
    await f.idle();
    assert.deepEqual(await names(dir), [
      "audit-2020-01-01T00-00-00.000.log",
      "audit-2020-01-01T00-00-00.000.txt",
      "audit-2020-01-01T00-00-00.log",
      "audit-2024-02-29T12-35-56.789.log.gz",
      "audit.log",
      "other-2020-01-01T00-00-00.000.log",
    ]);
    // A day later the remaining backup is out of date too; a rotation triggers cleanup.
    await clock.advance(DAY);
    await f.rotate();
    await f.idle();
    await f.close();
    assert.ok(!(await names(dir)).includes("audit-2024-02-29T12-35-56.789.log.gz"));
    assert.ok((await names(dir)).includes("audit-2024-03-02T12-34-56.789.log"));
  });
});

Deno.test("compress gzips each backup and removes the plain file", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const clock = new FakeClock();
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 20, compress: true, clock }));
    await Deno.chmod(path, 0o640);
    const first = "a".repeat(18) + "\n";
    await f.write(bytes(first));
    await f.write(line("b", 5));
    await f.idle();
    await f.close();
    const gz = join(dir, `audit-${STAMP0}.log.gz`);
    assert.deepEqual(await names(dir), [`audit-${STAMP0}.log.gz`, "audit.log"]);
    assert.equal(await gunzip(gz), first);
    assert.equal((await Deno.stat(gz)).mode! & 0o777, 0o640);
  });
});

Deno.test("compress also gzips backups left plain from before", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const big = "line\n".repeat(100_000);
    await Deno.writeTextFile(join(dir, "audit-2024-03-01T10-00-00.000.log"), big);
    const f = await RotatingFile.open(path, opts({ compress: true }));
    await f.idle();
    await f.close();
    assert.deepEqual(await names(dir), ["audit-2024-03-01T10-00-00.000.log.gz", "audit.log"]);
    assert.equal(await gunzip(join(dir, "audit-2024-03-01T10-00-00.000.log.gz")), big);
  });
});

Deno.test("maxSize 0 never rotates", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    await Deno.writeFile(path, new Uint8Array(3 * 1024 * 1024));
    const f = await RotatingFile.open(path, opts({ maxSize: 0, maxBackup: 1, maxAge: 1 }));
    const chunk = new Uint8Array(1024 * 1024).fill(0x61);
    for (let i = 0; i < 3; i++) await f.write(chunk);
    await f.idle();
    await f.close();
    assert.equal(f.limit, Infinity);
    assert.deepEqual(await names(dir), ["audit.log"]);
    assert.equal((await Deno.stat(path)).size, 6 * 1024 * 1024);
  });
});

Deno.test("maxSize is in mebibytes", async () => {
  await withDir(async (dir) => {
    const f = await RotatingFile.open(join(dir, "audit.log"), opts({ maxSize: 3 }));
    assert.equal(f.limit, 3 * 1024 * 1024);
    await f.close();
  });
});

Deno.test("reopen after the file was renamed away writes to a new file at the path", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const moved = join(dir, "audit.log.1");
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 1000 }));
    await f.write(bytes("old\n"));
    await Deno.rename(path, moved);
    await f.write(bytes("still old\n")); // the open handle follows the moved file
    await f.reopen();
    assert.equal(await Deno.readTextFile(path), ""); // recreated at once
    await f.write(bytes("new\n"));
    await f.close();
    assert.equal(await Deno.readTextFile(moved), "old\nstill old\n");
    assert.equal(await Deno.readTextFile(path), "new\n");
  });
});

Deno.test("reopen appends to a file put back at the path and counts its size", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 10 }));
    await f.write(bytes("1234\n"));
    await Deno.writeTextFile(path, "abcdefgh\n"); // someone replaced it: 9 bytes
    await f.reopen();
    await f.write(bytes("z\n")); // 9 + 2 >= 10: rotated first
    await f.close();
    assert.equal(await Deno.readTextFile(path), "z\n");
    assert.equal(await Deno.readTextFile(join(dir, `audit-${STAMP0}.log`)), "abcdefgh\n");
  });
});

Deno.test("writeRecords splits at the record where single writes would rotate", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const clock = new FakeClock();
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 100, clock }));
    await f.write(line("0", 30));
    const records = [...("abcde")].map((ch) => line(ch, 30));
    await f.writeRecords(records); // 30 + a + b = 90; c would make 120
    await f.close();
    const backup = await Deno.readTextFile(join(dir, `audit-${STAMP0}.log`));
    assert.equal(backup, ["0", "a", "b"].map((c) => c.repeat(29) + "\n").join(""));
    assert.equal(
      await Deno.readTextFile(path),
      ["c", "d", "e"].map((c) => c.repeat(29) + "\n").join(""),
    );
  });
});

Deno.test("writeRecords of views into one buffer writes them in one call", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const f = await RotatingFile.open(path, opts());
    const buf = bytes("one\ntwo\nthree\n");
    await f.writeRecords([buf.subarray(0, 4), buf.subarray(4, 8), buf.subarray(8)]);
    await f.close();
    assert.equal(await Deno.readTextFile(path), "one\ntwo\nthree\n");
  });
});

Deno.test("writeRecords writes the records that fit and resolves with those over the limit", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 50 }));
    assert.deepEqual(
      await f.writeRecords([line("a", 10), line("x", 51), line("b", 10), line("y", 60)]),
      [1, 3],
    );
    await f.close();
    assert.equal(await Deno.readTextFile(path), "a".repeat(9) + "\n" + "b".repeat(9) + "\n");
  });
});

Deno.test("sync works before and after the first write", async () => {
  await withDir(async (dir) => {
    const f = await RotatingFile.open(join(dir, "audit.log"), opts({ syncBeforeClose: true }));
    await f.sync();
    await f.write(bytes("x\n"));
    await f.sync();
    await f.close();
  });
});

Deno.test("writes after close reject", async () => {
  await withDir(async (dir) => {
    const f = await RotatingFile.open(join(dir, "audit.log"), opts());
    await f.close();
    await f.close(); // idempotent
    await assert.rejects(f.write(bytes("x\n")), /closed/);
    await assert.rejects(f.reopen(), /closed/);
  });
});

Deno.test("concurrent writes are serialized and never interleave", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const f = await RotatingFile.open(path, opts({ maxSizeBytes: 1000 }));
    const writes = [];
    for (let i = 0; i < 50; i++) writes.push(f.write(line(String(i % 10), 100)));
    await Promise.all(writes);
    await f.close();
    const all: string[] = [];
    for (const name of await names(dir)) {
      const text = await Deno.readTextFile(join(dir, name));
      assert.ok(text.length <= 1000, name);
      all.push(...text.split("\n").filter((l) => l !== ""));
    }
    assert.equal(all.length, 50);
    for (const l of all) assert.match(l, /^(\d)\1{98}$/);
  });
});
