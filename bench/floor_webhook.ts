/**
 * The floor of the webhook benchmark: a bare `Deno.serve` handler that does the least a
 * webhook receiver must do with kube-apiserver's `EventList`s: parse the body, serialize
 * each item as one JSON line, append the lines to a file (one write per request, in
 * arrival order) and answer once they are written, as auditpipe's blocking mode does.
 *
 * Usage: `deno run -A bench/floor_webhook.ts OUT`; prints `{"port":N}` on stdout once
 * listening, and `{"events":N,"cpu":S}` when it gets SIGTERM, then exits (`cpu`: the process's
 * CPU seconds, user + system, start-up included).
 *
 * @module
 */

const [outPath] = Deno.args;
const output = await Deno.open(outPath, { write: true, create: true, truncate: true });
const encoder = new TextEncoder();
let events = 0;
// Writes are chained so lines of concurrent requests never interleave.
let queue: Promise<void> = Promise.resolve();

async function writeAll(bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await output.write(bytes.subarray(off));
}

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(JSON.stringify({ port })),
}, async (req) => {
  const doc = await req.json() as { items: unknown[] };
  let text = "";
  for (const item of doc.items) text += JSON.stringify(item) + "\n";
  events += doc.items.length;
  const bytes = encoder.encode(text);
  const done = queue.then(() => writeAll(bytes));
  queue = done;
  await done;
  return new Response(`{"accepted":${doc.items.length},"rejected":0}`, {
    headers: { "content-type": "application/json" },
  });
});

Deno.addSignalListener("SIGTERM", async () => {
  await server.shutdown();
  await queue;
  output.close();
  const stat = await Deno.readTextFile("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpu = (Number(f[11]) + Number(f[12])) / 100;
  console.log(JSON.stringify({ events, cpu }));
  Deno.exit(0);
});
