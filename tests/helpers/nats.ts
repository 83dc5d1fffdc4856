/**
 * Test harness: a real `nats-server` with JetStream as a subprocess on a free loopback port,
 * its store in a temp folder that goes away with it.
 *
 * @module
 */

import { PROGRAMS, requireProgram } from "./external.ts";

/** The server binary: `nats-server` on PATH, or what `NATS_SERVER` names. */
const NATS_SERVER = PROGRAMS["nats-server"].command();

/**
 * A running nats-server.
 *
 * @example
 * ```ts
 * const srv = await startNatsServer();
 * try { await use(srv.url); } finally { await srv.stop(); }
 * ```
 */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The JetStream store and log folder. */
  readonly dir: string;
  /** Stops the server and starts it again on the same port and store (a NATS restart). */
  restart(): Promise<void>;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its folder. */
  stop(): Promise<void>;
}

/**
 * A loopback port nothing listens on (bound and released; another process could take it
 * in between, which on a test machine does not happen in practice).
 *
 * @example
 * ```ts
 * const port = freePort(); // e.g. 41234
 * ```
 */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Starts `nats-server -js` on a free port with a fresh store; resolves once it accepts
 * connections, or rejects with the tail of its log.
 *
 * @example
 * ```ts
 * const srv = await startNatsServer();
 * const nc = await connect({ servers: srv.url });
 * ```
 */
export async function startNatsServer(opts: { args?: string[] } = {}): Promise<NatsServer> {
  requireProgram("nats-server");
  const dir = await Deno.makeTempDir({ prefix: "auditpipe-nats-" });
  const port = freePort();
  const extra = opts.args ?? [];
  let proc: Proc;
  try {
    proc = await spawn(dir, port, extra);
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    async restart() {
      await proc.kill();
      proc = await spawn(dir, port, extra);
    },
    async stop() {
      await proc.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** One server process. */
interface Proc {
  /** SIGTERM, SIGKILL after 3 s; resolves once it has exited. */
  kill(): Promise<void>;
}

/**
 * Spawns the server on `port` with its store in `dir` (and `extra` flags: TLS, auth) and waits
 * until it accepts connections.
 */
async function spawn(dir: string, port: number, extra: string[]): Promise<Proc> {
  const logFile = `${dir}/server.log`;
  const child = new Deno.Command(NATS_SERVER, {
    args: [
      ...["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", `${dir}/store`, "-l", logFile],
      ...extra,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then(() => {
    exited = true;
  });
  const kill = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, 3000);
      await status;
      clearTimeout(t);
    }
  };
  const deadline = Date.now() + 10_000;
  while (true) {
    if (exited || Date.now() > deadline) {
      await kill();
      const log = await Deno.readTextFile(logFile).catch(() => "");
      throw new Error(`nats-server did not start on port ${port}: ${log.slice(-2000)}`);
    }
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return { kill };
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * The config of a node daemon: a webhook source publishing to stream `AUDIT` (subject
 * `audit.events`) through a NATS sink, with `sink` lines added to the sink's mapping.
 *
 * @example
 * ```ts
 * const node = await startDaemon(publisherConfig(nats.url, ["buffer: {type: disk, path: buf}"]));
 * ```
 */
export function publisherConfig(url: string, sink: string[] = []): () => string {
  return () =>
    [
      "sources:",
      "  - type: webhook",
      "    listen: 127.0.0.1:0",
      "sinks:",
      "  - type: nats",
      `    servers: [${url}]`,
      "    stream: AUDIT",
      "    subject: audit.events",
      ...sink.map((l) => `    ${l}`),
      "",
    ].join("\n");
}

/**
 * The config of a collector daemon: a NATS source reading stream `AUDIT` (subject
 * `audit.events`) through the durable consumer `collector`, into the log file `all.log` in
 * the daemon's folder.
 *
 * @example
 * ```ts
 * const collector = await startDaemon(collectorConfig(nats.url));
 * // ... then read `${collector.dir}/all.log`
 * ```
 */
export function collectorConfig(url: string): (dir: string) => string {
  return (dir) => `
sources:
  - type: nats
    servers: [${url}]
    stream: AUDIT
    subject: audit.events
    consumer: collector
sinks:
  - type: log
    path: ${dir}/all.log
`;
}
