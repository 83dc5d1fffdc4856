/**
 * The operations endpoint: `/metrics` (Prometheus), `/healthz` (alive) and `/readyz`
 * (every source listening and not failing, e.g. at its checkpoint; no sink failing for
 * longer than `unhealthyAfter`).
 *
 * prom-client (about 100 ms to load, more than the rest of the daemon's start-up) is imported
 * by the first scrape of `/metrics`, which waits for it, not at start: loaded in the background
 * it still ran before the first event more often than not. Every value it reports comes from
 * the pipeline's own counters, except its default process metrics (event loop lag, GC), which
 * start counting then.
 *
 * @module
 */
import { Hono } from "hono";
import type { PipelineStats } from "./core/stats.ts";
import type { metricsRegistry } from "./metrics.ts";
import type { Logger } from "./core/log.ts";
import type { ReloadStats } from "./reloads.ts";
import { parseListen } from "./core/listen.ts";
import { AUDIT_SINK_PREFIX } from "./dynamic/names.ts";
import type { AuditSinkStats } from "./dynamic/stats.ts";

/** What `/readyz` found. */
export interface Readiness {
  readonly ready: boolean;
  readonly failing: { kind: "source" | "sink"; name: string; reason: string }[];
}

/**
 * Whether the pipeline is ready, and if not, which parts fail.
 *
 * @example
 * ```ts
 * readiness(stats, 60_000, performance.now()); // { ready: true, failing: [] }
 * ```
 */
export function readiness(stats: PipelineStats, unhealthyAfterMs: number, now: number): Readiness {
  const failing: Readiness["failing"] = [];
  for (const s of stats.sources.values()) {
    if (!s.ready) failing.push({ kind: "source", name: s.name, reason: "not accepting input" });
    else if (s.failing !== null) failing.push({ kind: "source", name: s.name, reason: s.failing });
  }
  for (const s of stats.sinks.values()) {
    // An AuditSink's collector belongs to whoever wrote the object: its failures are counted
    // and logged, but do not make the node's auditpipe unready (nor did they kube-apiserver).
    if (s.name.startsWith(AUDIT_SINK_PREFIX)) continue;
    if (s.failingSince !== null && now - s.failingSince >= unhealthyAfterMs) {
      failing.push({
        kind: "sink",
        name: s.name,
        reason: `failing for ${Math.round((now - s.failingSince) / 1000)}s: ${s.lastError}`,
      });
    }
  }
  return { ready: failing.length === 0, failing };
}

/**
 * Starts the operations server on `listen` (`host:port`). Throws at once when it cannot
 * bind (`AddrInUse`, a port out of range).
 *
 * @example
 * ```ts
 * const server = serveOps("127.0.0.1:9090", stats, { unhealthyAfterMs: 60_000, log });
 * await server.shutdown();
 * ```
 */
export function serveOps(
  listen: string,
  stats: PipelineStats,
  opts: {
    unhealthyAfterMs: number;
    log: Logger;
    reloads?: ReloadStats;
    auditSinks?: AuditSinkStats;
  },
): Deno.HttpServer {
  let registry: Promise<ReturnType<typeof metricsRegistry> | null> | undefined;
  const loadRegistry = () =>
    registry ??= import("./metrics.ts")
      .then((m) => m.metricsRegistry(stats, opts.reloads, opts.auditSinks))
      .catch((err) => {
        opts.log.error("cannot load the metrics library; /metrics answers 500", { error: err });
        return null;
      });
  const app = new Hono();
  app.get("/metrics", async (c) => {
    const r = await loadRegistry();
    if (r === null) return c.text("metrics unavailable: see the daemon's log\n", 500);
    c.header("Content-Type", r.contentType);
    return c.body(await r.metrics());
  });
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => {
    const r = readiness(stats, opts.unhealthyAfterMs, performance.now());
    return c.json(r, r.ready ? 200 : 503);
  });
  const { hostname, port } = parseListen(listen);
  return Deno.serve({
    hostname,
    port,
    onListen: (addr) =>
      opts.log.info("ops server listening", {
        address: `${addr.hostname}:${addr.port}`,
        port: addr.port,
        paths: ["/metrics", "/healthz", "/readyz"],
      }),
  }, app.fetch);
}
