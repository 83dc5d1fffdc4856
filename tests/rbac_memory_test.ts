/**
 * `auditpipe rbac` on an input far bigger than the memory it may use: the real program runs
 * as a subprocess on a generated 200 MB+ audit log, and its peak resident memory (VmHWM in
 * /proc/<pid>/status, polled while it runs) must stay well under the file's size. Only
 * distinct requests are held, so memory follows those (here a few hundred), not the log.
 */
import assert from "node:assert/strict";
import { MiB, runMeasured, writeGenerated } from "./helpers/peak_rss.ts";

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

Deno.test("rbac on a 200 MB audit log keeps its peak memory under 150 MB", async () => {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-rbac-mem-" });
  try {
    const log = `${dir}/audit.log`;
    await writeGenerated(log, 200 * MiB, line);
    const size = (await Deno.stat(log)).size;
    const r = await runMeasured(["rbac", "--serviceaccount", "ns1:sa1", "-f", log]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /kind: ClusterRole\n/);
    assert.ok(
      r.peak > 0 && r.peak < MAX_RSS,
      `peak RSS ${(r.peak / MiB).toFixed(1)} MiB for a ${(size / MiB).toFixed(0)} MiB input`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
