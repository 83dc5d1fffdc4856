/**
 * Benchmark data: a seeded, deterministic stream of realistic `audit.k8s.io/v1` events as
 * kube-apiserver's log backend writes them (one top-level JSON document per line, Go field
 * order, Go's HTML escaping): events of a busy production cluster from
 * `tests/data/cluster.ts`, interleaved with the generated start-up `audit.log` of
 * `tests/data/apiserver_log.ts` replicated with rewritten auditIDs. Tests use the same
 * generators, so nothing here reads outside the repository.
 *
 * Mix, by event count: 4 busy-cluster events for every audit.log line; of the busy-cluster
 * ones about 80% are `Metadata` (about 1 KB) and 20% `RequestResponse` (5 to 15 KB, objects
 * carrying `metadata.managedFields`). Users, verbs, resources, subresources, namespaces and
 * non-resource URLs follow the shape of a busy production cluster: node heartbeats and
 * status updates, controllers, leader election, kube-proxy watches, workload service
 * accounts, probes and a few humans with kubectl.
 *
 * The file is cached under `bench/data/` keyed by seed and size, written to a temporary name
 * and renamed, so an interrupted run never leaves a half file that a rerun would trust.
 *
 * Run alone: `deno run -A bench/generate.ts [--size-mb N] [--seed S]`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { apiserverLog } from "../tests/data/apiserver_log.ts";
import { clusterEvent } from "../tests/data/cluster.ts";
import { Rand } from "../tests/data/rand.ts";

/** Where cached data files live (gitignored). */
export const DATA_DIR: string = fileURLToPath(new URL("./data/", import.meta.url));

/** A generated data file and what it holds. */
export interface DataFile {
  /** Absolute path of the JSON-lines file. */
  readonly path: string;
  /** Number of events (lines). */
  readonly events: number;
  /** Size in bytes, line ends included. */
  readonly bytes: number;
  /** Events by level. */
  readonly levels: Record<string, number>;
  /** Events copied from the generated start-up audit.log. */
  readonly auditLogEvents: number;
}

const AUDIT_ID = /"auditID":"([0-9a-f-]{36})"/;

/** The start-up audit.log's lines and, per line, the index of its auditID among distinct ones. */
function auditLog(): { lines: string[]; ids: number[] } {
  const lines = apiserverLog({ events: 3000 });
  const seen = new Map<string, number>();
  const ids = lines.map((l) => {
    const id = AUDIT_ID.exec(l)![1];
    let i = seen.get(id);
    if (i === undefined) seen.set(id, i = seen.size);
    return i;
  });
  return { lines, ids };
}

/**
 * Writes about `sizeMb` MB of events for `seed` to `path`.
 *
 * audit.log lines keep their bytes except the auditID, which becomes unique per copy (the
 * stages of one request keep sharing theirs, as in the original).
 */
async function generate(path: string, seed: number, sizeMb: number): Promise<DataFile> {
  const r = new Rand(seed);
  const real = auditLog();
  const limit = sizeMb * 1_000_000;
  const tmp = `${path}.tmp-${Deno.pid}`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  const levels: Record<string, number> = {};
  let bytes = 0;
  let events = 0;
  let auditLogEvents = 0;
  let realAt = 0;
  let copy = 0;
  let now = Date.UTC(2024, 4, 14, 9, 0, 0);
  let pending: string[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    const buf = enc.encode(pending.join(""));
    for (let off = 0; off < buf.length;) off += await file.write(buf.subarray(off));
    pending = [];
    pendingBytes = 0;
  };
  while (bytes < limit) {
    let line: string;
    if (events % 5 === 4) {
      const orig = real.lines[realAt];
      const id = `${copy.toString(16).padStart(6, "0")}${
        real.ids[realAt].toString(16).padStart(6, "0")
      }`;
      line = orig.replace(AUDIT_ID, (_m, a: string) => `"auditID":"${a.slice(0, 24)}${id}"`);
      levels.Metadata = (levels.Metadata ?? 0) + 1;
      auditLogEvents++;
      if (++realAt === real.lines.length) {
        realAt = 0;
        copy++;
      }
    } else {
      now += r.range(0, 3);
      const g = clusterEvent(r, now, r.f() < 0.2);
      line = g.line;
      levels[g.level] = (levels[g.level] ?? 0) + 1;
    }
    pending.push(line, "\n");
    // Lines are ASCII but for rare escapes; the byte count is fixed up from the file below.
    pendingBytes += line.length + 1;
    bytes += line.length + 1;
    events++;
    if (pendingBytes > 4_000_000) await flush();
  }
  await flush();
  file.close();
  const actual = (await Deno.stat(tmp)).size;
  await Deno.rename(tmp, path);
  const data: DataFile = { path, events, bytes: actual, levels, auditLogEvents };
  await Deno.writeTextFile(`${path}.meta.json`, JSON.stringify(data, null, 2) + "\n");
  return data;
}

/**
 * The data file for `seed` and `sizeMb`, generated on first use and cached under `bench/data/`.
 *
 * @example
 * ```ts
 * const data = await ensureData({ seed: 1, sizeMb: 200 });
 * console.log(data.path, data.events, data.bytes);
 * ```
 */
export async function ensureData(
  opts: { seed: number; sizeMb: number; log?: (msg: string) => void },
): Promise<DataFile> {
  await Deno.mkdir(DATA_DIR, { recursive: true });
  // v2: the audit.log part is generated (v1 files copied a log from outside the repository).
  const path = `${DATA_DIR}events-v2-seed${opts.seed}-${opts.sizeMb}mb.jsonl`;
  try {
    const meta = JSON.parse(await Deno.readTextFile(`${path}.meta.json`)) as DataFile;
    if ((await Deno.stat(path)).size === meta.bytes) return { ...meta, path };
  } catch {
    // Missing or stale: generate below.
  }
  opts.log?.(`generating ${opts.sizeMb} MB of events (seed ${opts.seed}) into ${path}`);
  const t0 = performance.now();
  const data = await generate(path, opts.seed, opts.sizeMb);
  opts.log?.(
    `generated ${data.events} events in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  return data;
}

if (import.meta.main) {
  const args = Deno.args;
  const flag = (name: string, d: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  const data = await ensureData({
    seed: flag("--seed", 1),
    sizeMb: flag("--size-mb", 200),
    log: (m) => console.error(m),
  });
  console.log(JSON.stringify(data, null, 2));
}
