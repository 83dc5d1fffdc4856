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

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-integrity-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

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
  return await verifyUnits(await loadUnits(files, key));
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
