import { assert, assertEquals } from "./helpers/assert.ts";
import {
  postAccepted,
  postEvents,
  realEvents,
  relayConfig,
  startDaemon,
} from "./helpers/daemon.ts";
import { startReceiver } from "./helpers/receiver.ts";
import { waitFor } from "./helpers/wait.ts";

Deno.test("SIGTERM with full batch buffers delivers every event, still throttled, before exiting 0", async () => {
  const recv = await startReceiver();
  const d = await startDaemon(
    relayConfig(recv, [
      "batch: {bufferSize: 10000, maxSize: 50, maxWait: 10m, throttle: {enabled: true, qps: 20, burst: 1}}",
    ], ["shutdownTimeout: 30s"]),
  );
  const port = await d.webhookPort();
  const events = await realEvents(500);
  for (let i = 0; i < 500; i += 100) {
    await postAccepted(port, events.slice(i, i + 100));
  }
  // maxWait is 10 minutes: nothing but the drain can have sent the last partial batches.
  const { code } = await d.stop("SIGTERM");
  assertEquals(code, 0);
  assertEquals(recv.received, events.map((e) => e.auditID));
  assertEquals(recv.requests, 10);
  await recv.close();
  await Deno.remove(d.dir, { recursive: true });
});

Deno.test("blocking-strict: a failing sink answers 503, and kube-apiserver's retry is delivered once the sink recovers", async () => {
  const recv = await startReceiver();
  recv.respond = (n) => (n <= 2 ? 500 : 200);
  const d = await startDaemon(
    relayConfig(recv, ["mode: blocking-strict", "initialBackoff: 10ms", "retry: {maxAttempts: 2}"]),
  );
  const port = await d.webhookPort();
  const events = await realEvents(30);
  const post = () => postEvents(port, events);
  const first = await post();
  assertEquals(first.status, 503);
  assert((await first.json()).error.includes("not delivered"));
  assertEquals(recv.received, []);
  const retried = await post();
  assertEquals(retried.status, 200);
  await retried.body?.cancel();
  assertEquals(recv.received, events.map((e) => e.auditID));
  const { code } = await d.stop();
  assertEquals(code, 0);
  await recv.close();
  await Deno.remove(d.dir, { recursive: true });
});

Deno.test("SIGTERM with a blocking sink stuck on a request exits after shutdownTimeout, counting what was lost", async () => {
  const recv = await startReceiver();
  const unstick = recv.stall();
  const d = await startDaemon(relayConfig(recv, ["mode: blocking"], ["shutdownTimeout: 500ms"]));
  const port = await d.webhookPort();
  const events = await realEvents(10);
  const pending = postEvents(port, events).then((r) => r.body?.cancel(), () => {});
  await waitFor("the stuck sink's first request", () => recv.requests > 0);
  // stop() fails if the daemon outlives its deadline: shutdownTimeout (500ms) is what ends it.
  const { code } = await d.stop("SIGTERM");
  assertEquals(code, 0);
  const final = d.logs.find((r) => r.msg === "pipeline stopped")!;
  assertEquals(final.outcome, "timeout");
  assertEquals(
    (final.sinks as Record<string, { dropped: Record<string, number> }>).siem.dropped.shutdown,
    10,
  );
  unstick();
  await pending;
  await recv.close();
  await Deno.remove(d.dir, { recursive: true });
});
