/**
 * `auditpipe rbac` on an input far bigger than the memory it may use: the real program runs
 * as a subprocess on a generated 200 MB+ audit log, and its peak resident memory (VmHWM in
 * /proc/<pid>/status, polled while it runs) must stay well under the file's size. Only
 * distinct requests are held, so memory follows those (here a few hundred), not the log.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const MiB = 1024 * 1024;
/** Peak RSS allowed: the file is at least 200 MiB, so a program holding it cannot pass. */
const MAX_RSS = 150 * MiB;

/** A ~1.2 KB event; one in three is the service account's, on 100 object names. */
function line(n: number): string {
  const resource = ["pods", "configmaps", "secrets", "leases"][n % 4];
  const sa = n % 3 === 0;
  return JSON.stringify({
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "Request",
    auditID: `0c2a${String(n).padStart(28, "0")}`,
    stage: "ResponseComplete",
    requestURI: `/api/v1/namespaces/ns${n % 5}/${resource}/obj-${n % 100}`,
    verb: ["get", "update", "list"][n % 3],
    user: sa
      ? {
        username: "system:serviceaccount:ns1:sa1",
        groups: ["system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"],
      }
      : { username: "alice", groups: ["system:authenticated"] },
    sourceIPs: ["10.0.0.1"],
    userAgent: "controller/v1.31.0 (linux/amd64) kubernetes/abcdef",
    objectRef: { resource, namespace: `ns${n % 5}`, name: `obj-${n % 100}`, apiVersion: "v1" },
    responseStatus: { metadata: {}, code: 200 },
    requestObject: { kind: "ConfigMap", data: { payload: "x".repeat(700) } },
    requestReceivedTimestamp: "2024-05-01T10:00:00.000000Z",
    stageTimestamp: "2024-05-01T10:00:00.001000Z",
  }) + "\n";
}

async function writeBig(path: string, size: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  let written = 0;
  let n = 0;
  try {
    while (written < size) {
      const parts: string[] = [];
      let len = 0;
      while (len < 4 * MiB) {
        const l = line(n++);
        parts.push(l);
        len += l.length;
      }
      const bytes = enc.encode(parts.join(""));
      for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
      written += bytes.length;
    }
  } finally {
    file.close();
  }
}

async function peakOf(pid: number): Promise<number> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const m = status.match(/^VmHWM:\s+(\d+) kB/m);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0; // exited between polls
  }
}

Deno.test("rbac on a 200 MB audit log keeps its peak memory under 150 MB", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-rbac-mem-" });
  try {
    const log = `${dir}/audit.log`;
    await writeBig(log, 200 * MiB);
    const size = (await Deno.stat(log)).size;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "rbac", "--serviceaccount", "ns1:sa1", "-f", log],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let peak = 0;
    let running = true;
    const poll = (async () => {
      while (running) {
        peak = Math.max(peak, await peakOf(child.pid));
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const out = await child.output();
    running = false;
    await poll;
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(new TextDecoder().decode(out.stdout), /kind: ClusterRole\n/);
    assert.ok(
      peak > 0 && peak < MAX_RSS,
      `peak RSS ${(peak / MiB).toFixed(1)} MiB for a ${(size / MiB).toFixed(0)} MiB input`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
