/**
 * Crash loop: a subprocess appends to a disk buffer from several producers while a consumer
 * delivers and marks; it is SIGKILLed at random moments, again and again. Afterwards every
 * record whose append had resolved (was fsynced) has been delivered at least once.
 */
import assert from "node:assert/strict";
import { DiskBuffer } from "../pipeline/diskbuffer/store.ts";
import { readAll } from "./diskbuffer_helpers.ts";

const STORE_URL = new URL("../pipeline/diskbuffer/store.ts", import.meta.url).href;

/** The appender: prints `ack id,id,...` after each append resolves, `del id` per delivery. */
const CHILD = `
const { DiskBuffer } = await import(${JSON.stringify(STORE_URL)});
const dir = Deno.env.get("BUF_DIR");
let next = Number(Deno.env.get("BUF_START"));
const enc = new TextEncoder();
const out = (s) => { const b = enc.encode(s); let d = 0; while (d < b.length) d += Deno.stdout.writeSync(b.subarray(d)); };
const buf = await DiskBuffer.open({ path: dir, maxBytes: 256 << 20, segmentBytes: 64 << 10 });
out("recovered " + JSON.stringify({ events: buf.recovery.events, damage: buf.recovery.damage.length }) + "\\n");
out("ready\\n");
(async () => {
  let n = 0;
  for await (const r of buf.read({ follow: true })) {
    out("del " + r.auditID + "\\n");
    if (++n % 7 === 0) await buf.markDelivered(r);
    if (n % 40 === 0) await new Promise((res) => setTimeout(res, 3));
  }
})();
async function producer() {
  for (;;) {
    const ids = [];
    const records = [];
    const k = 1 + Math.floor(Math.random() * 20);
    for (let i = 0; i < k; i++) {
      const id = "e-" + next++;
      ids.push(id);
      const event = { kind: "Event", apiVersion: "audit.k8s.io/v1", level: "Metadata", auditID: id,
        stage: "ResponseComplete", verb: "get", requestURI: "/api/v1/pods?x=" + "y".repeat(Math.floor(Math.random() * 1500)) };
      records.push({ auditID: id, stage: "ResponseComplete", levelChanged: false, bytes: enc.encode(JSON.stringify(event)) });
    }
    if (await buf.append(records) === "appended") out("ack " + ids.join(",") + "\\n");
  }
}
await Promise.all([producer(), producer(), producer(), producer()]);
`;

async function runUntilKilled(dir: string, start: number, aliveMs: number): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", CHILD],
    env: { BUF_DIR: dir, BUF_START: String(start), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const decoder = new TextDecoder();
  let text = "";
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk, { stream: true });
    if (killTimer === undefined && text.includes("ready\n")) {
      killTimer = setTimeout(() => child.kill("SIGKILL"), aliveMs);
    }
  }
  clearTimeout(killTimer);
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL", `the appender exited by itself: ${text.slice(-500)}`);
  return text;
}

Deno.test({
  name:
    "disk buffer crash loop: every append acknowledged before a SIGKILL is delivered at least once",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "auditpipe-diskbuf-crash-" });
    const acked = new Set<string>();
    const deliveries: string[] = [];
    let damage = 0;
    const rounds = 12;
    for (let round = 0; round < rounds; round++) {
      const text = await runUntilKilled(dir, round * 10_000_000, 150 + Math.random() * 1000);
      // Only whole lines: the last one may be cut by the kill.
      const lines = text.split("\n").slice(0, -1);
      for (const line of lines) {
        if (line.startsWith("ack ")) { for (const id of line.slice(4).split(",")) acked.add(id); }
        else if (line.startsWith("del ")) deliveries.push(line.slice(4));
        else if (line.startsWith("recovered ")) damage += JSON.parse(line.slice(10)).damage;
      }
    }
    const buf = await DiskBuffer.open({ path: dir, maxBytes: 256 << 20 });
    damage += buf.recovery.damage.length;
    for (const r of await readAll(buf)) deliveries.push(r.auditID);
    await buf.close();
    const delivered = new Set(deliveries);
    const missing = [...acked].filter((id) => !delivered.has(id));
    const duplicates = deliveries.length - delivered.size;
    console.log(
      `crash loop: ${rounds} SIGKILLs, ${acked.size} acknowledged records, ` +
        `${deliveries.length} deliveries, ${duplicates} duplicates, ${missing.length} missing, ` +
        `${damage} damaged tails cut`,
    );
    assert.ok(acked.size > 1000, `only ${acked.size} records acknowledged`);
    assert.deepEqual(missing.slice(0, 10), []);
    await Deno.remove(dir, { recursive: true });
  },
});
