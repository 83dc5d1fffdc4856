/**
 * Helpers shared by the disk buffer tests: realistic records, reading a buffer out, and the
 * size of its segment files.
 *
 * @module
 */
import type { BufferRecord, DiskBuffer, StoredRecord } from "../pipeline/diskbuffer/store.ts";
import { listSegments, segmentPath } from "../pipeline/diskbuffer/layout.ts";

const enc = new TextEncoder();

/** A realistic event record numbered `i`. */
export function eventRecord(i: number, pad = 0): BufferRecord {
  const auditID = `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
  const event = {
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "Metadata",
    auditID,
    stage: "ResponseComplete",
    requestURI: `/api/v1/namespaces/default/pods/p-${i}`,
    verb: "get",
    user: { username: "system:serviceaccount:kube-system:replicaset-controller" },
    objectRef: { resource: "pods", namespace: "default", name: `p-${i}`, apiVersion: "v1" },
    responseStatus: { metadata: {}, code: 200 },
    annotations: pad > 0 ? { pad: "x".repeat(pad) } : undefined,
  };
  return {
    auditID,
    stage: "ResponseComplete",
    levelChanged: i % 3 === 0,
    bytes: enc.encode(JSON.stringify(event)),
  };
}

/** Reads every undelivered record now in the buffer (without following). */
export async function readAll(buf: DiskBuffer): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for await (const r of buf.read()) out.push(r);
  return out;
}

/** Total size of the segment files in `dir`. */
export async function segmentBytes(dir: string): Promise<number> {
  let n = 0;
  for (const id of await listSegments(dir)) n += (await Deno.stat(segmentPath(dir, id))).size;
  return n;
}

/**
 * The settings of the disk buffer tests' webhook sink `siem`, as lines of its mapping: one
 * attempt per batch after a 20 ms backoff, batches of `maxSize` events or `maxWait`, no
 * throttle, and `buffer` (a YAML flow mapping).
 *
 * @example
 * ```ts
 * relayConfig(recv, siemSinkSettings(200, "20ms", "{type: disk, path: buf}"));
 * ```
 */
export function siemSinkSettings(maxSize: number, maxWait: string, buffer: string): string[] {
  return [
    "initialBackoff: 20ms",
    "retry: {maxAttempts: 1}",
    `batch: {maxSize: ${maxSize}, maxWait: ${maxWait}, throttle: {enabled: false}}`,
    `buffer: ${buffer}`,
  ];
}
