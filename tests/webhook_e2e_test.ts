/** The webhook source's answers, from the real daemon over real sockets. */
import { assert, assertEquals } from "./helpers/assert.ts";
import { eventList, realEvents, startDaemon } from "./helpers/daemon.ts";

Deno.test("daemon webhook: 200, 400, 401, 405, 413, 415, gzip and 429 under a flood", async () => {
  const d = await startDaemon((dir) => {
    Deno.writeTextFileSync(`${dir}/token`, "tok\n");
    return `
sources:
  - type: webhook
    listen: 127.0.0.1:0
    maxBodyBytes: 200000
    maxInFlight: 4
    auth: {bearerTokenFile: token}
    deadLetterFile: ${dir}/dead.jsonl
sinks:
  - type: log
    path: ${dir}/audit.log
`;
  });
  const url = `http://127.0.0.1:${await d.webhookPort()}/audit`;
  const auth = { authorization: "Bearer tok" };
  const json = { "content-type": "application/json", ...auth };
  const events = await realEvents(40);
  const status = async (init: RequestInit) => {
    const res = await fetch(url, init);
    const body = await res.text();
    return { status: res.status, body };
  };

  assertEquals(
    (await status({ method: "POST", headers: json, body: eventList(events) })).status,
    200,
  );
  assertEquals((await status({ method: "POST", headers: json, body: "nope" })).status, 400);
  assertEquals(
    (await status({ method: "POST", headers: { "content-type": "application/json" }, body: "[]" }))
      .status,
    401,
  );
  assertEquals((await status({ method: "PUT", headers: json, body: "[]" })).status, 405);
  assertEquals(
    (await status({ method: "POST", headers: json, body: "x".repeat(300000) })).status,
    413,
  );
  assertEquals(
    (await status({
      method: "POST",
      headers: { ...auth, "content-type": "text/plain" },
      body: "[]",
    })).status,
    415,
  );
  const gz = await new Response(
    new Blob([eventList(events.slice(0, 5))]).stream().pipeThrough(new CompressionStream("gzip")),
  ).arrayBuffer();
  const g = await status({
    method: "POST",
    headers: { ...json, "content-encoding": "gzip" },
    body: gz,
  });
  assertEquals(g.status, 200);
  assertEquals(JSON.parse(g.body), { accepted: 5, rejected: 0 });
  const bad = JSON.stringify({ kind: "EventList", items: [events[0], { level: "Metadata" }] });
  assertEquals(JSON.parse((await status({ method: "POST", headers: json, body: bad })).body), {
    accepted: 1,
    rejected: 1,
  });

  // A flood of large concurrent requests beyond maxInFlight (4): some get 429 + Retry-After.
  const big = eventList(await realEvents(150));
  const flood = await Promise.all(
    Array.from({ length: 40 }, () => fetch(url, { method: "POST", headers: json, body: big })),
  );
  const codes = flood.map((r) => r.status);
  for (const r of flood) await r.body?.cancel();
  assert(codes.includes(429), `no 429 in ${codes}`);
  assert(codes.every((c) => c === 200 || c === 429), `${codes}`);
  const limited = flood.find((r) => r.status === 429)!;
  assertEquals(limited.headers.get("retry-after"), "1");

  assertEquals((await d.stop()).code, 0);
  const dead = (await Deno.readTextFile(`${d.dir}/dead.jsonl`)).trim().split("\n");
  assertEquals(dead.length, 1);
  assertEquals(JSON.parse(dead[0]).index, 1);
  await Deno.remove(d.dir, { recursive: true });
});
