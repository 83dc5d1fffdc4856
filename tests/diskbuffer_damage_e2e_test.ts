/**
 * The real daemon restarted on a damaged disk buffer: bytes flipped in the middle of one
 * segment and another cut mid-record. What is intact (before the damage, and every other
 * segment) is delivered; the damage is cut off, counted and logged with segment and offset.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { postAccepted, relayConfig, startDaemon } from "./helpers/daemon.ts";
import { numberedEvents } from "./helpers/events.ts";
import { scrapeMetrics } from "./helpers/metrics.ts";
import { startReceiver } from "./helpers/receiver.ts";
import { withTempDir } from "./helpers/tmp.ts";
import { waitFor } from "./helpers/wait.ts";
import { inspectBuffer, undeliveredRecords } from "../pipeline/diskbuffer/inspect.ts";
import { listSegments, segmentPath } from "../pipeline/diskbuffer/layout.ts";

Deno.test("disk buffer damage e2e: after bytes flipped mid-segment and a segment cut mid-record, a restart delivers every intact record, and counts and logs the two damaged places", () =>
  withTempDir("auditpipe-diskdamage-", async (dir) => {
    const recv = await startReceiver();
    recv.respond = () => 503;
    // 2 MiB makes 512 KiB segments: 3000 events (1.3 MB) fill three.
    const cfg = () =>
      relayConfig(recv, [
        "initialBackoff: 20ms",
        "retry: {maxAttempts: 1}",
        "batch: {maxSize: 100, maxWait: 20ms, throttle: {enabled: false}}",
        "buffer: {type: disk, path: buf, maxBytes: 2MiB}",
      ], ["server:", "  listen: 127.0.0.1:0", "shutdownTimeout: 1s"])(dir);
    try {
      const d = await startDaemon(cfg, { dir });
      const port = await d.webhookPort();
      for (let i = 0; i < 3000; i += 100) await postAccepted(port, numberedEvents("dm", i, 100));
      assertEquals((await d.stop()).code, 0);
      assertEquals(recv.received.length, 0);

      const buf = `${dir}/buf`;
      const ids = await listSegments(buf);
      assert(ids.length >= 3, `${ids.length} segments`);
      // Flip 16 bytes in the middle of the first segment.
      const first = segmentPath(buf, ids[0]);
      const bytes = await Deno.readFile(first);
      const mid = Math.floor(bytes.length / 2);
      for (let i = mid; i < mid + 16; i++) bytes[i] ^= 0xff;
      await Deno.writeFile(first, bytes);
      // Cut the second one in the middle of its last record.
      const second = segmentPath(buf, ids[1]);
      await Deno.truncate(second, (await Deno.stat(second)).size - 100);
      const report = await inspectBuffer(buf);
      assertEquals(report.damage.map((x) => x.segment), [ids[0], ids[1]]);
      const intact: string[] = [];
      for await (const r of undeliveredRecords(report)) intact.push(r.auditID);
      assert(intact.length > 1000 && intact.length < 3000, `${intact.length} intact`);

      recv.respond = () => 200;
      const d2 = await startDaemon(cfg, { dir });
      await waitFor(
        "every intact record delivered",
        () => intact.every((id) => recv.received.includes(id)),
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      const m = await scrapeMetrics(await d2.opsPort());
      assertEquals(m.get('auditpipe_disk_buffer_corrupt_records_total{sink="siem"}'), 2);
      const damaged = d2.logs.filter((r) =>
        r.msg === "disk buffer segment damaged: cut off at the last intact record"
      );
      assertEquals(damaged.map((r) => r.segment), [ids[0], ids[1]]);
      assert(damaged.every((r) => typeof r.offset === "number" && String(r.path).endsWith(".seg")));
      // Nothing damaged was sent as if it were an event.
      assertEquals(new Set(recv.received).size, intact.length);
      assertEquals((await d2.stop()).code, 0);
    } finally {
      await recv.close();
    }
  }));
