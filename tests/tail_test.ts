import assert from "node:assert/strict";
import { type TailConfig, tailSource, type TailStream } from "../pipeline/ingest/tail/mod.ts";
import { readCheckpoint } from "../pipeline/ingest/checkpoint.ts";
import type { Chunk } from "../pipeline/core/envelope.ts";
import { PipelineStats, SourceStats } from "../pipeline/core/stats.ts";
import { readiness } from "../pipeline/server.ts";
import { createLogger } from "../pipeline/core/log.ts";

import { auditLogLines } from "./data/corpus.ts";

const realLines = auditLogLines();

/** kube-apiserver audit.log lines (generated), each with a unique auditID `<prefix><i>` so delivery is checkable. */
function lines(prefix: string, n: number, from = 0): string[] {
  const out: string[] = [];
  for (let i = from; i < from + n; i++) {
    const src = realLines[i % realLines.length];
    out.push(src.replace(/"auditID":"[^"]*"/, `"auditID":"${prefix}${i}"`));
  }
  return out;
}

/** {@linkcode lines} as the text of a log file, each line ended. */
function text(prefix: string, n: number, from = 0): string {
  return lines(prefix, n, from).join("\n") + "\n";
}

function ids(prefix: string, n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i + from}`);
}

async function append(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text, { append: true });
}

type Decision = "release" | "fail" | "hold";

/** Reads a tail stream like the fan-out would, settling each chunk's ack as told. */
class Consumer {
  readonly ids: string[] = [];
  readonly chunks: Chunk[] = [];
  readonly done: Promise<void>;

  constructor(
    stream: ReadableStream<Chunk>,
    decide: (chunk: Chunk, index: number) => Decision = () => "release",
  ) {
    this.done = (async () => {
      for await (const chunk of stream) {
        const i = this.chunks.length;
        this.chunks.push(chunk);
        for (const e of chunk.items) this.ids.push(e.event.auditID);
        const d = decide(chunk, i);
        if (d === "release") chunk.ack.release();
        else if (d === "fail") chunk.ack.fail(new Error("sink down"));
      }
    })();
  }

  async until(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; have ${this.ids.length} events`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Waits until `n` events arrived. */
  count(n: number, timeoutMs?: number): Promise<void> {
    return this.until(`${n} events`, () => this.ids.length >= n, timeoutMs);
  }
}

interface Run {
  stream: TailStream;
  stats: SourceStats;
  ac: AbortController;
  logs: Record<string, unknown>[];
  consumer: Consumer;
  stop(): Promise<void>;
}

function start(
  cfg: Partial<TailConfig> & { path: string },
  opts: {
    decide?: (chunk: Chunk, index: number) => Decision;
    readSize?: number;
    maxUnsettled?: number;
    drainTimeout?: number;
  } = {},
): Run {
  const stats = new SourceStats("t");
  const ac = new AbortController();
  const logs: Record<string, unknown>[] = [];
  const log = createLogger("debug", (l) => logs.push(JSON.parse(l)));
  const stream = tailSource({
    type: "tail",
    startAt: "beginning",
    maxLineBytes: 64 * 1024,
    pollInterval: 20,
    ...cfg,
  }, {
    name: "t",
    log,
    stats,
    signal: ac.signal,
    retryDelay: 30,
    checkpointInterval: 10,
    readSize: opts.readSize,
    maxUnsettled: opts.maxUnsettled,
    drainTimeout: opts.drainTimeout ?? 2000,
  });
  const consumer = new Consumer(stream, opts.decide);
  return {
    stream,
    stats,
    ac,
    logs,
    consumer,
    async stop() {
      ac.abort();
      await stream.finished;
      await consumer.done;
    },
  };
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "tail_test_" });
}

/** A fresh folder, the log the tail follows in it and where its checkpoint goes. */
async function tailDir(): Promise<{ dir: string; path: string; checkpointFile: string }> {
  const dir = await tempDir();
  return { dir, path: `${dir}/audit.log`, checkpointFile: `${dir}/tail.ckpt` };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

Deno.test("lines written in pieces across writes arrive whole, in order", async () => {
  const { dir, path } = await tailDir();
  await Deno.writeTextFile(path, "");
  const run = start({ path });
  const ls = lines("a", 20);
  const text = ls.join("\n") + "\n";
  for (let at = 0; at < text.length; at += 997) {
    await append(path, text.slice(at, at + 997));
    await sleep(1);
  }
  await run.consumer.count(20);
  assert.deepEqual(run.consumer.ids, ids("a", 20));
  assert.equal(run.stats.events, 20);
  assert.equal(run.stats.ready, true);
  await run.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a partial last line is held back until its newline is written", async () => {
  const { dir, path } = await tailDir();
  const [l0, l1] = lines("p", 2);
  await Deno.writeTextFile(path, l0 + "\n" + l1.slice(0, 100));
  const run = start({ path });
  await run.consumer.count(1);
  await sleep(100);
  assert.deepEqual(run.consumer.ids, ["p0"]);
  await append(path, l1.slice(100) + "\r\n");
  await run.consumer.count(2);
  assert.deepEqual(run.consumer.ids, ["p0", "p1"]);
  assert.equal(run.stats.lagBytes, 0);
  await run.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an over-long line is counted and skipped while later lines still arrive", async () => {
  const { dir, path } = await tailDir();
  await Deno.writeTextFile(path, "");
  const run = start({ path, maxLineBytes: 4096 }, { readSize: 1024 });
  const [a, b] = lines("l", 2);
  await append(path, a + "\n");
  // 200 KiB of a single line, written in pieces: must not stall or be buffered whole
  await append(path, '{"kind":"Event",' + "x".repeat(100 * 1024));
  await sleep(30);
  await append(path, "y".repeat(100 * 1024) + "\n" + b + "\n");
  await run.consumer.count(2);
  assert.deepEqual(run.consumer.ids, ["l0", "l1"]);
  assert.equal(run.stats.rejected.get("too_long"), 1);
  assert.ok(run.logs.some((l) => l.msg === "lines over maxLineBytes skipped"));
  await run.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("blank lines are skipped and invalid lines counted without stopping the tail", async () => {
  const { dir, path } = await tailDir();
  const [a, b] = lines("i", 2);
  await Deno.writeTextFile(
    path,
    `${a}\n\n   \nnot json\n{"kind":"Pod"}\n{"level":"Metadata"}\n${b}\n`,
  );
  const run = start({ path });
  await run.consumer.count(2);
  assert.deepEqual(run.consumer.ids, ["i0", "i1"]);
  assert.equal(run.stats.rejected.get("invalid_event"), 3);
  const logged = run.logs.find((l) => l.msg === "invalid lines skipped");
  assert.ok(logged, "invalid lines are logged");
  assert.equal(typeof logged.offset, "number");
  assert.equal(typeof logged.reason, "string");
  await run.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("startAt end skips what is there and delivers what is appended", async () => {
  const { dir, path } = await tailDir();
  await Deno.writeTextFile(path, text("old", 5));
  const run = start({ path, startAt: "end" });
  await run.consumer.until("the tail to open the file at its end", () => run.stats.ready);
  await append(path, text("new", 3));
  await run.consumer.count(3);
  await sleep(50);
  assert.deepEqual(run.consumer.ids, ids("new", 3));
  await run.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("rename rotation in the middle of a burst delivers every line exactly once in order", async () => {
  const { dir, path } = await tailDir();
  await Deno.writeTextFile(path, "");
  const run = start({ path }, { readSize: 8192 });
  const all = lines("r", 2000);
  let n = 0;
  for (let rotation = 0; rotation < 4; rotation++) {
    for (let k = 0; k < 500; k += 25) {
      await append(path, all.slice(n, n + 25).join("\n") + "\n");
      n += 25;
    }
    // lumberjack: rename to a timestamped backup, then create a new file
    await Deno.rename(path, `${dir}/audit-2024-03-01T12-34-5${rotation}.000.log`);
    await Deno.writeTextFile(path, "", { mode: 0o600 });
  }
  await run.consumer.count(2000);
  await sleep(100);
  assert.deepEqual(run.consumer.ids, ids("r", 2000));
  assert.ok(run.logs.some((l) => l.msg === "file rotated; following the next file"));
  await run.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a rotated file's last line without a newline is delivered at the switch", async () => {
  const { dir, path } = await tailDir();
  const [a, b, c] = lines("n", 3);
  await Deno.writeTextFile(path, `${a}\n${b}`);
  const run = start({ path });
  await run.consumer.count(1);
  await Deno.rename(path, `${dir}/audit-1.log`);
  await Deno.writeTextFile(path, `${c}\n`);
  await run.consumer.count(3);
  assert.deepEqual(run.consumer.ids, ["n0", "n1", "n2"]);
  await run.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("copytruncate: a file shrinking below the offset is read again from the start", async () => {
  const { dir, path } = await tailDir();
  await Deno.writeTextFile(path, text("c", 50));
  const run = start({ path });
  await run.consumer.count(50);
  await Deno.copyFile(path, `${dir}/audit.log.1`);
  await Deno.truncate(path, 0);
  await sleep(60);
  await append(path, text("c", 10, 50));
  await run.consumer.count(60);
  assert.deepEqual(run.consumer.ids, ids("c", 60));
  assert.ok(run.logs.some((l) => l.msg === "file truncated; reading it from the start"));
  await run.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a deleted and recreated file is followed", async () => {
  const { dir, path } = await tailDir();
  await Deno.writeTextFile(path, text("d", 10));
  const run = start({ path });
  await run.consumer.count(10);
  await Deno.remove(path);
  await sleep(60);
  await Deno.writeTextFile(path, text("d", 10, 10));
  await run.consumer.count(20);
  assert.deepEqual(run.consumer.ids, ids("d", 20));
  await run.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a file that does not exist yet is waited for and read from its start", async () => {
  const dir = await tempDir();
  const path = `${dir}/sub/audit.log`;
  const run = start({ path, startAt: "end" });
  await sleep(80);
  assert.equal(run.stats.ready, false);
  await Deno.mkdir(`${dir}/sub`);
  await Deno.writeTextFile(path, text("w", 5));
  await run.consumer.count(5);
  assert.deepEqual(run.consumer.ids, ids("w", 5));
  assert.equal(run.stats.ready, true);
  await run.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("checkpoint resume continues where the last run stopped, without gap or repeat", async () => {
  const { dir, path } = await tailDir();
  const checkpointFile = `${dir}/state/tail.ckpt`;
  await Deno.writeTextFile(path, text("k", 100));
  const first = start({ path, checkpointFile, startAt: "end" });
  await first.consumer.until("the tail to open the file at its end", () => first.stats.ready);
  await append(path, text("k", 100, 100));
  await first.consumer.count(100);
  await first.stop();
  const cp = await readCheckpoint(checkpointFile);
  assert.ok(cp);
  assert.equal(cp.offset, (await Deno.stat(path)).size);

  // written while auditpipe was down
  await append(path, text("k", 50, 200));
  const second = start({ path, checkpointFile, startAt: "end" });
  await second.consumer.count(50);
  await append(path, text("k", 10, 250));
  await second.consumer.count(60);
  await sleep(50);
  assert.deepEqual(first.consumer.ids, ids("k", 100, 100));
  assert.deepEqual(second.consumer.ids, ids("k", 60, 200));
  await second.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("startAt end records its starting point, so a quick restart skips nothing", async () => {
  const { dir, path, checkpointFile } = await tailDir();
  await Deno.writeTextFile(path, text("q", 10));
  const first = start({ path, checkpointFile, startAt: "end" });
  await first.consumer.until("the tail to open the file at its end", () => first.stats.ready);
  await first.stop();
  await append(path, text("q", 5, 10));
  const second = start({ path, checkpointFile, startAt: "end" });
  await second.consumer.count(5);
  assert.deepEqual(second.consumer.ids, ids("q", 5, 10));
  await second.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("restart after the checkpointed file was rotated away finishes that file first", async () => {
  const { dir, path, checkpointFile } = await tailDir();
  await Deno.writeTextFile(path, text("o", 100));
  const first = start({ path, checkpointFile });
  await first.consumer.count(100);
  await first.stop();

  // while down: more lines, a rotation, lines in the new file
  await append(path, text("o", 20, 100));
  await Deno.rename(path, `${dir}/audit-2024-03-01T12-34-56.789.log`);
  await Deno.writeTextFile(path, text("o", 30, 120));

  const second = start({ path, checkpointFile });
  await second.consumer.count(50);
  await sleep(50);
  assert.deepEqual(second.consumer.ids, ids("o", 50, 100));
  assert.ok(second.logs.some((l) => l.msg === "checkpointed file was rotated; finishing it first"));
  await second.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("restart after several rotations reads the backups in order before the current file", async () => {
  const { dir, path, checkpointFile } = await tailDir();
  await Deno.writeTextFile(path, text("m", 10));
  const first = start({ path, checkpointFile });
  await first.consumer.count(10);
  await first.stop();

  await append(path, text("m", 10, 10));
  await Deno.rename(path, `${dir}/audit-2024-03-01T12-00-00.000.log`);
  await Deno.writeTextFile(path, text("m", 10, 20));
  await Deno.rename(path, `${dir}/audit-2024-03-01T13-00-00.000.log`);
  await Deno.writeTextFile(path, text("m", 10, 30));

  const second = start({ path, checkpointFile });
  await second.consumer.count(30);
  await sleep(50);
  assert.deepEqual(second.consumer.ids, ids("m", 30, 10));
  await second.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a failed ack in a file rotated away since re-reads that file, then the new one", async () => {
  const { dir, path } = await tailDir();
  await Deno.writeTextFile(path, text("v", 30));
  let releaseFrom = Infinity;
  const run = start({ path }, {
    readSize: 8192,
    decide: (_c, i) => i >= releaseFrom ? "release" : "hold",
  });
  await run.consumer.count(30);
  await Deno.rename(path, `${dir}/audit-2024-03-01T12-00-00.000.log`);
  await Deno.writeTextFile(path, text("v", 30, 30));
  await run.consumer.count(60);
  const held = [...run.consumer.chunks];
  releaseFrom = held.length;
  held[0].ack.fail(new Error("sink down"));
  for (const c of held.slice(1)) c.ack.release();
  await run.consumer.count(120);
  await sleep(50);
  assert.deepEqual(run.consumer.ids, [...ids("v", 60), ...ids("v", 60)]);
  await run.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a checkpoint whose inode now holds other content starts the file from the start", async () => {
  const { dir, path, checkpointFile } = await tailDir();
  await Deno.writeTextFile(path, text("f", 20));
  const first = start({ path, checkpointFile });
  await first.consumer.count(20);
  await first.stop();
  // rewritten in place (same inode), longer than the checkpoint offset, different head
  await Deno.writeTextFile(path, text("g", 40));
  const second = start({ path, checkpointFile });
  await second.consumer.count(40);
  assert.deepEqual(second.consumer.ids, ids("g", 40));
  await second.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a failed ack makes the tail re-read from that chunk: events delivered again", async () => {
  const { dir, path, checkpointFile } = await tailDir();
  await Deno.writeTextFile(path, text("x", 60));
  let failed = false;
  const run = start({ path, checkpointFile }, {
    readSize: 8192,
    decide: (chunk) => {
      if (!failed && chunk.items.some((e) => e.event.auditID === "x20")) {
        failed = true;
        return "fail";
      }
      return "release";
    },
  });
  await run.consumer.until("redelivery", () => run.consumer.ids.lastIndexOf("x59") > 59);
  const got = run.consumer.ids;
  // first pass up to the failure and possibly beyond, then everything again from that chunk
  const firstX20 = got.indexOf("x20");
  const again = got.lastIndexOf("x20");
  assert.ok(again > firstX20, "x20 delivered again");
  assert.deepEqual(got.slice(again).slice(0, 60 - 20), ids("x", 40, 20));
  assert.deepEqual([...new Set(got)].sort(), ids("x", 60).sort());
  assert.ok(
    run.logs.some((l) => l.msg === "a sink failed a chunk; re-reading from it after a delay"),
  );
  await run.stop();
  const cp = await readCheckpoint(checkpointFile);
  assert.equal(cp?.offset, (await Deno.stat(path)).size);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the checkpoint advances only over acked chunks, in read order", async () => {
  const { dir, path, checkpointFile } = await tailDir();
  await Deno.writeTextFile(path, lines("o", 3).map((l) => l + "\n").join(""));
  // small reads: the three lines come in several chunks, all held at first
  const run = start({ path, checkpointFile }, { readSize: 512, decide: () => "hold" });
  await run.consumer.count(3);
  const [first, ...later] = run.consumer.chunks;
  assert.ok(later.length >= 1);
  assert.deepEqual(first.items.map((e) => e.event.auditID), ["o0"]);
  for (const c of later) c.ack.release();
  await sleep(60);
  assert.equal((await readCheckpoint(checkpointFile))?.offset, 0);
  first.ack.release();
  await waitFor(async () => (await readCheckpoint(checkpointFile))?.offset !== 0);
  assert.equal((await readCheckpoint(checkpointFile))?.offset, (await Deno.stat(path)).size);
  await run.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("reads pause while too many chunks wait for their ack (no unbounded queue)", async () => {
  const { dir, path } = await tailDir();
  await Deno.writeTextFile(path, text("b", 200));
  const run = start({ path }, { readSize: 2048, maxUnsettled: 4, decide: () => "hold" });
  await run.consumer.until("4 chunks", () => run.consumer.chunks.length >= 4);
  await sleep(100);
  assert.equal(run.consumer.chunks.length, 4);
  assert.ok(run.stats.lagBytes > 0, "lag shows the unread part");
  for (const c of run.consumer.chunks) c.ack.release();
  await run.consumer.until("more chunks", () => run.consumer.chunks.length > 4);
  run.ac.abort();
  // release whatever was handed out before the stop so the drain is quick
  await sleep(30);
  for (const c of run.consumer.chunks) if (!c.ack.done) c.ack.release();
  await run.stream.finished;
  await run.consumer.done;
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cancelling the stream stops the tail and writes the checkpoint", async () => {
  const { dir, path, checkpointFile } = await tailDir();
  await Deno.writeTextFile(path, text("z", 10));
  const stats = new SourceStats("t");
  const stream = tailSource({
    type: "tail",
    path,
    startAt: "beginning",
    checkpointFile,
    maxLineBytes: 65536,
    pollInterval: 20,
  }, {
    name: "t",
    log: createLogger("error", () => {}),
    stats,
    signal: new AbortController().signal,
    checkpointInterval: 1000,
  });
  const reader = stream.getReader();
  const { value } = await reader.read();
  assert.ok(value);
  value.ack.release();
  await reader.cancel();
  await stream.finished;
  assert.equal((await readCheckpoint(checkpointFile))?.offset, (await Deno.stat(path)).size);
  assert.equal(stats.ready, false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("kill -9 during a burst and restart: every line delivered at least once, none skipped", async () => {
  const { dir, path, checkpointFile } = await tailDir();
  const out = `${dir}/out.txt`;
  await Deno.writeTextFile(path, "");
  const runner = new URL("./fixtures/tail_runner.ts", import.meta.url).pathname;
  const spawn = () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", runner, path, checkpointFile, out],
      stdout: "null",
      stderr: "null",
    }).spawn();
  const delivered = async () => {
    try {
      return (await Deno.readTextFile(out)).split("\n").filter((l) => l !== "");
    } catch {
      return [];
    }
  };

  const total = 3000;
  const all = lines("s", total);
  let child = spawn();
  let written = 0;
  const writer = (async () => {
    while (written < total) {
      await append(path, all.slice(written, written + 20).join("\n") + "\n");
      written += 20;
      if (written === 1500) {
        await Deno.rename(path, `${dir}/audit-2024-03-01T00-00-00.000.log`);
        await Deno.writeTextFile(path, "");
      }
      await sleep(5);
    }
  })();
  await waitFor(async () => (await delivered()).length > 500, 20_000);
  child.kill("SIGKILL");
  await child.status;
  const atKill = written;
  const deliveredAtKill = (await delivered()).length;
  // the restart happens while the burst goes on, across the rotation
  await sleep(100);
  child = spawn();
  // and once more past the rotation, while the old file may still be being finished
  await waitFor(async () => (await delivered()).length > 1600, 20_000);
  child.kill("SIGKILL");
  await child.status;
  child = spawn();
  await writer;
  await waitFor(async () => new Set(await delivered()).size >= total, 30_000);
  child.kill("SIGTERM");
  await child.status;
  assert.ok(atKill < total, `the kill hit the burst (${atKill} of ${total} written)`);
  assert.ok(deliveredAtKill < total);

  const got = await delivered();
  const seen = new Set(got);
  const missing = ids("s", total).filter((id) => !seen.has(id));
  assert.deepEqual(missing, []);
  // order of first deliveries is the write order
  const firsts: string[] = [];
  const once = new Set<string>();
  for (const id of got) if (!once.has(id)) once.add(id), firsts.push(id);
  assert.deepEqual(firsts, ids("s", total));
  // repeats only around the kill: far fewer than a full re-read
  assert.ok(got.length - total < 1000, `${got.length - total} repeats`);
  await Deno.remove(dir, { recursive: true });
});

async function waitFor(pred: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await pred()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${pred}`);
    }
    await sleep(10);
  }
}

Deno.test("an unwritable checkpoint is counted, logged with its path and OS error, and fails readiness until a write succeeds", async () => {
  const { dir, path } = await tailDir();
  // The checkpoint's folder is a regular file: writes fail even for root.
  const state = `${dir}/state`;
  await Deno.writeTextFile(state, "not a folder\n");
  const checkpointFile = `${state}/tail.json`;
  const content = text("cp", 5);
  await Deno.writeTextFile(path, content);
  const run = start({ path, checkpointFile });
  const pipeline = new PipelineStats();
  pipeline.sources.set("t", run.stats);

  await run.consumer.count(5);
  await run.consumer.until("a failed checkpoint write", () => run.stats.checkpointErrors > 0);
  const r = readiness(pipeline, 60_000, performance.now());
  assert.equal(r.ready, false);
  assert.equal(r.failing[0].kind, "source");
  assert.equal(r.failing[0].name, "t");
  assert.match(r.failing[0].reason, /checkpoint/);
  assert.ok(r.failing[0].reason.includes(checkpointFile), r.failing[0].reason);
  const rec = run.logs.find((l) => l.checkpoint === checkpointFile);
  assert.ok(rec, JSON.stringify(run.logs));
  assert.match(String(rec.msg), /checkpoint/);
  assert.doesNotMatch(String(rec.msg), /read failed/);
  assert.match(String(rec.error), /not a directory|os error 20/i);

  // Fixed while idle: the source retries by itself and is ready again once a write succeeded.
  await Deno.remove(state);
  await run.consumer.until("readiness back", () => run.stats.failing === null);
  assert.equal(readiness(pipeline, 60_000, performance.now()).ready, true);
  assert.equal(
    (await readCheckpoint(checkpointFile))?.offset,
    new TextEncoder().encode(content).length,
  );
  const errors = run.stats.checkpointErrors;
  await run.stop();
  assert.equal(run.stats.checkpointErrors, errors);
  await Deno.remove(dir, { recursive: true });
});
