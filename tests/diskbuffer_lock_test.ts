/**
 * The buffer folder's lock: one store writes a folder at a time. A second opener, in this
 * process or another, fails naming the folder and the holder's pid; the lock goes with its
 * holder's close or death (a SIGKILL leaves no stale lock); a second daemon on a folder in use
 * fails its start with one JSON line at the sink's `buffer.path`.
 */
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { postAccepted, startDaemon } from "./helpers/daemon.ts";
import { numberedEvents } from "./helpers/events.ts";
import { kubeconfigFor } from "./helpers/receiver.ts";
import { withTempDir } from "./helpers/tmp.ts";
import { DiskBuffer } from "../pipeline/diskbuffer/store.ts";
import { BufferInUseError, LOCK_FILE } from "../pipeline/diskbuffer/lock.ts";
import { eventRecord, readAll } from "./diskbuffer_helpers.ts";

const STORE_URL = new URL("../pipeline/diskbuffer/store.ts", import.meta.url).href;

const open = (path: string) => DiskBuffer.open({ path, maxBytes: 1 << 24 });

Deno.test("buffer lock: a second open of a folder in use fails naming the folder and this process's pid; after close it opens", () =>
  withTempDir("auditpipe-lock-", async (dir) => {
    const first = await open(dir);
    await first.append([eventRecord(1)]);
    const err = await assertRejects(() => open(dir), /is in use by this process/);
    assert(err instanceof BufferInUseError);
    assertEquals(err.path, dir);
    assertEquals(err.pid, Deno.pid);
    assert(err.message.includes(dir) && err.message.includes(`pid ${Deno.pid}`), err.message);
    // The failed opener wrote nothing: the holder's records and pid are as they were.
    assertEquals((await Deno.readTextFile(`${dir}/${LOCK_FILE}`)).trim(), String(Deno.pid));
    await first.close();
    const second = await open(dir);
    assertEquals((await readAll(second)).map((r) => r.auditID), [eventRecord(1).auditID]);
    await second.close();
  }));

Deno.test("buffer lock: a folder held by another process is refused naming its pid, and is free again once that process is SIGKILLed", () =>
  withTempDir("auditpipe-lock-", async (dir) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const { DiskBuffer } = await import(${JSON.stringify(STORE_URL)});
         await DiskBuffer.open({ path: ${JSON.stringify(dir)}, maxBytes: 1 << 24 });
         console.log("ready");
         setInterval(() => {}, 1000);`,
      ],
      stdout: "piped",
      stderr: "inherit",
      env: { NO_COLOR: "1" },
    }).spawn();
    const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      let text = "";
      while (!text.includes("ready")) {
        const { value, done } = await out.read();
        assert(!done, `the holder exited: ${text}`);
        text += value;
      }
      const err = await assertRejects(() => open(dir), new RegExp(`in use by pid ${child.pid}`));
      assert(err instanceof BufferInUseError && err.pid === child.pid);
    } finally {
      child.kill("SIGKILL");
      await child.status;
      await out.cancel();
    }
    // Its LOCK file (naming a dead pid) is left behind; the kernel released the lock.
    assertEquals((await Deno.readTextFile(`${dir}/${LOCK_FILE}`)).trim(), String(child.pid));
    const buf = await open(dir);
    assertEquals((await Deno.readTextFile(`${dir}/${LOCK_FILE}`)).trim(), String(Deno.pid));
    await buf.close();
  }));

function config(bufferPath: string, sinks = 1): (dir: string) => string {
  return (dir) => {
    Deno.writeTextFileSync(`${dir}/siem.kubeconfig`, kubeconfigFor("http://127.0.0.1:9/"));
    return [
      "sources:",
      "  - type: webhook",
      "    listen: 127.0.0.1:0",
      "sinks:",
      ...Array.from({ length: sinks }, (_, i) => [
        "  - type: webhook",
        `    name: siem${i}`,
        "    kubeconfig: siem.kubeconfig",
        `    buffer: {type: disk, path: ${bufferPath}}`,
      ]).flat(),
      "server:",
      "  listen: 127.0.0.1:0",
      // What the first daemon holds stays on disk: its stop need not wait for the collector.
      "shutdownTimeout: 1s",
      "",
    ].join("\n");
  };
}

/** The one error line of a daemon that failed to start, after checking it exited 1. */
async function startFailure(d: Awaited<ReturnType<typeof startDaemon>>) {
  const { code } = await d.exited(30_000);
  const all = d.logs.map((l) => JSON.stringify(l)).join("\n");
  assertEquals(code, 1, all);
  assertEquals(d.logs.filter((r) => r.raw).length, 0, `only JSON lines on stderr:\n${all}`);
  const errors = d.logs.filter((r) => r.level === "error");
  assertEquals(errors.length, 1, `exactly one error line:\n${all}`);
  return errors[0];
}

Deno.test("buffer lock: a second daemon on a buffer folder in use fails its start with one JSON line at the sink's buffer.path naming the folder and the first daemon's pid; the first keeps working", () =>
  withTempDir("auditpipe-lock-", async (dir) => {
    const buf = `${dir}/shared-buffer`;
    const first = await startDaemon(config(buf), { dir: await Deno.makeTempDir({ dir }) });
    const port = await first.webhookPort();
    const second = await startDaemon(config(buf), { dir: await Deno.makeTempDir({ dir }) });
    const line = await startFailure(second);
    assertEquals(line.msg, "cannot start sink");
    assertEquals(line.sink, "siem0");
    assert(String(line.at).endsWith("pipeline.yaml:8:26 sinks[0].buffer.path"), String(line.at));
    const error = String(line.error);
    assert(error.includes(buf) && error.includes(`pid ${first.process.pid}`), error);
    await postAccepted(port, numberedEvents("lk", 0, 10));
    const { code } = await first.stop();
    assertEquals(code, 0);
  }));

Deno.test("buffer lock: two sinks of one config with the same buffer path fail the start, naming this process", () =>
  withTempDir("auditpipe-lock-", async (dir) => {
    const line = await startFailure(await startDaemon(config("buf", 2), { dir }));
    assertEquals(line.msg, "cannot start sink");
    assertEquals(line.sink, "siem1");
    assert(String(line.at).endsWith("sinks[1].buffer.path"), String(line.at));
    assert(/is in use by this process \(pid \d+\): another sink/.test(String(line.error)));
  }));
