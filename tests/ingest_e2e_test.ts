import { assert, assertEquals } from "./helpers/assert.ts";
import { realLines, startDaemon } from "./helpers/daemon.ts";
import { waitFor } from "./helpers/wait.ts";

/** The whole lines of a file the daemon may be writing: the last one is done at its "\n". */
function completeLines(text: string): string[] {
  return text.slice(0, text.lastIndexOf("\n") + 1).split("\n").filter((l) => l !== "");
}

Deno.test("stdin: `auditpipe --config c.yaml < audit.log` runs as a batch job, exits 0 and writes every line byte for byte", async () => {
  const lines = await realLines();
  const input = new TextEncoder().encode(lines.join("\n") + "\n");
  const d = await startDaemon((dir) => `
sources:
  - type: stdin
sinks:
  - type: log
    path: ${dir}/out.log
`, { stdin: input });
  const { code } = await d.exited();
  assertEquals(code, 0);
  assertEquals(await Deno.readTextFile(`${d.dir}/out.log`), lines.join("\n") + "\n");
  await Deno.remove(d.dir, { recursive: true });
});

function uniqueLines(lines: string[], from: number): string[] {
  return lines.map((l, i) =>
    l.replace(/"auditID":"[^"]+"/, `"auditID":"t-${String(from + i).padStart(6, "0")}"`)
  );
}

Deno.test("tail: kill -9 during a burst and restart delivers every line at least once, none skipped", async () => {
  const base = await realLines(500);
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-tail-" });
  const log = `${dir}/audit.log`;
  await Deno.writeTextFile(log, "");
  const config = () => `
sources:
  - type: tail
    path: ${log}
    startAt: beginning
    checkpointFile: ${dir}/state/tail.json
    pollInterval: 20ms
sinks:
  - type: log
    path: ${dir}/out/audit.log
`;
  const total = 6000;
  const all = uniqueLines(Array.from({ length: 12 }, () => base).flat(), 0).slice(0, total);
  let d = await startDaemon(config, { dir });
  await d.waitLog((r) => r.msg === "auditpipe starting");
  const file = await Deno.open(log, { append: true });
  const enc = new TextEncoder();
  const delivered = async () =>
    (await Deno.readTextFile(`${dir}/out/audit.log`).catch(() => "")).split("\n").length - 1;
  let killed = false;
  for (let i = 0; i < total; i += 50) {
    await file.write(enc.encode(all.slice(i, i + 50).join("\n") + "\n"));
    // Kill in the middle of the burst, once the daemon is well into it.
    if (!killed && i >= 3000 && await delivered() >= 1500) {
      d.process.kill("SIGKILL");
      await d.exited();
      killed = true;
      d = await startDaemon(config, { dir });
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  assert(killed, "the burst ended before the daemon delivered 1500 lines");
  file.close();
  const want = all.map((l) => JSON.parse(l).auditID as string);
  const out = `${dir}/out/audit.log`;
  let got: string[] = [];
  await waitFor(`all ${want.length} lines in out/audit.log`, async () => {
    const text = await Deno.readTextFile(out).catch(() => "");
    got = completeLines(text).map((l) => JSON.parse(l).auditID);
    return new Set(got).size >= want.length;
  }, { timeoutMs: 30_000, intervalMs: 50, detail: () => `${new Set(got).size} there` });
  assertEquals((await d.stop()).code, 0);
  const seen = new Set(got);
  const missing = want.filter((id) => !seen.has(id));
  assertEquals(missing, [], "no line skipped");
  // First deliveries keep the file's order.
  const first: string[] = [];
  const firstSeen = new Set<string>();
  for (const id of got) if (!firstSeen.has(id)) firstSeen.add(id), first.push(id);
  assertEquals(first, want);
  // At least once: what was written but not yet checkpointed at the kill comes again.
  assert(got.length - want.length < total / 2, `repeats: ${got.length - want.length}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tail: rename rotation in the middle of a burst, as kube-apiserver's log backend does it, loses and repeats nothing", async () => {
  const base = await realLines(1000);
  const all = uniqueLines([...base, ...base, ...base], 0);
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-rot-" });
  const log = `${dir}/audit.log`;
  await Deno.writeTextFile(log, "");
  const d = await startDaemon(() => `
sources:
  - type: tail
    path: ${log}
    startAt: beginning
    pollInterval: 20ms
sinks:
  - type: log
    path: ${dir}/out/audit.log
`, { dir });
  await d.waitLog((r) => r.msg === "auditpipe starting");
  const enc = new TextEncoder();
  let file = await Deno.open(log, { append: true });
  const delivered = async () =>
    (await Deno.readTextFile(`${dir}/out/audit.log`).catch(() => "")).split("\n").length - 1;
  for (let i = 0; i < all.length; i += 100) {
    // The tail starts at the beginning of the file it finds; make sure that is the first
    // one before rotating it away.
    if (i === 100) await waitFor("the first delivered line", async () => await delivered() > 0);
    await file.write(enc.encode(all.slice(i, i + 100).join("\n") + "\n"));
    if (i === 1000 || i === 2000) {
      // lumberjack: rename to audit-<time>.log, then open a new audit.log.
      file.close();
      await Deno.rename(log, `${dir}/audit-2024-03-01T12-34-5${i / 1000}.000.log`);
      file = await Deno.open(log, { append: true, create: true });
    }
    await new Promise((r) => setTimeout(r, 3));
  }
  file.close();
  const want = all.map((l) => JSON.parse(l).auditID as string);
  let got: string[] = [];
  await waitFor(`all ${want.length} lines in out/audit.log`, async () => {
    got = completeLines(await Deno.readTextFile(`${dir}/out/audit.log`).catch(() => ""))
      .map((l) => JSON.parse(l).auditID);
    return got.length >= want.length;
  }, { timeoutMs: 30_000, intervalMs: 50, detail: () => `${got.length} there` });
  assertEquals((await d.stop()).code, 0);
  assertEquals(got, want);
  await Deno.remove(dir, { recursive: true });
});
