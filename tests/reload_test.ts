import { assert, assertEquals } from "./helpers/assert.ts";
import { startDaemon } from "./helpers/daemon.ts";
import { waitFor } from "./helpers/wait.ts";

const json = { "content-type": "application/json" };

function events(from: number, n: number) {
  return Array.from({ length: n }, (_, k) => ({
    level: "RequestResponse",
    auditID: `ev-${String(from + k).padStart(5, "0")}`,
    stage: "ResponseComplete",
    requestURI: "/api/v1/namespaces/default/pods",
    verb: "create",
    user: { username: "alice", groups: ["system:authenticated"] },
    objectRef: { resource: "pods", namespace: "default", apiVersion: "v1" },
    requestObject: { kind: "Pod", metadata: { name: "p" } },
    responseStatus: { metadata: {}, code: 201 },
    requestReceivedTimestamp: "2024-03-01T12:34:56.789000Z",
    stageTimestamp: "2024-03-01T12:34:56.801234Z",
  }));
}

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

async function readIDs(path: string) {
  return (await Deno.readTextFile(path)).trimEnd().split("\n").map((l) => JSON.parse(l));
}

Deno.test("reload under load: the policy changes while a sender posts, and every event reaches every sink exactly once, in order", async () => {
  const d = await startDaemon(config);
  const port = await d.webhookPort();
  const total = 3000;
  const per = 20;
  let sent = 0;
  const sender = (async () => {
    for (let i = 0; i < total; i += per) {
      const res = await fetch(`http://127.0.0.1:${port}/audit`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ kind: "EventList", items: events(i, per) }),
      });
      assertEquals(res.status, 200);
      await res.body?.cancel();
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
    const got = await readIDs(`${d.dir}/${sink}.log`);
    assertEquals(got.map((e) => e.auditID), want, `${sink}: every event once, in order`);
  }
  const filtered = await readIDs(`${d.dir}/filtered.log`);
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
  const res = await fetch(`http://127.0.0.1:${port}/audit`, {
    method: "POST",
    headers: json,
    body: JSON.stringify(events(0, 3)),
  });
  assertEquals(res.status, 200);
  await res.body?.cancel();
  assertEquals((await d.stop()).code, 0);
  assertEquals((await readIDs(`${d.dir}/filtered.log`)).length, 3);
  assertEquals(d.logs.filter((r) => r.msg === "config reloaded").length, 0);
  await Deno.remove(d.dir, { recursive: true });
});

Deno.test("--watch-config reloads when the policy file changes", async () => {
  const d = await startDaemon(config, { args: ["--watch-config"] });
  const port = await d.webhookPort();
  await Deno.writeTextFile(`${d.dir}/policy.yaml`, policy("Metadata"));
  await d.waitLog((r) => r.msg === "config reloaded" && r.trigger === "watch");
  const res = await fetch(`http://127.0.0.1:${port}/audit`, {
    method: "POST",
    headers: json,
    body: JSON.stringify(events(0, 1)),
  });
  await res.body?.cancel();
  assertEquals((await d.stop()).code, 0);
  const [e] = await readIDs(`${d.dir}/filtered.log`);
  assertEquals(e.level, "Metadata");
  assertEquals(e.requestObject, undefined);
  await Deno.remove(d.dir, { recursive: true });
});
