/**
 * `auditpipe policy` on inputs far bigger than the memory it may use: the real program runs
 * as a subprocess on a generated file of 200 MB+, and its peak resident memory (VmHWM in
 * /proc/<pid>/status, polled while it runs) must stay well under the file's size.
 */
import assert from "node:assert/strict";
import { MiB, runMeasured, writeGenerated } from "./helpers/peak_rss.ts";

/** Peak RSS allowed: the file is at least 200 MiB, so a program holding it cannot pass. */
const MAX_RSS = 150 * MiB;

const POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: [system:kube-proxy]
  - level: Metadata
    resources: [{group: "", resources: [secrets, configmaps]}]
  - level: RequestResponse
    omitManagedFields: true
`;

/** A ~1.4 KB event, as kube-apiserver logs it, whose auditID and name end with `n`. */
function item(n: number): string {
  const id = `0c2a${String(n).padStart(28, "0")}`;
  const resource = ["pods", "configmaps", "secrets", "leases"][n % 4];
  return JSON.stringify({
    level: "RequestResponse",
    auditID: id,
    stage: n % 5 === 0 ? "RequestReceived" : "ResponseComplete",
    requestURI: `/api/v1/namespaces/default/${resource}/obj-${n}`,
    verb: "update",
    user: { username: n % 7 === 0 ? "system:kube-proxy" : "alice", groups: ["dev"] },
    sourceIPs: ["10.0.0.1"],
    userAgent: "kubectl/v1.31.0 (linux/amd64) kubernetes/abcdef",
    objectRef: { resource, namespace: "default", name: `obj-${n}`, apiVersion: "v1" },
    responseStatus: { metadata: {}, code: 200 },
    requestObject: {
      kind: "ConfigMap",
      metadata: {
        name: `obj-${n}`,
        managedFields: [{ manager: "kubectl", operation: "Update", fieldsV1: { "f:data": {} } }],
      },
      data: { payload: "x".repeat(400) },
    },
    responseObject: { kind: "ConfigMap", metadata: { name: `obj-${n}`, resourceVersion: `${n}` } },
    requestReceivedTimestamp: "2024-05-01T10:00:00.000000Z",
    stageTimestamp: "2024-05-01T10:00:00.001000Z",
    annotations: { "authorization.k8s.io/decision": "allow" },
  });
}

const TOP = '{"kind":"Event","apiVersion":"audit.k8s.io/v1",';

/** Writes `size` bytes or more of events to `path`: JSON lines, or one EventList on a single line. */
function writeBig(path: string, size: number, shape: "lines" | "eventlist"): Promise<number> {
  if (shape === "lines") return writeGenerated(path, size, (n) => `${TOP}${item(n).slice(1)}\n`);
  return writeGenerated(path, size, (n) => `${n > 0 ? "," : ""}${item(n)}`, {
    head: '{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[',
    tail: "]}\n",
  });
}

for (const shape of ["lines", "eventlist"] as const) {
  Deno.test(`report on a 200 MB ${shape === "lines" ? "JSON-lines log" : "single-line EventList"} keeps its peak memory under 150 MB`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "auditpipe-policy-mem-" });
    try {
      await Deno.writeTextFile(`${dir}/p.yaml`, POLICY);
      const log = `${dir}/audit.${shape === "lines" ? "log" : "json"}`;
      const count = await writeBig(log, 200 * MiB, shape);
      const size = (await Deno.stat(log)).size;
      assert.ok(size >= 200 * MiB);
      const r = await runMeasured(["policy", "report", "--json", "-p", `${dir}/p.yaml`, log]);
      assert.equal(r.code, 0, r.stderr);
      const rep = JSON.parse(r.stdout);
      assert.equal(rep.total.events, count);
      assert.ok(
        r.peak > 0 && r.peak < MAX_RSS,
        `peak RSS ${(r.peak / MiB).toFixed(1)} MiB for a ${(size / MiB).toFixed(0)} MiB input`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
