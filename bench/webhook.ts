/**
 * webhook (EventLists of 400 events, 4 concurrent keep-alive senders) → 20-rule policy → log,
 * against the floor of `floor_webhook.ts` fed the same bodies by the same senders.
 *
 * Bodies are built before the clock starts, so the senders only hand prepared bytes to
 * `fetch`; they still run in this process and share the machine's two cores with the
 * server under test, for the floor and the daemon alike. The log sink is `blocking`, so a
 * response means its events were written (or dropped by policy): the run ends with the
 * last response.
 *
 * @module
 */
import {
  alternate,
  daemon,
  drops,
  eventListBody,
  lineToItem,
  num,
  outSinkYaml,
  procCpuSeconds,
  type Row,
  scrape,
  sinkCounts,
  sleep,
  throughputRow,
} from "./lib.ts";

const FLOOR = new URL("./floor_webhook.ts", import.meta.url).pathname;

/** Events per EventList, kube-apiserver's default `--audit-webhook-batch-max-size`. */
export const BATCH = 400;
/** Concurrent senders. */
export const SENDERS = 4;

/** Prepared request bodies and the number of events in each. */
export interface Bodies {
  readonly bodies: Uint8Array<ArrayBuffer>[];
  readonly counts: number[];
  readonly events: number;
  readonly bytes: number;
}

/** Builds EventList bodies of `BATCH` events from log lines. */
export function buildBodies(lines: readonly string[]): Bodies {
  const enc = new TextEncoder();
  const bodies: Uint8Array<ArrayBuffer>[] = [];
  const counts: number[] = [];
  let bytes = 0;
  for (let i = 0; i < lines.length; i += BATCH) {
    const slice = lines.slice(i, i + BATCH);
    const body = enc.encode(eventListBody(slice.map(lineToItem)));
    bodies.push(body);
    counts.push(slice.length);
    bytes += body.length;
  }
  return { bodies, counts, events: lines.length, bytes };
}

/** Posts every body to `url` from `SENDERS` concurrent loops; returns seconds taken. */
export async function send(url: string, b: Bodies): Promise<{ seconds: number; failed: number }> {
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  const sender = async () => {
    for (let i = next++; i < b.bodies.length; i = next++) {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: b.bodies[i],
      });
      // Reading the body to its end returns the connection to the keep-alive pool.
      await res.arrayBuffer();
      if (res.status !== 200) failed++;
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, sender));
  return { seconds: (performance.now() - t0) / 1000, failed };
}

/** Reads newline-delimited JSON records from a child's stdout. */
async function* jsonLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  let buf = "";
  for await (const part of stream.pipeThrough(new TextDecoderStream())) {
    buf += part;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
}

/** One floor run over `b`: its time, failed posts, events and CPU seconds (start-up included). */
export async function floorRun(
  b: Bodies,
): Promise<
  { seconds: number; failed: number; events: number; cpuSeconds: number; cpuAtStart: number }
> {
  const [r] = await floorPhases([b]);
  return r;
}

/**
 * One floor process sent `parts` one after the other: per part, its time, failed posts and
 * the floor's CPU seconds before and after it (read from `/proc`), and the events it wrote
 * in all.
 *
 * @example
 * ```ts
 * const [warm, steady] = await floorPhases([first, rest]);
 * ```
 */
export async function floorPhases(
  parts: readonly Bodies[],
): Promise<
  { seconds: number; failed: number; events: number; cpuSeconds: number; cpuAtStart: number }[]
> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-floor-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", FLOOR, `${dir}/out.log`],
    stdout: "piped",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn();
  const out = jsonLines(child.stdout);
  try {
    const { port } = (await out.next()).value as { port: number };
    await sleep(300);
    const runs = [];
    for (const b of parts) {
      const cpuAtStart = await procCpuSeconds(child.pid);
      const r = await send(`http://127.0.0.1:${port}/`, b);
      runs.push({ ...r, cpuAtStart, cpuSeconds: await procCpuSeconds(child.pid) });
    }
    child.kill("SIGTERM");
    const { events } = (await out.next()).value as { events: number; cpu: number };
    await child.status;
    return runs.map((r) => ({ ...r, events }));
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await Deno.remove(dir, { recursive: true });
  }
}

/** What one part of a daemon run measured. */
export interface DaemonPhase {
  seconds: number;
  failed: number;
  /** The sink's counters after this part (cumulative). */
  counts: ReturnType<typeof sinkCounts>;
  dropped: Record<string, number>;
  /** The daemon's CPU seconds (user + system) after the part's last answer. */
  cpuSeconds: number;
  /** Its CPU seconds just before the part's first request. */
  cpuAtStart: number;
}

/**
 * One daemon run over `b` (webhook → policy20 → log); exported for profiling runs.
 *
 * @example
 * ```ts
 * const r = await daemonRun(buildBodies(lines));
 * ```
 */
export async function daemonRun(
  b: Bodies,
  cpuProfDir?: string,
  entry?: string,
): Promise<DaemonPhase> {
  const [r] = await daemonPhases([b], cpuProfDir, entry);
  return r;
}

/**
 * One daemon sent `parts` one after the other (`entry`: another checkout's `main.ts`); per
 * part, what it measured, so a later part's CPU is that of a daemon warmed up by the ones
 * before.
 *
 * @example
 * ```ts
 * const [warm, steady] = await daemonPhases([first, rest]);
 * ```
 */
export async function daemonPhases(
  parts: readonly Bodies[],
  cpuProfDir?: string,
  entry?: string,
): Promise<DaemonPhase[]> {
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-bench-webhook-" });
  const d = await daemon(() => `
sources:
  - type: webhook
    name: apiserver
    listen: 127.0.0.1:0
    path: /audit
${outSinkYaml(`${dir}/out.log`)}`, {
    dir,
    denoFlags: cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`] : [],
    entry,
  });
  try {
    const port = await d.webhookPort();
    const ops = await d.opsPort();
    await sleep(300);
    const runs: DaemonPhase[] = [];
    for (const b of parts) {
      const cpuAtStart = await procCpuSeconds(d.process.pid);
      const run = await send(`http://127.0.0.1:${port}/audit`, b);
      const cpuSeconds = await procCpuSeconds(d.process.pid);
      const s = await scrape(ops);
      runs.push({
        ...run,
        counts: sinkCounts(s, "out"),
        dropped: drops(s, "out"),
        cpuSeconds,
        cpuAtStart,
      });
    }
    await d.stop("SIGTERM");
    return runs;
  } finally {
    await d.stop("SIGKILL").catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Measures the floor, then the daemon, over every event of `lines`, `opts.runs` times
 * (alternating), and reports medians.
 *
 * @example
 * ```ts
 * const row = await benchWebhook(lines, { log: console.error, runs: 3 });
 * ```
 */
export async function benchWebhook(
  lines: readonly string[],
  opts: { log: (msg: string) => void; runs: number },
): Promise<Row> {
  const b = buildBodies(lines);
  opts.log(`webhook: ${b.bodies.length} bodies, ${num(b.bytes / 1e6, 1)} MB`);
  const { floors, daemons: runs } = await alternate(
    "webhook",
    opts.runs,
    opts.log,
    () => floorRun(b),
    () => daemonRun(b),
  );
  const notes: string[] = [];
  const failed = runs.reduce((n, r) => n + r.failed, 0);
  const floorFailed = floors.reduce((n, r) => n + r.failed, 0);
  if (failed || floorFailed) notes.push(`non-200 answers: daemon ${failed}, floor ${floorFailed}`);
  for (const r of runs) {
    if (r.counts.written + r.counts.dropped !== b.events) {
      notes.push(
        `INCOMPLETE: sink accounted ${r.counts.written + r.counts.dropped} of ${b.events}`,
      );
    }
  }
  return throughputRow({
    name: `webhook (EventLists of ${BATCH}, ${SENDERS} senders) → policy20 → log`,
    events: b.events,
    bytes: b.bytes,
    floors,
    daemons: runs,
    goal: 0.75,
    notes,
    detail: `written ${num(runs[0].counts.written)}, dropped ${JSON.stringify(runs[0].dropped)}`,
  });
}
