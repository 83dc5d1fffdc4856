import { assert, assertEquals } from "./helpers/assert.ts";
import {
  postAccepted as post,
  readJsonLines,
  realEvents,
  relayConfig,
  startDaemon,
} from "./helpers/daemon.ts";
import { startReceiver } from "./helpers/receiver.ts";
import { waitFor } from "./helpers/wait.ts";
import { testEvent } from "./helpers/events.ts";

type Annotated = { annotations: Record<string, string> };

Deno.test("annotations on a source and on a sink are added to every event, first writer wins", async () => {
  const d = await startDaemon((dir) => `
sources:
  - type: webhook
    listen: 127.0.0.1:0
    annotations: {example.com/cluster: "\${CLUSTER:-dev}", example.com/node: cp-1}
sinks:
  - type: log
    name: plain
    path: ${dir}/plain.log
  - type: log
    name: tagged
    path: ${dir}/tagged.log
    annotations: {example.com/sink: tagged, example.com/node: ignored}
`, { env: { CLUSTER: "prod" } });
  const port = await d.webhookPort();
  const events = await realEvents(3);
  events[0] = { ...events[0], annotations: { "example.com/node": "from-apiserver" } };
  await post(port, events);
  assertEquals((await d.stop()).code, 0);
  const plain = await readJsonLines<Annotated>(`${d.dir}/plain.log`);
  const tagged = await readJsonLines<Annotated>(`${d.dir}/tagged.log`);
  assertEquals(plain[0].annotations, {
    "example.com/cluster": "prod",
    "example.com/node": "from-apiserver",
  });
  assertEquals(plain[1].annotations?.["example.com/node"], "cp-1");
  assertEquals(tagged[1].annotations?.["example.com/sink"], "tagged");
  assertEquals(tagged[1].annotations?.["example.com/node"], "cp-1");
  // Keys sorted as Go writes maps.
  const keys = Object.keys(tagged[1].annotations);
  assertEquals(keys, [...keys].sort());
  await Deno.remove(d.dir, { recursive: true });
});

Deno.test("SIGHUP reopens log files after an external rename (logrotate), then reloads", async () => {
  const d = await startDaemon((dir) => `
sources:
  - type: webhook
    listen: 127.0.0.1:0
sinks:
  - type: log
    path: ${dir}/audit.log
    format: legacy
`);
  const port = await d.webhookPort();
  // Small events of its own: this test must not depend on the shared real data.
  const events: Record<string, unknown>[] = [1, 2, 3, 4].map((n) => ({
    ...testEvent(`6e4bd9a2-2c3f-4b8e-9d61-0f7a5c3e1b2${n}`),
  }));
  await post(port, events.slice(0, 2));
  await Deno.rename(`${d.dir}/audit.log`, `${d.dir}/audit.log.1`);
  d.process.kill("SIGHUP");
  await d.waitLog((r) => r.msg === "log files reopened");
  assert((await Deno.stat(`${d.dir}/audit.log`)).isFile);
  await d.waitLog((r) => r.msg === "config reloaded");
  await post(port, events.slice(2));
  assertEquals((await d.stop()).code, 0);
  const old = (await Deno.readTextFile(`${d.dir}/audit.log.1`)).trimEnd().split("\n");
  const now = (await Deno.readTextFile(`${d.dir}/audit.log`)).trimEnd().split("\n");
  assertEquals(old.length, 2);
  assertEquals(now.length, 2);
  assert(now[0].includes(`id="${events[2].auditID}"`), now[0]);
  await Deno.remove(d.dir, { recursive: true });
});

Deno.test("a second SIGTERM exits at once with a message while the first is still draining", async () => {
  const recv = await startReceiver();
  const unblock = recv.stall();
  const d = await startDaemon(relayConfig(recv, ["batch: {maxSize: 1}"], ["shutdownTimeout: 1m"]));
  await post(await d.webhookPort(), await realEvents(3));
  await waitFor("the stalled sink's first request", () => recv.requests > 0);
  d.process.kill("SIGTERM");
  d.process.kill("SIGTERM");
  await d.waitLog((r) => r.msg === "stopping: draining every sink");
  // The same stop delivered twice at once (process group and task runner) is one signal. There
  // is nothing to wait for here: the third signal must come after the daemon's 500 ms window
  // for duplicates, and no "second signal" line must have appeared by then.
  await new Promise((r) => setTimeout(r, 700));
  assert(!d.logs.some((r) => String(r.msg).startsWith("second signal")));
  d.process.kill("SIGTERM");
  const { code } = await d.exited();
  assertEquals(code, 1);
  assert(d.logs.some((r) => String(r.msg).startsWith("second signal")));
  unblock();
  await recv.close();
  await Deno.remove(d.dir, { recursive: true });
});
