import { assert, assertEquals } from "./helpers/assert.ts";
import { postAccepted, postEvents, readJsonLines, startDaemon } from "./helpers/daemon.ts";
import { numberedEvents } from "./helpers/events.ts";
import { scrapeMetrics } from "./helpers/metrics.ts";
import { waitFor } from "./helpers/wait.ts";

const events = (from: number, n: number) =>
  numberedEvents("ev", from, n, {
    level: "RequestResponse",
    user: { username: "alice", groups: ["system:authenticated"] },
    requestObject: { kind: "Pod", metadata: { name: "p" } },
  });

const policy = (level: string) =>
  `apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: ${level}\n`;

const config = (dir: string) => {
  Deno.writeTextFileSync(`${dir}/policy.yaml`, policy("RequestResponse"));
  return `
sources:
  - type: webhook
    listen: 127.0.0.1:0
sinks:
  - type: log
    name: filtered
    path: ${dir}/filtered.log
    policy: policy.yaml
  - type: log
    name: all
    path: ${dir}/all.log
  - type: log
    name: batched
    path: ${dir}/batched.log
    policy: policy.yaml
    mode: batch
    batch: {maxSize: 7, maxWait: 50ms}
`;
};

Deno.test("reload under load: the policy changes while a sender posts, and every event reaches every sink exactly once, in order", async () => {
  const d = await startDaemon(config);
  const port = await d.webhookPort();
  const total = 3000;
  const per = 20;
  let sent = 0;
  const sender = (async () => {
    for (let i = 0; i < total; i += per) {
      await postAccepted(port, events(i, per));
      sent += per;
    }
  })();
  const levels = ["Metadata", "Request", "RequestResponse", "Metadata"];
  for (const level of levels) {
    const mark = total / 5 * (levels.indexOf(level) + 1);
    await waitFor(`${mark} events sent before switching to ${level}`, () => sent >= mark, {
      intervalMs: 2,
      detail: () => `${sent} sent`,
    });
    await Deno.writeTextFile(`${d.dir}/policy.yaml`, policy(level));
    const before = d.logs.filter((r) => r.msg === "config reloaded").length;
    d.process.kill("SIGHUP");
    await d.waitLog((r) =>
      r.msg === "config reloaded" && d.logs.filter((x) => x.msg === r.msg).length > before
    );
  }
  await sender;
  const { code } = await d.stop();
  assertEquals(code, 0);
  const want = events(0, total).map((e) => e.auditID);
  for (const sink of ["filtered", "all", "batched"]) {
    const got = await readJsonLines(`${d.dir}/${sink}.log`);
    assertEquals(got.map((e) => e.auditID), want, `${sink}: every event once, in order`);
  }
  const filtered = await readJsonLines(`${d.dir}/filtered.log`);
  const seen = new Set(filtered.map((e) => e.level));
  assertEquals([...seen].sort(), ["Metadata", "Request", "RequestResponse"]);
  // The webhook source did not change: it kept its socket.
  assertEquals(d.logs.filter((r) => r.msg === "webhook source listening").length, 1);
  const reloads = d.logs.filter((r) => r.msg === "config reloaded");
  assertEquals(reloads.length, 4);
  assertEquals((reloads[0].sources as { kept: string[] }).kept, ["webhook"]);
  assertEquals((reloads[0].sinks as { kept: string[]; replaced: string[] }).kept, ["all"]);
  assertEquals((reloads[0].sinks as { replaced: string[] }).replaced, ["filtered", "batched"]);
  await Deno.remove(d.dir, { recursive: true });
});

Deno.test("an invalid config on reload is logged and the running pipeline is kept", async () => {
  const d = await startDaemon(config);
  const port = await d.webhookPort();
  const cfg = await Deno.readTextFile(`${d.dir}/pipeline.yaml`);
  await Deno.writeTextFile(`${d.dir}/pipeline.yaml`, cfg.replace("mode: batch", "mode: fast"));
  d.process.kill("SIGHUP");
  const refused = await d.waitLog((r) => r.msg === "reload refused; the running pipeline is kept");
  assert(
    (refused.problems as string[])[0].includes(
      `sinks[2].mode: must be one of blocking, batch, blocking-strict, got "fast"`,
    ),
    JSON.stringify(refused),
  );
  await Deno.writeTextFile(
    `${d.dir}/policy.yaml`,
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n",
  );
  await Deno.writeTextFile(`${d.dir}/pipeline.yaml`, cfg);
  d.process.kill("SIGHUP");
  await d.waitLog((r) => r.msg === "reload refused; the running pipeline is kept" && r !== refused);
  await postAccepted(port, events(0, 3));
  assertEquals((await d.stop()).code, 0);
  assertEquals((await readJsonLines(`${d.dir}/filtered.log`)).length, 3);
  assertEquals(d.logs.filter((r) => r.msg === "config reloaded").length, 0);
  await Deno.remove(d.dir, { recursive: true });
});

Deno.test("--watch-config reloads when the policy file changes", async () => {
  const d = await startDaemon(config, { args: ["--watch-config"] });
  const port = await d.webhookPort();
  await Deno.writeTextFile(`${d.dir}/policy.yaml`, policy("Metadata"));
  await d.waitLog((r) => r.msg === "config reloaded" && r.trigger === "watch");
  await (await postEvents(port, events(0, 1))).body?.cancel();
  assertEquals((await d.stop()).code, 0);
  const [e] = await readJsonLines(`${d.dir}/filtered.log`);
  assertEquals(e.level, "Metadata");
  assertEquals(e.requestObject, undefined);
  await Deno.remove(d.dir, { recursive: true });
});

/** Posts `n` events to the webhook source on `port`; the status, or "refused". */
async function post(port: number, from: number, n: number): Promise<number | "refused"> {
  try {
    const res = await postEvents(port, events(from, n));
    await res.body?.cancel();
    return res.status;
  } catch {
    return "refused";
  }
}

/** Waits for the `n`th log record with message `msg`. */
function nth(d: Awaited<ReturnType<typeof startDaemon>>, msg: string, n: number) {
  return d.waitLog((r) => r.msg === msg && d.logs.filter((x) => x.msg === msg).length >= n);
}

const listenerConfig = (listen: string) => (dir: string) => `
sources:
  - type: webhook
    name: apiserver
    listen: ${listen}
server:
  listen: 127.0.0.1:0
sinks:
  - type: log
    name: all
    path: ${dir}/all.log
`;

Deno.test("a reload to a webhook address in use is refused, the old listener keeps answering, and the reload metrics count it", async () => {
  const t0 = Date.now() / 1000;
  const d = await startDaemon(listenerConfig("127.0.0.1:0"));
  const port = await d.webhookPort();
  const ops = await d.opsPort();
  let m = await scrapeMetrics(ops);
  assertEquals(m.get(`auditpipe_config_reload_total{result="success"}`), 0);
  assertEquals(m.get(`auditpipe_config_reload_total{result="failure"}`), 0);
  const startedAt = m.get("auditpipe_config_last_reload_success_timestamp_seconds")!;
  assert(startedAt >= Math.floor(t0) && startedAt <= Date.now() / 1000, `${startedAt}`);

  const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const taken = (blocker.addr as Deno.NetAddr).port;
  const cfg = await Deno.readTextFile(`${d.dir}/pipeline.yaml`);
  await Deno.writeTextFile(
    `${d.dir}/pipeline.yaml`,
    cfg.replace("listen: 127.0.0.1:0\nserver", `listen: 127.0.0.1:${taken}\nserver`),
  );
  d.process.kill("SIGHUP");
  const refused = await d.waitLog((r) => r.msg === "reload refused; the running pipeline is kept");
  assertEquals(refused.source, "apiserver");
  assert(String(refused.at).endsWith("pipeline.yaml:5:5 sources[0].listen"), String(refused.at));
  assert(String(refused.error).includes("Address already in use"), String(refused.error));
  assertEquals(await post(port, 0, 3), 200, "the old listener still answers");
  m = await scrapeMetrics(ops);
  assertEquals(m.get(`auditpipe_config_reload_total{result="failure"}`), 1);
  assertEquals(m.get(`auditpipe_config_reload_total{result="success"}`), 0);
  assertEquals(m.get("auditpipe_config_last_reload_successful"), 0);
  assertEquals(m.get("auditpipe_config_last_reload_success_timestamp_seconds"), startedAt);

  // Once the address is free the same config applies: the new listener answers, the old
  // one is gone, and the source is ready.
  blocker.close();
  d.process.kill("SIGHUP");
  const reloaded = await d.waitLog((r) => r.msg === "config reloaded");
  assertEquals((reloaded.sources as { started: string[] }).started, ["apiserver"]);
  await nth(d, "webhook source listening", 2);
  assertEquals(await post(taken, 3, 2), 200);
  assertEquals(await post(port, 5, 1), "refused");
  const ready = await fetch(`http://127.0.0.1:${ops}/readyz`);
  assertEquals(ready.status, 200, JSON.stringify(await ready.json()));
  m = await scrapeMetrics(ops);
  assertEquals(m.get(`auditpipe_config_reload_total{result="success"}`), 1);
  assertEquals(m.get("auditpipe_config_last_reload_successful"), 1);
  assert(m.get("auditpipe_config_last_reload_success_timestamp_seconds")! > startedAt);

  assertEquals((await d.stop()).code, 0);
  assertEquals((await readJsonLines(`${d.dir}/all.log`)).length, 5);
  await Deno.remove(d.dir, { recursive: true });
});

Deno.test("a changed source that must wait for its predecessor's port and then cannot bind runs again with its previous config, and the log says the reload was partial", async () => {
  // The new address shares the old one's port, so the old listener must go first.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const d = await startDaemon(listenerConfig(`127.0.0.1:${p}`));
  assertEquals(await d.webhookPort(), p);
  const ops = await d.opsPort();
  const blocker = Deno.listen({ hostname: "127.0.0.2", port: p });
  const cfg = await Deno.readTextFile(`${d.dir}/pipeline.yaml`);
  await Deno.writeTextFile(
    `${d.dir}/pipeline.yaml`,
    cfg.replace(`127.0.0.1:${p}`, `127.0.0.2:${p}`),
  );
  d.process.kill("SIGHUP");
  const partial = await d.waitLog((r) => String(r.msg).startsWith("reload applied in part"));
  const failed = (partial.sources as { failed: Record<string, string>[] }).failed;
  assertEquals(failed.length, 1);
  assertEquals(failed[0].source, "apiserver");
  assertEquals(failed[0].running, "previous");
  assert(failed[0].at.endsWith("sources[0].listen"), failed[0].at);
  assert(failed[0].error.includes("Address already in use"), failed[0].error);
  assertEquals(d.logs.filter((r) => r.msg === "config reloaded").length, 0);
  await nth(d, "webhook source listening", 2);
  assertEquals(await post(p, 0, 2), 200, "the previous listener is back");
  const ready = await fetch(`http://127.0.0.1:${ops}/readyz`);
  assertEquals(ready.status, 200, JSON.stringify(await ready.json()));
  const m = await scrapeMetrics(ops);
  assertEquals(m.get(`auditpipe_config_reload_total{result="failure"}`), 1);
  blocker.close();
  assertEquals((await d.stop()).code, 0);
  assertEquals((await readJsonLines(`${d.dir}/all.log`)).length, 2);
  await Deno.remove(d.dir, { recursive: true });
});

Deno.test("a reload whose new sink cannot open is refused naming the sink and its config position, and the sink it would have replaced keeps writing", async () => {
  const d = await startDaemon(listenerConfig("127.0.0.1:0"));
  const port = await d.webhookPort();
  await Deno.writeTextFile(`${d.dir}/afile`, "");
  const cfg = await Deno.readTextFile(`${d.dir}/pipeline.yaml`);
  // "all" changes (its replacement is built first, then given up) and "broken" cannot open.
  await Deno.writeTextFile(
    `${d.dir}/pipeline.yaml`,
    cfg + `    fsync: always\n  - type: log\n    name: broken\n    path: ${d.dir}/afile/x.log\n`,
  );
  d.process.kill("SIGHUP");
  const refused = await d.waitLog((r) => r.msg === "reload refused; the running pipeline is kept");
  assertEquals(refused.sink, "broken");
  assert(String(refused.at).endsWith("pipeline.yaml:15:5 sinks[1].path"), String(refused.at));
  assert(String(refused.error).includes("File exists"), String(refused.error));
  assertEquals(await post(port, 0, 2), 200);
  assertEquals((await d.stop()).code, 0);
  assertEquals((await readJsonLines(`${d.dir}/all.log`)).length, 2);
  await Deno.remove(d.dir, { recursive: true });
});
