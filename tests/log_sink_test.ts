import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createLogSink, type LogSinkConfig } from "../backends/log.ts";
import { legacyLine } from "../backends/legacy.ts";
import type { SinkContext } from "../backends/sink.ts";
import { FakeClock } from "../pipeline/core/clock.ts";
import { decodeLine } from "../pipeline/core/decode.ts";
import { encodeEvent } from "../pipeline/core/encode.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import { silentLogger } from "../pipeline/core/log.ts";
import { SinkStats } from "../pipeline/core/stats.ts";

import { auditLogLines } from "./data/corpus.ts";
import { withTempDir } from "./helpers/tmp.ts";

const enc = new TextEncoder();

function ctx(clock = new FakeClock()): SinkContext {
  return {
    name: "local",
    log: silentLogger,
    clock,
    stats: new SinkStats("local"),
    signal: new AbortController().signal,
  };
}

function config(path: string, extra: Partial<LogSinkConfig> = {}): LogSinkConfig {
  return {
    path,
    format: "json",
    fsync: "batch",
    rotate: { maxSize: 0, maxBackup: 0, maxAge: 0, compress: false },
    ...extra,
  };
}

const withDir = <T>(fn: (dir: string) => Promise<T>) => withTempDir("auditpipe-log-", fn);

/** The generated audit.log's lines, and envelopes decoded from them (with `raw`). */
function realEvents(): { lines: string[]; envelopes: Envelope[] } {
  const lines = auditLogLines();
  const envelopes = lines.flatMap((l) => decodeLine(enc.encode(l)).envelopes);
  return { lines, envelopes };
}

/** An envelope without `raw` whose serialization differs from any input text. */
function built(id: string): Envelope {
  return {
    event: {
      level: "Metadata",
      auditID: id,
      stage: "ResponseComplete",
      requestURI: "/api?x=<y>&z",
      verb: "get",
      user: { username: "u" },
      requestReceivedTimestamp: "2024-03-01T12:34:56.789000Z",
      stageTimestamp: "2024-03-01T12:34:56.789000Z",
    },
  };
}

Deno.test("log sink creates the file and its directories when created", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "sub", "audit.log");
    const sink = await createLogSink(config(path), ctx());
    const info = await Deno.stat(path);
    assert.equal(info.size, 0);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(join(dir, "sub"))).mode! & 0o777, 0o700);
    await sink.close();
  });
});

Deno.test("json output is the original bytes of events that have them", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const sink = await createLogSink(config(path), ctx());
    const { lines, envelopes } = realEvents();
    assert.ok(envelopes.every((e) => e.raw !== undefined));
    for (let i = 0; i < envelopes.length; i += 100) await sink.write(envelopes.slice(i, i + 100));
    await sink.close();
    assert.equal(await Deno.readTextFile(path), lines.join("\n") + "\n");
  });
});

Deno.test("json output of events without original bytes is their encoding", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const sink = await createLogSink(config(path), ctx());
    const items = [built("a"), built("b")];
    await sink.write(items);
    await sink.close();
    const expected = items.map((e) => encodeEvent(e.event) + "\n").join("");
    assert.equal(await Deno.readTextFile(path), expected);
    assert.ok(expected.includes("\\u003cy\\u003e\\u0026z"));
  });
});

Deno.test("legacy output is one legacy line per event", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const sink = await createLogSink(config(path, { format: "legacy" }), ctx());
    const { envelopes } = realEvents();
    const batch = envelopes.slice(0, 50);
    await sink.write(batch);
    await sink.write([]);
    await sink.close();
    assert.equal(
      await Deno.readTextFile(path),
      batch.map((e) => legacyLine(e.event) + "\n").join(""),
    );
  });
});

Deno.test("every fsync mode writes the same bytes", async () => {
  await withDir(async (dir) => {
    const { envelopes } = realEvents();
    const batch = envelopes.slice(0, 20);
    const outputs: string[] = [];
    for (const fsync of ["never", "batch", "always"] as const) {
      const path = join(dir, `${fsync}.log`);
      const sink = await createLogSink(config(path, { fsync }), ctx());
      await sink.write(batch.slice(0, 10));
      await sink.write(batch.slice(10));
      await sink.close();
      outputs.push(await Deno.readTextFile(path));
    }
    assert.equal(outputs[0], outputs[1]);
    assert.equal(outputs[1], outputs[2]);
  });
});

Deno.test("log sink appends to an existing file", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    await Deno.writeTextFile(path, "earlier\n");
    const sink = await createLogSink(config(path), ctx());
    await sink.write([built("a")]);
    await sink.close();
    assert.equal(await Deno.readTextFile(path), "earlier\n" + encodeEvent(built("a").event) + "\n");
  });
});

Deno.test("batches crossing maxSize rotate between whole lines, none over the limit", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const clock = new FakeClock();
    const cfg = config(path, { rotate: { maxSize: 1, maxBackup: 0, maxAge: 0, compress: false } });
    const sink = await createLogSink(cfg, ctx(clock));
    const { lines, envelopes } = realEvents();
    const written: string[] = [];
    // About 3 MiB in batches of 400, so some batches straddle a rotation.
    while (written.length * 700 < 3 * 1024 * 1024) {
      const batch = envelopes.slice(0, 400);
      await sink.write(batch);
      written.push(...lines.slice(0, 400));
      await clock.advance(1000);
    }
    await sink.close();
    const files = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    files.sort(); // backups by time, then audit.log
    assert.ok(files.length >= 3, files.join(" "));
    assert.equal(files.at(-1), "audit.log");
    let all = "";
    for (const name of files) {
      const text = await Deno.readTextFile(join(dir, name));
      assert.ok(text.length <= 1024 * 1024, name);
      assert.ok(text.endsWith("\n"), name);
      all += text;
    }
    assert.equal(all, written.join("\n") + "\n");
  });
});

Deno.test("each backup holds exactly what one event per write would have put there", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const cfg = config(path, { rotate: { maxSize: 1, maxBackup: 0, maxAge: 0, compress: false } });
    const sink = await createLogSink(cfg, ctx());
    const { lines, envelopes } = realEvents();
    await sink.write(envelopes); // ~2 MiB in one batch
    await sink.close();
    // Simulate lumberjack: a line goes to a new file when size + len > 1 MiB.
    const expected: string[] = [""];
    let size = 0;
    for (const l of lines) {
      const len = enc.encode(l + "\n").length;
      if (size + len > 1024 * 1024) {
        expected.push("");
        size = 0;
      }
      expected[expected.length - 1] += l + "\n";
      size += len;
    }
    const files = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    files.sort();
    assert.equal(files.length, expected.length);
    const got = await Promise.all(files.map((f) => Deno.readTextFile(join(dir, f))));
    assert.deepEqual(got, expected);
  });
});

Deno.test("an event longer than maxSize is reported dropped as too_large; the others are written", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const cfg = config(path, { rotate: { maxSize: 1, maxBackup: 0, maxAge: 0, compress: false } });
    const sink = await createLogSink(cfg, ctx());
    const big = built("big");
    big.event.annotations = { pad: "x".repeat(1024 * 1024) };
    const result = await sink.write([built("a"), big, built("b")]);
    assert.ok(result);
    assert.equal(result.dropped.length, 1);
    assert.equal(result.dropped[0].index, 1);
    assert.equal(result.dropped[0].reason, "too_large");
    assert.match(
      result.dropped[0].error.message,
      new RegExp(`^write ${path}: write length \\d+ exceeds maximum file size 1048576$`),
    );
    await sink.close();
    const text = await Deno.readTextFile(path);
    assert.equal(text, [built("a"), built("b")].map((e) => encodeEvent(e.event) + "\n").join(""));
  });
});

Deno.test("rotation settings reach the file: backups are gzipped and counted", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const clock = new FakeClock();
    const cfg = config(path, { rotate: { maxSize: 1, maxBackup: 1, maxAge: 0, compress: true } });
    await Deno.writeTextFile(join(dir, "audit-2024-01-01T00-00-00.000.log"), "a\n");
    await Deno.writeTextFile(join(dir, "audit-2024-01-02T00-00-00.000.log"), "b\n");
    const sink = await createLogSink(cfg, ctx(clock));
    await sink.close(); // waits for the cleanup started at open
    const files = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    assert.deepEqual(files.sort(), ["audit-2024-01-02T00-00-00.000.log.gz", "audit.log"]);
  });
});

Deno.test("reopen after logrotate moved the file writes new lines to a new file", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.log");
    const sink = await createLogSink(config(path), ctx());
    await sink.write([built("old")]);
    await Deno.rename(path, path + ".1");
    await sink.reopen!();
    await sink.write([built("new")]);
    await sink.close();
    assert.equal(await Deno.readTextFile(path + ".1"), encodeEvent(built("old").event) + "\n");
    assert.equal(await Deno.readTextFile(path), encodeEvent(built("new").event) + "\n");
  });
});

Deno.test("a write error names the path", async () => {
  // /dev/full accepts the open and fails every write with ENOSPC.
  const sink = await createLogSink(config("/dev/full", { fsync: "never" }), ctx());
  await assert.rejects(sink.write([built("a")]), (e: Error) => {
    assert.match(e.message, /^write \/dev\/full: /);
    assert.match(e.message, /No space left on device/);
    return true;
  });
  await sink.close();
});

Deno.test("a path that cannot be created fails at creation, naming the path", async () => {
  await withDir(async (dir) => {
    const file = join(dir, "file");
    await Deno.writeTextFile(file, "");
    const path = join(file, "audit.log"); // a regular file as parent directory
    await assert.rejects(createLogSink(config(path), ctx()), (e: Error) => {
      assert.ok(e.message.startsWith(`open ${path}: `), e.message);
      return true;
    });
    await assert.rejects(createLogSink(config(dir), ctx()), (e: Error) => {
      assert.ok(e.message.startsWith(`open ${dir}: `), e.message); // a directory
      return true;
    });
  });
});

Deno.test("path - writes to stdout and creates no file", async () => {
  await withDir(async (dir) => {
    const script = join(dir, "main.ts");
    const logUrl = new URL("../backends/log.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { createLogSink } from ${JSON.stringify(logUrl)};
import { systemClock } from ${
        JSON.stringify(new URL("../pipeline/core/clock.ts", import.meta.url).href)
      };
import { silentLogger } from ${
        JSON.stringify(new URL("../pipeline/core/log.ts", import.meta.url).href)
      };
import { SinkStats } from ${
        JSON.stringify(new URL("../pipeline/core/stats.ts", import.meta.url).href)
      };
const sink = await createLogSink(
  { path: "-", format: "legacy", fsync: "batch",
    rotate: { maxSize: 1, maxBackup: 1, maxAge: 1, compress: false } },
  { name: "s", log: silentLogger, clock: systemClock, stats: new SinkStats("s"),
    signal: new AbortController().signal },
);
await sink.write([{ event: { auditID: "X" } }, { event: { auditID: "Y" } }]);
await sink.close();
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-lock", pathToFileURL(script).href],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const lines = new TextDecoder().decode(out.stdout).split("\n");
    assert.equal(lines.length, 3);
    assert.ok(lines[0].startsWith(`0001-01-01T00:00:00Z AUDIT: id="X" `));
    assert.ok(lines[1].startsWith(`0001-01-01T00:00:00Z AUDIT: id="Y" `));
    assert.equal(lines[2], "");
    const files = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    assert.deepEqual(files, ["main.ts"]);
  });
});
