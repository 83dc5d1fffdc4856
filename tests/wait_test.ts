/**
 * Every wait in the suite has a deadline: the wait helpers, and the daemon helper's `stop()`
 * and `exited()`, fail naming what they waited for instead of hanging the suite.
 */
import assert from "node:assert/strict";
import { startDaemon } from "./helpers/daemon.ts";
import { deadline, waitFor } from "./helpers/wait.ts";

Deno.test("waitFor returns once the condition holds, sync or async", async () => {
  let n = 0;
  await waitFor("n to reach 3", () => ++n >= 3, { intervalMs: 1 });
  assert.equal(n, 3);
  await waitFor("an async yes", () => Promise.resolve(true));
});

Deno.test("waitFor fails after its deadline naming what it waited for and the state seen", async () => {
  await assert.rejects(
    waitFor("the receiver's first request", () => false, {
      timeoutMs: 30,
      detail: () => "0 requests",
    }),
    /timed out after 30 ms waiting for the receiver's first request; 0 requests/,
  );
});

Deno.test("deadline passes a settled promise through and rejects a pending one in time", async () => {
  assert.equal(await deadline(Promise.resolve(7), "seven"), 7);
  await assert.rejects(
    deadline(new Promise(() => {}), "a promise that never settles", 30),
    /timed out after 30 ms waiting for a promise that never settles/,
  );
});

Deno.test("daemon helper: stop() kills a process that ignores SIGTERM after its deadline and fails", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-stubborn-" });
  try {
    const entry = `${dir}/stubborn.ts`;
    await Deno.writeTextFile(
      entry,
      `Deno.addSignalListener("SIGTERM", () => {});
console.error(JSON.stringify({ msg: "ignoring SIGTERM" }));
setInterval(() => {}, 1000);
`,
    );
    const d = await startDaemon(() => "", { entry, dir });
    await d.waitLog((r) => r.msg === "ignoring SIGTERM");
    // Bounded itself, so that a stop() without a deadline fails this test instead of hanging.
    await deadline(
      assert.rejects(
        d.stop("SIGTERM", 300),
        /did not exit within 300 ms of SIGTERM; killed it with SIGKILL; last logs:\n.*ignoring SIGTERM/,
      ),
      "stop() to give up on the daemon",
      20_000,
    );
    assert.notEqual((await d.process.status).signal, null, "killed by a signal");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
