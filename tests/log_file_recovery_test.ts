/**
 * The log file after things go wrong under it: a write that fails part way (a full disk)
 * and a file removed or replaced while the sink runs.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createLogSink } from "../backends/log.ts";
import { type LogFileHandle, RotatingFile, type RotatingFileOptions } from "../backends/rotate.ts";
import type { SinkContext } from "../backends/sink.ts";
import { FakeClock } from "../pipeline/core/clock.ts";
import type { Logger } from "../pipeline/core/log.ts";
import { PipelineStats, type SinkStats } from "../pipeline/core/stats.ts";
import { metricsRegistry } from "../pipeline/metrics.ts";
import { testEnvelope } from "./helpers/events.ts";
import { postAccepted, startDaemon } from "./helpers/daemon.ts";
import { withTempDir } from "./helpers/tmp.ts";
import { scrapeMetrics } from "./helpers/metrics.ts";
import { waitFor } from "./helpers/wait.ts";

const enc = new TextEncoder();
const jsonLine = (id: string) =>
  enc.encode(JSON.stringify({ auditID: id, pad: "x".repeat(40) }) + "\n");

/** What the next write calls do: take n bytes (a short write), fail, or go through. */
type Step = number | "enospc" | "ok";

/** Faults a {@linkcode FaultyFile} injects, shared by every file the writer opens. */
interface Faults {
  plan: Step[];
  truncateFails: boolean;
}

/** A real file whose writes and truncates fail as `faults` says. */
class FaultyFile implements LogFileHandle {
  constructor(readonly inner: Deno.FsFile, readonly faults: Faults) {}
  write(p: Uint8Array): Promise<number> {
    const step = this.faults.plan.shift() ?? "ok";
    if (step === "enospc") {
      return Promise.reject(new Error("No space left on device (os error 28)"));
    }
    return this.inner.write(step === "ok" ? p : p.subarray(0, Math.min(step, p.length)));
  }
  truncate(len?: number): Promise<void> {
    if (this.faults.truncateFails) return Promise.reject(new Error("Operation not permitted"));
    return this.inner.truncate(len);
  }
  sync(): Promise<void> {
    return this.inner.sync();
  }
  stat(): Promise<Deno.FileInfo> {
    return this.inner.stat();
  }
  close(): void {
    this.inner.close();
  }
}

function faulty(faults: Faults): RotatingFileOptions["openFile"] {
  return async (path, options) => new FaultyFile(await Deno.open(path, options), faults);
}

function opts(extra: Partial<RotatingFileOptions> = {}): RotatingFileOptions {
  return {
    maxSize: 0,
    maxBackup: 0,
    maxAge: 0,
    compress: false,
    clock: new FakeClock(),
    checkInterval: 0,
    ...extra,
  };
}

const withDir = <T>(fn: (dir: string) => Promise<T>) => withTempDir("auditpipe-recovery-", fn);

/** The file's lines; asserts it ends at a line boundary and returns each line's auditID. */
async function ids(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path);
  assert.ok(text === "" || text.endsWith("\n"), `file ends in a partial line: ${text.slice(-30)}`);
  return text.split("\n").slice(0, -1).map((l) => {
    try {
      return JSON.parse(l).auditID;
    } catch {
      return `<torn: ${l.slice(0, 20)}>`;
    }
  });
}

/** A logger that keeps what it is told. */
function recorder(): Logger & { records: { level: string; msg: string; fields: unknown }[] } {
  const records: { level: string; msg: string; fields: unknown }[] = [];
  const at = (level: string) => (msg: string, fields?: unknown) => {
    records.push({ level, msg, fields });
  };
  const log = {
    records,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    with: () => log,
  };
  return log;
}

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

Deno.test("a short write then a full disk leaves no partial line: the file is cut back and the next write starts clean", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const faults: Faults = { plan: [], truncateFails: false };
    const f = await RotatingFile.open(path, opts({ openFile: faulty(faults) }));
    await f.writeRecords([jsonLine("a1"), jsonLine("a2")]);
    faults.plan = [30, "enospc"];
    await assert.rejects(f.writeRecords([jsonLine("b1"), jsonLine("b2")]), /No space left/);
    assert.deepEqual(await ids(path), ["a1", "a2"]);
    await f.writeRecords([jsonLine("c1")]);
    await f.close();
    assert.deepEqual(await ids(path), ["a1", "a2", "c1"]);
  });
});

Deno.test("when the file cannot be cut back, the partial line is ended before anything else is written", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const faults: Faults = { plan: [], truncateFails: true };
    const f = await RotatingFile.open(path, opts({ openFile: faulty(faults) }));
    await f.writeRecords([jsonLine("a1")]);
    faults.plan = [30, "enospc", "ok"];
    await assert.rejects(f.writeRecords([jsonLine("b1")]), /No space left/);
    // The partial line of the failed (unacknowledged) write is closed off on its own line.
    assert.deepEqual((await ids(path)).map((id) => id.startsWith("<torn") ? "torn" : id), [
      "a1",
      "torn",
    ]);
    await f.writeRecords([jsonLine("c1")]);
    await f.close();
    assert.deepEqual((await ids(path)).map((id) => id.startsWith("<torn") ? "torn" : id), [
      "a1",
      "torn",
      "c1",
    ]);
  });
});

Deno.test("when neither cutting back nor ending the line works, the next write repairs the file first or fails", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const faults: Faults = { plan: [], truncateFails: true };
    const f = await RotatingFile.open(path, opts({ openFile: faulty(faults) }));
    await f.writeRecords([jsonLine("a1")]);
    faults.plan = [30, "enospc", "enospc"];
    await assert.rejects(f.writeRecords([jsonLine("b1")]), /No space left/);
    // Still no room and no truncate: nothing may be appended to the partial line.
    faults.plan = ["enospc"];
    await assert.rejects(f.writeRecords([jsonLine("b2")]), /partial line/);
    // Space again: the file is cut back, then the write goes on a fresh line.
    faults.truncateFails = false;
    await f.writeRecords([jsonLine("c1")]);
    await f.close();
    assert.deepEqual(await ids(path), ["a1", "c1"]);
  });
});

Deno.test("log sink: after a full disk every event of a successful write is a whole JSON line", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const faults: Faults = { plan: [], truncateFails: false };
    const ctx = sinkContext();
    const sink = await createLogSink(
      {
        path,
        format: "json",
        fsync: "never",
        rotate: { maxSize: 0, maxBackup: 0, maxAge: 0, compress: false },
      },
      ctx,
      { checkInterval: 0, openFile: faulty(faults) },
    );
    await sink.write([testEnvelope("a1")]);
    faults.plan = [50, "enospc"];
    await assert.rejects(sink.write([testEnvelope("b1"), testEnvelope("b2")]), /No space left/);
    await sink.write([testEnvelope("c1"), testEnvelope("c2")]);
    await sink.close();
    assert.deepEqual(await ids(path), ["a1", "c1", "c2"]);
  });
});

function sinkContext(
  log: Logger = recorder(),
  stats: SinkStats = new PipelineStats().sink("local"),
): SinkContext {
  return {
    name: "local",
    log,
    clock: new FakeClock(),
    stats,
    signal: new AbortController().signal,
  };
}

Deno.test("a removed log file is noticed on the check interval, created again, logged and counted", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const log = recorder();
    const reasons: string[] = [];
    const f = await RotatingFile.open(
      path,
      opts({ checkInterval: 20, log, onReopen: (r) => reasons.push(r), mode: 0o640 }),
    );
    await f.writeRecords([jsonLine("a1")]);
    await Deno.remove(path);
    // The file exists a moment before the reopen is reported: wait for both.
    await waitFor(
      "the file to be created again and the reopen reported",
      async () => reasons.length > 0 && await exists(path),
    );
    assert.deepEqual(reasons, ["removed"]);
    assert.ok(
      log.records.some((r) =>
        r.level === "warn" && r.msg === "log file was removed or replaced; reopened" &&
        (r.fields as { reason: string }).reason === "removed"
      ),
    );
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640);
    await f.writeRecords([jsonLine("b1")]);
    await f.close();
    assert.deepEqual(await ids(path), ["b1"]);
  });
});

Deno.test("a log file moved away and replaced by another is noticed, and later lines go to the new one", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const reasons: string[] = [];
    const f = await RotatingFile.open(
      path,
      opts({ checkInterval: 20, onReopen: (r) => reasons.push(r) }),
    );
    await f.writeRecords([jsonLine("a1")]);
    await Deno.rename(path, join(dir, "audit.log.1"));
    await Deno.writeTextFile(path, "");
    await waitFor("the replacement to be noticed", () => reasons.length > 0);
    assert.deepEqual(reasons, ["replaced"]);
    await f.writeRecords([jsonLine("b1")]);
    await f.close();
    assert.deepEqual(await ids(join(dir, "audit.log.1")), ["a1"]);
    assert.deepEqual(await ids(path), ["b1"]);
  });
});

Deno.test("a write error on a removed file reopens it and writes there, without waiting for the interval", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const faults: Faults = { plan: [], truncateFails: false };
    const reasons: string[] = [];
    const f = await RotatingFile.open(
      path,
      opts({ openFile: faulty(faults), onReopen: (r) => reasons.push(r) }),
    );
    await f.writeRecords([jsonLine("a1")]);
    await Deno.remove(path);
    faults.plan = ["enospc"]; // as NFS answers writes to a removed file (ESTALE)
    await f.writeRecords([jsonLine("b1")]);
    await f.close();
    assert.deepEqual(reasons, ["removed"]);
    assert.deepEqual(await ids(path), ["b1"]);
  });
});

Deno.test("log sink: a removed file is counted in auditpipe_sink_file_reopened_total", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const stats = new PipelineStats();
    const sink = await createLogSink(
      {
        path,
        format: "json",
        fsync: "batch",
        rotate: { maxSize: 0, maxBackup: 0, maxAge: 0, compress: false },
      },
      sinkContext(recorder(), stats.sink("local")),
      { checkInterval: 20 },
    );
    const registry = metricsRegistry(stats);
    const metric = async (reason: string) => {
      const m = (await registry.metrics()).match(
        new RegExp(
          `^auditpipe_sink_file_reopened_total\\{sink="local",reason="${reason}"\\} (\\d+)$`,
          "m",
        ),
      );
      return m ? Number(m[1]) : null;
    };
    assert.equal(await metric("removed"), 0);
    await sink.write([testEnvelope("a1")]);
    await Deno.remove(path);
    await waitFor("the file to be created again", () => exists(path));
    await sink.write([testEnvelope("b1")]);
    await sink.close();
    assert.equal(await metric("removed"), 1);
    assert.equal(await metric("replaced"), 0);
    assert.deepEqual(await ids(path), ["b1"]);
  });
});

Deno.test("daemon: events posted after the log file was deleted land in a new file, with a warning and a metric", async () => {
  const d = await startDaemon((dir) => `
sources:
  - type: webhook
    listen: 127.0.0.1:0
sinks:
  - type: log
    name: local
    path: ${dir}/out/audit.log
server:
  listen: 127.0.0.1:0
`);
  try {
    const port = await d.webhookPort();
    const path = `${d.dir}/out/audit.log`;
    const post = (id: string) => postAccepted(port, [{ ...testEnvelope(id).event }]);
    await post("before");
    await waitFor(
      "the first event",
      async () => (await Deno.readTextFile(path)).includes("before"),
    );
    await Deno.remove(path);
    await d.waitLog((r) => r.msg === "log file was removed or replaced; reopened", 15_000);
    await post("after");
    await waitFor("the later event", async () => (await Deno.readTextFile(path)).includes("after"));
    const ops = await d.opsPort();
    const metrics = await scrapeMetrics(ops);
    assert.equal(
      metrics.get('auditpipe_sink_file_reopened_total{sink="local",reason="removed"}'),
      1,
      JSON.stringify([...metrics].filter(([k]) => k.includes("reopened"))),
    );
    const { code } = await d.stop("SIGTERM");
    assert.equal(code, 0);
    assert.deepEqual(await ids(path), ["after"]);
  } finally {
    await Deno.remove(d.dir, { recursive: true }).catch(() => {});
  }
});
