/** Fan-in through NATS JetStream with real daemons: two nodes publish, one collector consumes. */
import { assertEquals } from "./helpers/assert.ts";
import { eventList, realEvents, startDaemon } from "./helpers/daemon.ts";
import { startNatsServer } from "./helpers/nats.ts";

Deno.test("two nodes publish to NATS JetStream and one collector writes every event exactly once", async () => {
  const nats = await startNatsServer();
  const node = () => `
sources:
  - type: webhook
    listen: 127.0.0.1:0
sinks:
  - type: nats
    servers: [${nats.url}]
    subject: audit.events
    stream: AUDIT
`;
  const a = await startDaemon(node);
  const b = await startDaemon(node);
  const collector = await startDaemon((dir) => `
sources:
  - type: nats
    servers: [${nats.url}]
    stream: AUDIT
    subject: audit.events
    consumer: collector
sinks:
  - type: log
    path: ${dir}/all.log
`);
  const events = await realEvents(300);
  const halves = [events.slice(0, 150), events.slice(150)];
  for (const [d, half] of [[a, halves[0]], [b, halves[1]]] as const) {
    const res = await fetch(`http://127.0.0.1:${await d.webhookPort()}/audit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: eventList(half),
    });
    assertEquals(res.status, 200);
    await res.body?.cancel();
  }
  const out = `${collector.dir}/all.log`;
  let lines: string[] = [];
  for (let i = 0; i < 200 && lines.length < events.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
    lines = (await Deno.readTextFile(out).catch(() => "")).split("\n").filter((l) => l !== "");
  }
  for (const d of [a, b, collector]) assertEquals((await d.stop()).code, 0);
  const got = lines.map((l) => JSON.parse(l));
  const key = (e: Record<string, unknown>) => `${e.auditID}/${e.stage}`;
  assertEquals(got.map(key).sort(), events.map(key).sort());
  // Per node, order is kept.
  for (const half of halves) {
    const ids = new Set(half.map(key));
    assertEquals(got.filter((e) => ids.has(key(e))).map(key), half.map(key));
  }
  await nats.stop();
  for (const d of [a, b, collector]) await Deno.remove(d.dir, { recursive: true });
});
