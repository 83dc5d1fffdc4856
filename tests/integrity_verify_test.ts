/**
 * The tamper matrix: files written by a log sink with `integrity`, changed the ways an
 * intruder would, and what `verify` says about each (kind and place).
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { join } from "node:path";
import { createLogSink, type LogSinkConfig } from "../backends/log.ts";
import type { SinkContext } from "../backends/sink.ts";
import { FakeClock } from "../pipeline/core/clock.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { SinkStats } from "../pipeline/core/stats.ts";
import { loadUnits } from "../cli/verify/sidecars.ts";
import { type VerifyResult, verifyUnits } from "../cli/verify/check.ts";
import { testEnvelope } from "./helpers/events.ts";
import { withTempDir } from "./helpers/tmp.ts";

const keys = generateKeyPairSync("ed25519");

function ctx(stats = new SinkStats("audit")): SinkContext {
  return {
    name: "audit",
    log: silentLogger,
    clock: new FakeClock(),
    stats,
    signal: new AbortController().signal,
  };
}

function config(path: string, compress = false): LogSinkConfig {
  return {
    path,
    format: "json",
    fsync: "batch",
    rotate: { maxSize: 0, maxBackup: 0, maxAge: 0, compress },
    integrity: { checkpointEvery: { events: 10, interval: 0 } },
  };
}

const withDir = <T>(fn: (dir: string) => Promise<T>) => withTempDir("auditpipe-integrity-", fn);

/**
 * Writes `n` events (batches of 3) through a signing log sink and closes it; with
 * `maxSizeBytes`, files rotate. Returns the log files in the directory, sidecars left out.
 */
async function writeLog(
  dir: string,
  n: number,
  opts: { maxSizeBytes?: number; compress?: boolean; stats?: SinkStats } = {},
): Promise<string[]> {
  const path = join(dir, "audit.log");
  const sink = await createLogSink(
    config(path, opts.compress),
    ctx(opts.stats),
    { checkInterval: 0, maxSizeBytes: opts.maxSizeBytes },
    keys.privateKey,
  );
  for (let i = 0; i < n; i += 3) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 3); j++) batch.push(testEnvelope(`id-${j}`));
    await sink.write(batch);
  }
  await sink.close();
  return await logFiles(dir);
}

async function logFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".chain")) out.push(join(dir, e.name));
  }
  return out.sort().reverse(); // any order will do; not the chain's
}

async function verify(files: string[], key: KeyObject = keys.publicKey): Promise<VerifyResult> {
  return await verifyUnits(await loadUnits(files, key), key);
}

async function editLines(path: string, fn: (lines: string[]) => string[]): Promise<void> {
  const lines = (await Deno.readTextFile(path)).split("\n");
  lines.pop();
  await Deno.writeTextFile(path, fn(lines).map((l) => l + "\n").join(""));
}

function kinds(r: VerifyResult): string[] {
  return r.problems.map((p) => `${p.kind} ${p.at.replace(/^.*\//, "")}`);
}

Deno.test("verify: untouched files are OK, every line counted and checkpoints signed", async () => {
  await withDir(async (dir) => {
    const stats = new SinkStats("audit");
    const files = await writeLog(dir, 25, { stats });
    const r = await verify(files);
    assert.deepEqual(r.problems, []);
    assert.equal(r.lines, 25);
    assert.equal(r.files, 1);
    assert.equal(r.chains.length, 1);
    // open, two every 10 lines (batches of 3: at 12 and 24), close
    assert.equal(r.checkpoints, 4);
    assert.equal(stats.checkpoints, 4);
    assert.equal(stats.chainLength, 25);
    assert.deepEqual(r.notes, []);
  });
});

Deno.test("verify: event lines are exactly what a sink without integrity writes", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, 5);
    const plain = join(dir, "plain.log");
    const sink = await createLogSink({ ...config(plain), integrity: undefined }, ctx());
    await sink.write([0, 1, 2].map((j) => testEnvelope(`id-${j}`)));
    await sink.write([3, 4].map((j) => testEnvelope(`id-${j}`)));
    await sink.close();
    assert.equal(await Deno.readTextFile(join(dir, "audit.log")), await Deno.readTextFile(plain));
  });
});

Deno.test("verify: one edited byte is reported as an edited line at file:line", async () => {
  await withDir(async (dir) => {
    const files = await writeLog(dir, 25);
    await editLines(files[0], (l) => {
      l[13] = l[13].replace("alice", "alicf");
      return l;
    });
    assert.deepEqual(kinds(await verify(files)), ["edited audit.log:14"]);
  });
});

Deno.test("verify: a deleted line is reported as removed, at the line after it", async () => {
  await withDir(async (dir) => {
    const files = await writeLog(dir, 25);
    await editLines(files[0], (l) => l.filter((_, i) => i !== 4));
    const r = await verify(files);
    assert.deepEqual(kinds(r), ["removed audit.log:5"]);
    assert.match(r.problems[0].message, /1 line\(s\) removed .*lines 5 as signed/);
  });
});

Deno.test("verify: an inserted line is reported as inserted at its place", async () => {
  await withDir(async (dir) => {
    const files = await writeLog(dir, 25);
    await editLines(files[0], (l) => [...l.slice(0, 7), l[2], ...l.slice(7)]);
    assert.deepEqual(kinds(await verify(files)), ["inserted audit.log:8"]);
  });
});

Deno.test("verify: two swapped lines are reported as reordered", async () => {
  await withDir(async (dir) => {
    const files = await writeLog(dir, 25);
    await editLines(files[0], (l) => {
      [l[8], l[9]] = [l[9], l[8]];
      return l;
    });
    assert.deepEqual(kinds(await verify(files)), ["reordered audit.log:9"]);
  });
});

Deno.test("verify: a file cut mid-line is reported truncated at the cut line", async () => {
  await withDir(async (dir) => {
    const files = await writeLog(dir, 25);
    const text = await Deno.readTextFile(files[0]);
    const lines = text.split("\n");
    const keep = lines.slice(0, 20).join("\n") + "\n" + lines[20].slice(0, 30);
    await Deno.writeTextFile(files[0], keep);
    const r = await verify(files);
    assert.deepEqual(kinds(r), ["truncated audit.log:21"]);
    assert.match(r.problems[0].message, /cut mid-line.*lines 22-25 are missing/);
  });
});

Deno.test("verify: a file cut at a line end is reported truncated with the missing lines", async () => {
  await withDir(async (dir) => {
    const files = await writeLog(dir, 25);
    await editLines(files[0], (l) => l.slice(0, 18));
    const r = await verify(files);
    assert.deepEqual(kinds(r), ["truncated audit.log"]);
    assert.match(r.problems[0].message, /cut short after line 18: lines 19-25/);
  });
});

Deno.test("verify: lines appended after the last checkpoint are unverified, not OK", async () => {
  await withDir(async (dir) => {
    const files = await writeLog(dir, 25);
    await Deno.writeTextFile(files[0], '{"kind":"Event"}\n', { append: true });
    const r = await verify(files);
    assert.deepEqual(kinds(r), ["unverified audit.log:26"]);
  });
});

Deno.test("verify: rotation across several files keeps one chain; files in any order", async () => {
  await withDir(async (dir) => {
    const files = await writeLog(dir, 40, { maxSizeBytes: 1200 });
    assert.ok(files.length >= 4, `${files.length} files`);
    const r = await verify(files);
    assert.deepEqual(r.problems, []);
    assert.equal(r.lines, 40);
    assert.equal(r.files, files.length);
    assert.equal(r.chains.length, 1);
  });
});

Deno.test("verify: gzipped backups are read as they are", async () => {
  await withDir(async (dir) => {
    const files = await writeLog(dir, 40, { maxSizeBytes: 1200, compress: true });
    assert.ok(files.filter((f) => f.endsWith(".gz")).length >= 3, files.join(" "));
    const r = await verify(files);
    assert.deepEqual(r.problems, []);
    assert.equal(r.lines, 40);
  });
});

Deno.test("verify: a deleted rotated backup is reported as a missing file", async () => {
  await withDir(async (dir) => {
    const files = (await writeLog(dir, 40, { maxSizeBytes: 1200 })).sort();
    // files sorted by name: backups oldest first, audit.log last; remove the second backup
    const gone = files[1];
    await Deno.remove(gone);
    const r = await verify(files.filter((f) => f !== gone));
    const missing = r.problems.filter((p) => p.kind === "missing-file");
    assert.equal(missing.length, 1, JSON.stringify(r.problems));
    assert.ok(missing[0].message.includes(gone.replace(/^.*\//, "")), missing[0].message);
    // also when its sidecar is given (a glob over the directory)
    const r2 = await verify([...files.filter((f) => f !== gone), gone + ".chain"]);
    assert.ok(
      r2.problems.some((p) => p.kind === "missing-file" && p.message.includes("only its sidecar")),
    );
  });
});

Deno.test("verify: a sidecar re-signed with another key is reported as forged", async () => {
  await withDir(async (dir) => {
    const files = await writeLog(dir, 25);
    // The intruder edits a line and writes a whole new sidecar for it with their own key.
    await editLines(files[0], (l) => {
      l[3] = l[3].replace("alice", "mallory");
      return l;
    });
    const other = generateKeyPairSync("ed25519");
    await Deno.remove(files[0] + ".chain");
    const sink = await createLogSink(
      config(join(dir, "forged.log")),
      ctx(),
      { checkInterval: 0 },
      other.privateKey,
    );
    await sink.write([testEnvelope("x")]);
    await sink.close();
    await Deno.rename(join(dir, "forged.log.chain"), files[0] + ".chain");
    const r = await verify(files);
    assert.ok(r.problems.some((p) => p.kind === "forged" && p.at.endsWith("audit.log.chain:1")));
    assert.ok(r.problems.some((p) => p.kind === "unverified"), JSON.stringify(r.problems));
  });
});

Deno.test("verify: a removed checkpoint record breaks the chain at its place", async () => {
  await withDir(async (dir) => {
    const files = await writeLog(dir, 25);
    await editLines(files[0] + ".chain", (l) => l.filter((_, i) => i !== 1));
    const r = await verify(files);
    assert.ok(r.problems.some((p) => p.kind === "broken-chain" && p.at.endsWith(".chain:2")));
  });
});

/** A sink as a crashed daemon leaves it: written to, never closed (its file stays open). */
async function crashedSink(dir: string, n: number): Promise<void> {
  const sink = await createLogSink(
    {
      ...config(join(dir, "audit.log")),
      integrity: { checkpointEvery: { events: 1000, interval: 0 } },
    },
    ctx(),
    { checkInterval: 0 },
    keys.privateKey,
  );
  for (let i = 0; i < n; i++) await sink.write([testEnvelope(`crash-${i}`)]);
  // Its chain's worker would keep the test alive; the process is gone after a real crash.
  await sink.close();
  // What the crash took: every record after `open`, as if none had been written.
  await editLines(join(dir, "audit.log.chain"), (l) => l.slice(0, 1));
}

Deno.test("recovery: a partial last line left by a crash is cut off; the lines before it are chained as ours", async () => {
  await withDir(async (dir) => {
    await crashedSink(dir, 7);
    const path = join(dir, "audit.log");
    await Deno.writeTextFile(path, '{"kind":"Event","auditID":"half', { append: true });
    const files = await writeLog(dir, 5);
    const r = await verify(files);
    assert.deepEqual(r.problems, []);
    assert.equal(r.lines, 12);
    assert.deepEqual(r.notes.map((n) => `${n.kind} ${n.at.replace(/^.*\//, "")}`), [
      "restart audit.log:8",
    ]);
    assert.match(r.notes[0].message, /lines 1-7 \(7\), written before a crash/);
    assert.ok(!(await Deno.readTextFile(path)).includes("half"));
  });
});

Deno.test("recovery: a sink that finds no checkpoint starts a new chain after the lines already there, and verify shows both", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, 6);
    await Deno.remove(join(dir, "audit.log.chain"));
    const files = await writeLog(dir, 4);
    const r = await verify(files);
    assert.deepEqual(kinds(r), ["unverified audit.log:1-6"]);
    assert.equal(r.lines, 10);
    assert.equal(r.chains.length, 1);
  });
});

Deno.test("recovery: a chain lost mid-file is shown as a new chain; the old one is still verified", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, 6);
    // The last record is gone (say, the sidecar was cut): the sink cannot pick up the chain.
    await editLines(
      join(dir, "audit.log.chain"),
      (l) => l.map((x, i) => i === l.length - 1 ? x.replace('"sig":"', '"sig":"AA') : x),
    );
    const files = await writeLog(dir, 4);
    const r = await verify(files);
    assert.ok(
      r.notes.some((n) => n.kind === "new-chain" && n.at.endsWith("audit.log:7")),
      JSON.stringify(r.notes),
    );
    assert.equal(r.chains.length, 2);
    assert.ok(r.problems.some((p) => p.kind === "forged"));
  });
});

Deno.test("reopen of the same file writes a reopen checkpoint and the chain goes on", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const sink = await createLogSink(config(path), ctx(), { checkInterval: 0 }, keys.privateKey);
    await sink.write([testEnvelope("a"), testEnvelope("b")]);
    await sink.reopen!();
    await sink.write([testEnvelope("c")]);
    await sink.close();
    const kindsWritten = (await Deno.readTextFile(path + ".chain")).trim().split("\n")
      .map((l) => JSON.parse(l).kind);
    assert.deepEqual(kindsWritten, ["open", "reopen", "close"]);
    const r = await verify([path]);
    assert.deepEqual(r.problems, []);
    assert.equal(r.lines, 3);
  });
});

Deno.test("cleanup removes a backup's sidecar with the backup", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const sink = await createLogSink(
      { ...config(path), rotate: { maxSize: 0, maxBackup: 1, maxAge: 0, compress: false } },
      ctx(),
      { checkInterval: 0, maxSizeBytes: 1200 },
      keys.privateKey,
    );
    for (let i = 0; i < 40; i += 3) {
      await sink.write([i, i + 1, i + 2].map((j) => testEnvelope(`id-${j}`)));
    }
    await sink.close();
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.equal(names.filter((n) => n.endsWith(".chain")).length, 2, names.join(" "));
    assert.equal(names.length, 4, names.join(" "));
  });
});

Deno.test("reopen after logrotate moved the file: the chain goes on into the new file; verify follows it once the old sidecar is beside the moved file", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const sink = await createLogSink(config(path), ctx(), { checkInterval: 0 }, keys.privateKey);
    await sink.write([testEnvelope("a"), testEnvelope("b")]);
    await Deno.rename(path, path + ".1");
    await sink.write([testEnvelope("c")]); // still into the moved file, as before SIGHUP
    await sink.reopen!();
    await sink.write([testEnvelope("d"), testEnvelope("e")]);
    await sink.close();
    const moved = [];
    for await (const e of Deno.readDir(dir)) {
      if (e.name.startsWith("audit.log.chain-")) moved.push(e.name);
    }
    assert.equal(moved.length, 1);
    await Deno.rename(join(dir, moved[0]), path + ".1.chain");
    const r = await verify([path, path + ".1"]);
    assert.deepEqual(r.problems, []);
    assert.equal(r.lines, 5);
    assert.equal(r.files, 2);
    assert.equal(r.chains.length, 1);
    // Without the old file, the new one's chain comes from a file that is missing.
    const r2 = await verify([path]);
    assert.deepEqual(kinds(r2), ["missing-file audit.log"]);
  });
});

Deno.test("verify: files cut at a checkpoint together with their later checkpoints are shown to end without a close record", async () => {
  await withDir(async (dir) => {
    const files = await writeLog(dir, 25);
    await editLines(files[0] + ".chain", (l) => l.slice(0, -1));
    await editLines(files[0], (l) => l.slice(0, 24));
    const r = await verify(files);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.notes.map((n) => `${n.kind} ${n.at.replace(/^.*\//, "")}`), [
      "open-end audit.log.chain:3",
    ]);
  });
});
