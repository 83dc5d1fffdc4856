import assert from "node:assert/strict";
import { startDaemon } from "./helpers/daemon.ts";
import { testEvent } from "./helpers/events.ts";

/** Polls `fn` until `pred` holds of its result, or fails after `timeoutMs` with the last one. */
async function until<T>(
  what: string,
  fn: () => Promise<T>,
  pred: (v: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (pred(v)) return v;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("daemon: a tail checkpoint that cannot be written fails /readyz with its path, counts auditpipe_tail_checkpoint_errors_total, and recovers once writable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-tail-cp-" });
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify(testEvent(`cp-${i}`)));
  await Deno.writeTextFile(`${dir}/audit.log`, lines.join("\n") + "\n");
  // The checkpoint's folder is a regular file: every write fails, even as root.
  await Deno.writeTextFile(`${dir}/state`, "not a folder\n");
  const d = await startDaemon((dir) => `
sources:
  - type: tail
    name: apiserver
    path: ${dir}/audit.log
    startAt: beginning
    checkpointFile: ${dir}/state/tail.json
    pollInterval: 20ms
sinks:
  - type: log
    path: ${dir}/out.log
server:
  listen: 127.0.0.1:0
`, { dir });
  try {
    const ops = await d.opsPort();
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${ops}/readyz`);
      return { status: res.status, body: await res.json() };
    };
    const errorsTotal = async () => {
      const text = await (await fetch(`http://127.0.0.1:${ops}/metrics`)).text();
      const m = text.match(/^auditpipe_tail_checkpoint_errors_total\{source="apiserver"\} (\d+)/m);
      return m ? Number(m[1]) : -1;
    };

    // Events still flow: the checkpoint failing must not stop delivery.
    await until(
      "every event written",
      () => Deno.readTextFile(`${dir}/out.log`).catch(() => ""),
      (t) => t.split("\n").length - 1 >= lines.length,
    );
    const bad = await until("/readyz 503", readyz, (r) => r.status === 503);
    const source = bad.body.failing.find((f: { name: string }) => f.name === "apiserver");
    assert.ok(source, JSON.stringify(bad.body));
    assert.ok(String(source.reason).includes(`${dir}/state/tail.json`), source.reason);
    assert.ok((await errorsTotal()) >= 1);
    const rec = await d.waitLog((r) => r.checkpoint === `${dir}/state/tail.json`);
    assert.match(String(rec.error), /not a directory|os error 20/i);
    assert.doesNotMatch(String(rec.msg), /read failed/);

    await Deno.remove(`${dir}/state`);
    await until("/readyz 200", readyz, (r) => r.status === 200);
    const cp = JSON.parse(await Deno.readTextFile(`${dir}/state/tail.json`));
    assert.equal(cp.offset, new TextEncoder().encode(lines.join("\n") + "\n").length);
  } finally {
    assert.equal((await d.stop()).code, 0);
    await Deno.remove(dir, { recursive: true });
  }
});
