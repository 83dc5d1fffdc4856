/**
 * Test harness: starts the real daemon as a subprocess with a config written to a temp
 * folder, finds its ephemeral ports from its JSON logs, and stops it with a signal.
 *
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import { auditLogLines, sampleEvents } from "../data/corpus.ts";
import { assertEquals } from "./assert.ts";

/** Where the repository is. */
export const ROOT = fromFileUrl(new URL("../../", import.meta.url));

/** A running daemon. */
export interface Daemon {
  readonly dir: string;
  readonly process: Deno.ChildProcess;
  /** JSON log records seen so far on stderr. */
  readonly logs: Record<string, unknown>[];
  /** Waits for a log record matching `pred`. */
  waitLog(
    pred: (r: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** The webhook source's port (first one). */
  webhookPort(): Promise<number>;
  /** The ops server's port. */
  opsPort(): Promise<number>;
  /**
   * Sends a signal and waits for exit; returns the exit status and everything on stdout. A
   * daemon still running after `timeoutMs` (default {@linkcode EXIT_MS}) is killed with
   * SIGKILL and the call rejects, with the daemon's last logs.
   */
  stop(signal?: Deno.Signal, timeoutMs?: number): Promise<{ code: number; stdout: string }>;
  /** Waits for the process to exit by itself, under the same deadline as `stop`. */
  exited(timeoutMs?: number): Promise<{ code: number; stdout: string }>;
}

/** How long `stop()` and `exited()` wait for the daemon to exit before killing it. */
export const EXIT_MS = 60_000;

/** Starts `deno run -A <entry> --config <dir>/pipeline.yaml` with `config` (a function of dir). */
export async function startDaemon(
  config: (dir: string) => string,
  opts: {
    entry?: string;
    args?: string[];
    stdin?: Uint8Array;
    dir?: string;
    env?: Record<string, string>;
    /** Deno permission flags instead of -A. */
    permissions?: string[];
    /** Use this config file as it is instead of writing `config(dir)`. */
    configFile?: string;
  } = {},
): Promise<Daemon> {
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "auditpipe-test-" });
  const cfgPath = opts.configFile ?? `${dir}/pipeline.yaml`;
  if (!opts.configFile) await Deno.writeTextFile(cfgPath, config(dir));
  const entry = opts.entry ?? `${ROOT}main.ts`;
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(opts.permissions ?? ["-A"]),
      entry,
      "--config",
      cfgPath,
      ...(opts.args ?? []),
    ],
    cwd: dir,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...(opts.env ?? {}) },
  }).spawn();
  if (opts.stdin) {
    const w = process.stdin.getWriter();
    w.write(opts.stdin).then(() => w.close()).catch(() => {});
  }
  const logs: Record<string, unknown>[] = [];
  const waiters: {
    pred: (r: Record<string, unknown>) => boolean;
    resolve: (r: Record<string, unknown>) => void;
  }[] = [];
  const stderrDone = (async () => {
    const lines = process.stderr.pipeThrough(new TextDecoderStream());
    let buf = "";
    for await (const part of lines) {
      buf += part;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line);
        } catch {
          rec = { msg: line, raw: true };
        }
        logs.push(rec);
        for (const w of [...waiters]) {
          if (w.pred(rec)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(rec);
          }
        }
      }
    }
  })();
  const stdoutText = new Response(process.stdout).text();
  let status: Promise<{ code: number; stdout: string }> | null = null;
  const exit = () =>
    status ??= (async () => {
      const s = await process.status;
      await stderrDone;
      return { code: s.code, stdout: await stdoutText };
    })();
  const exited = async (timeoutMs = EXIT_MS, after = "") => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((r) => timer = setTimeout(() => r(null), timeoutMs));
    const got = await Promise.race([exit(), late]);
    clearTimeout(timer);
    if (got !== null) return got;
    try {
      process.kill("SIGKILL");
    } catch { /* gone meanwhile */ }
    await exit();
    throw new Error(
      `the daemon did not exit within ${timeoutMs} ms${after}; killed it with SIGKILL; last logs:\n${
        logs.slice(-20).map((l) => JSON.stringify(l)).join("\n")
      }`,
    );
  };

  const waitLog = (pred: (r: Record<string, unknown>) => boolean, timeoutMs = 20_000) => {
    const found = logs.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const t = setTimeout(() => {
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for a log line matching ${pred}; logs:\n${
              logs.map((l) => JSON.stringify(l)).join("\n")
            }`,
          ),
        );
      }, timeoutMs);
      waiters.push({ pred, resolve: (r) => (clearTimeout(t), resolve(r)) });
    });
  };
  return {
    dir,
    process,
    logs,
    waitLog,
    webhookPort: async () =>
      (await waitLog((r) => r.msg === "webhook source listening")).port as number,
    opsPort: async () => (await waitLog((r) => r.msg === "ops server listening")).port as number,
    async stop(signal = "SIGTERM", timeoutMs = EXIT_MS) {
      try {
        process.kill(signal);
      } catch { /* already gone */ }
      return await exited(timeoutMs, ` of ${signal}`);
    },
    exited: (timeoutMs = EXIT_MS) => exited(timeoutMs),
  };
}

/**
 * Lines of a kube-apiserver audit.log (top-level events, no line ends), made by the project's
 * generator (tests/data/): nothing is read from outside the repository.
 *
 * @example
 * ```ts
 * const lines = await realLines(5);
 * ```
 */
export function realLines(limit = Infinity): Promise<string[]> {
  return Promise.resolve(auditLogLines(limit));
}

/**
 * Events of varied shapes, parsed: generated rule-test fixtures first (request and response
 * objects, sorted keys, v1beta1 fields), then audit.log lines. See tests/data/corpus.ts.
 *
 * @example
 * ```ts
 * const events = await realEvents(20);
 * ```
 */
export function realEvents(limit = 200): Promise<Record<string, unknown>[]> {
  return Promise.resolve(sampleEvents(limit));
}

/** An EventList body of `events`, with items stripped of kind/apiVersion as Go writes them. */
export function eventList(events: Record<string, unknown>[]): string {
  const items = events.map(({ kind: _k, apiVersion: _v, ...rest }) => rest);
  return JSON.stringify({ kind: "EventList", apiVersion: "audit.k8s.io/v1", metadata: {}, items });
}

/**
 * POSTs `events` as an EventList to the webhook source listening on `port`, as kube-apiserver
 * does; returns the answer unread.
 *
 * @example
 * ```ts
 * const res = await postEvents(await d.webhookPort(), events);
 * ```
 */
export function postEvents(port: number, events: Record<string, unknown>[]): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/audit`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: eventList(events),
  });
}

/**
 * {@linkcode postEvents}, expecting 200 (the events were accepted); the body is discarded.
 *
 * @example
 * ```ts
 * await postAccepted(await d.webhookPort(), events);
 * ```
 */
export async function postAccepted(port: number, events: Record<string, unknown>[]): Promise<void> {
  const res = await postEvents(port, events);
  assertEquals(res.status, 200);
  await res.body?.cancel();
}

/**
 * The JSON lines of the file at `path`, parsed (a log sink's output), as `T` (unchecked).
 *
 * @example
 * ```ts
 * const written = await readJsonLines(`${d.dir}/audit.log`);
 * ```
 */
export async function readJsonLines<T = Record<string, unknown>>(path: string): Promise<T[]> {
  return (await Deno.readTextFile(path)).trimEnd().split("\n").map((l) => JSON.parse(l) as T);
}

/**
 * A config for {@linkcode startDaemon}: a webhook source relaying to one webhook sink, `siem`,
 * that posts to `recv` (its kubeconfig is written beside the config). `sink` lines are more
 * keys of that sink, `top` lines more top-level YAML.
 *
 * @example
 * ```ts
 * const d = await startDaemon(relayConfig(recv, ["mode: blocking"], ["shutdownTimeout: 1s"]));
 * ```
 */
export function relayConfig(
  recv: { kubeconfig(): string },
  sink: string[] = [],
  top: string[] = [],
): (dir: string) => string {
  return (dir) => {
    Deno.writeTextFileSync(`${dir}/siem.kubeconfig`, recv.kubeconfig());
    return [
      "sources:",
      "  - type: webhook",
      "    listen: 127.0.0.1:0",
      "sinks:",
      "  - type: webhook",
      "    name: siem",
      "    kubeconfig: siem.kubeconfig",
      ...sink.map((l) => `    ${l}`),
      ...top,
      "",
    ].join("\n");
  };
}
