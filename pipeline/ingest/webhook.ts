/**
 * The webhook source: the HTTP endpoint kube-apiserver's audit webhook backend posts
 * `EventList`s to. It answers only when the sinks' modes say the events are safe (200), or
 * 503 when a `blocking-strict` sink failed, so kube-apiserver retries.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { bearerAuth } from "hono/bearer-auth";
import { HTTPException } from "hono/http-exception";
import { Ack } from "../core/ack.ts";
import type { SourceConfig } from "../config/schema.ts";
import { BodyParts } from "../body_parts.ts";
import { DecodeError, type Rejected } from "../core/decode.ts";
import type { Chunk } from "../core/envelope.ts";
import { BodyError, readBody, release } from "./body.ts";
import type { Logger } from "../core/log.ts";
import { RateLimitedLog } from "../core/log.ts";
import type { SourceStats } from "../core/stats.ts";
import { annotateChunk } from "../stages/annotate.ts";
import type { Dispatch, Source } from "./source.ts";

/** The webhook source's config. */
export type WebhookSourceConfig = Extract<SourceConfig, { type: "webhook" }>;

/** What the webhook source needs besides its config. */
export interface WebhookSourceDeps {
  readonly name: string;
  readonly log: Logger;
  readonly stats: SourceStats;
  /** The bearer token required, when auth is configured (already read from its file). */
  readonly token?: string;
  /** PEM texts for TLS, already read. */
  readonly tls?: { cert: string; key: string; clientCA?: string };
}

/** A webhook source; `addr` is set once it listens. */
export interface WebhookSource extends Source {
  /** The bound address, after `run()` started listening. */
  addr?: { hostname: string; port: number };
  /** Resolves once listening. */
  readonly listening: Promise<void>;
}

function splitListen(listen: string): { hostname: string; port: number } {
  const i = listen.lastIndexOf(":");
  let host = listen.slice(0, i);
  if (host.startsWith("[")) host = host.slice(1, -1);
  return { hostname: host === "" ? "0.0.0.0" : host, port: Number(listen.slice(i + 1)) };
}

/**
 * Creates the webhook source.
 *
 * @example
 * ```ts
 * const src = webhookSource(cfg, { name: "apiserver", log, stats });
 * src.run((chunk) => fanout.dispatch(chunk));
 * await src.listening;
 * ```
 */
export function webhookSource(cfg: WebhookSourceConfig, deps: WebhookSourceDeps): WebhookSource {
  const { log, stats } = deps;
  let inFlight = 0;
  let stopping = false;
  let dispatch: Dispatch | null = null;
  let server: { shutdown(): Promise<void> } | null = null;
  let resolveListening!: () => void;
  const listening = new Promise<void>((r) => resolveListening = r);
  const invalid = new RateLimitedLog(log, "rejected invalid events");
  let deadLetterWrite: Promise<void> = Promise.resolve();

  const writeDeadLetters = (items: Rejected[]) => {
    if (!cfg.deadLetterFile || items.length === 0) return;
    const file = cfg.deadLetterFile;
    const text = items.map((r) =>
      JSON.stringify({
        ts: new Date().toISOString(),
        source: deps.name,
        index: r.index,
        reason: r.reason,
        item: r.item,
      }) + "\n"
    ).join("");
    deadLetterWrite = deadLetterWrite.then(() =>
      Deno.writeTextFile(file, text, { append: true, mode: 0o600 })
    ).catch((err) => log.error("cannot write dead-letter file", { path: file, error: err }));
  };

  const withAnnotations = (chunk: Chunk): Chunk =>
    cfg.annotations ? annotateChunk(chunk, cfg.annotations) : chunk;

  const app = new Hono();
  app.onError((err, c) => {
    if (err instanceof BodyError) return c.json({ error: err.message }, err.status);
    if (err instanceof HTTPException) {
      stats.reject(err.status === 401 ? "unauthorized" : `http_${err.status}`);
      return err.getResponse();
    }
    log.error("webhook handler failed", { error: err });
    return c.json({ error: "internal error" }, 500);
  });
  app.use(async (c, next) => {
    const t0 = performance.now();
    await next();
    stats.answered(c.res.status, (performance.now() - t0) / 1000);
  });
  app.all(cfg.path, async (c, next) => {
    if (c.req.method !== "POST") {
      c.header("Allow", "POST");
      return c.json({ error: `method ${c.req.method} not allowed; POST an EventList` }, 405);
    }
    if (stopping) return c.json({ error: "shutting down" }, 503);
    if (inFlight >= cfg.maxInFlight) {
      stats.reject("overload");
      c.header("Retry-After", "1");
      return c.json(
        { error: `too many concurrent requests (maxInFlight ${cfg.maxInFlight})` },
        429,
      );
    }
    inFlight++;
    try {
      await next();
    } finally {
      inFlight--;
    }
  });
  if (deps.token !== undefined) {
    app.post(
      cfg.path,
      bearerAuth({
        token: deps.token,
        noAuthenticationHeader: { message: "missing bearer token" },
        invalidToken: { message: "invalid bearer token" },
        invalidAuthenticationHeader: { message: "invalid Authorization header" },
      }),
    );
  }
  app.post(cfg.path, async (c, next) => {
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "application/json" && !type.endsWith("+json")) {
      stats.reject("unsupported_media_type");
      return c.json(
        { error: `Content-Type must be application/json, got ${JSON.stringify(type)}` },
        415,
      );
    }
    await next();
  });
  app.post(
    cfg.path,
    bodyLimit({
      maxSize: cfg.maxBodyBytes,
      onError: (c) => {
        stats.reject("too_large");
        return c.json({ error: `body exceeds maxBodyBytes ${cfg.maxBodyBytes}` }, 413);
      },
    }),
  );
  app.post(cfg.path, async (c) => {
    let parts: BodyParts;
    let body: Uint8Array;
    try {
      body = await readBody(c.req.raw, cfg.maxBodyBytes);
      parts = new BodyParts(body);
    } catch (err) {
      if (err instanceof DecodeError) {
        stats.reject("invalid_body");
        return c.json({ error: err.message }, 400);
      }
      if (err instanceof BodyError && err.status === 413) stats.reject("too_large");
      throw err;
    }
    // Each piece goes on before the next is parsed (see body_parts.ts); one ack for all.
    const ack = new Ack();
    let accepted = 0;
    let rejected = 0;
    let broken: DecodeError | null = null;
    try {
      for (let part; (part = parts.next()) !== null;) {
        if (part.rejected.length) {
          rejected += part.rejected.length;
          stats.reject("invalid_event", part.rejected.length);
          invalid.add(part.rejected.length, {
            source: deps.name,
            first: { index: part.rejected[0].index, reason: part.rejected[0].reason },
          });
          writeDeadLetters(part.rejected);
        }
        if (part.envelopes.length === 0) continue;
        accepted += part.envelopes.length;
        stats.events += part.envelopes.length;
        ack.hold();
        await dispatch!(withAnnotations({ items: part.envelopes, ack }));
      }
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      // The rest of a list was not JSON: what came before it was handed on and is answered.
      broken = err;
      stats.reject("invalid_body");
    }
    // Every piece was copied out of the body: its megabytes go now, not at the next collection.
    if (parts.copied && !broken) release(body);
    ack.release();
    const failure = await ack.settled;
    if (failure) {
      c.header("Retry-After", "1");
      return c.json({ error: `not stored: ${failure.message}` }, 503);
    }
    if (broken) return c.json({ error: broken.message, accepted, rejected }, 400);
    return c.json({ accepted, rejected }, 200);
  });
  app.notFound((c) => c.json({ error: `not found; POST to ${cfg.path}` }, 404));

  const source: WebhookSource = {
    name: deps.name,
    listening,
    run(d) {
      dispatch = d;
      const { hostname, port } = splitListen(cfg.listen);
      const onListen = (addr: { hostname: string; port: number }) => {
        source.addr = addr;
        stats.ready = true;
        log.info("webhook source listening", {
          source: deps.name,
          address: `${addr.hostname}:${addr.port}`,
          port: addr.port,
          path: cfg.path,
          tls: deps.tls ? (deps.tls.clientCA ? "mtls" : "tls") : "none",
        });
        resolveListening();
      };
      if (deps.tls?.clientCA) {
        return serveMutualTls(app.fetch, { hostname, port }, deps.tls, onListen, (s) => server = s);
      }
      const s = Deno.serve({
        hostname,
        port,
        ...(deps.tls ? { cert: deps.tls.cert, key: deps.tls.key } : {}),
        onListen,
      }, app.fetch);
      server = s;
      return s.finished;
    },
    async stop() {
      stopping = true;
      stats.ready = false;
      await server?.shutdown();
      invalid.flush();
      await deadLetterWrite;
    },
  };
  return source;
}

/**
 * Serves with `node:https`, which can require and verify client certificates; Deno.serve
 * cannot request them. Requests are bridged to the same fetch handler.
 */
async function serveMutualTls(
  fetch: (req: Request) => Response | Promise<Response>,
  at: { hostname: string; port: number },
  tls: { cert: string; key: string; clientCA?: string },
  onListen: (addr: { hostname: string; port: number }) => void,
  setServer: (s: { shutdown(): Promise<void> }) => void,
): Promise<void> {
  const https = await import("node:https");
  const { Buffer } = await import("node:buffer");
  let closed!: () => void;
  let failed!: (err: Error) => void;
  const finished = new Promise<void>((r, j) => (closed = r, failed = j));
  const server = https.createServer({
    cert: tls.cert,
    key: tls.key,
    ca: tls.clientCA,
    requestCert: true,
    rejectUnauthorized: true,
  }, async (req, res) => {
    try {
      const chunks: Uint8Array[] = [];
      for await (const part of req) chunks.push(part as Uint8Array);
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
      }
      const method = req.method ?? "GET";
      const request = new Request(`https://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, {
        method,
        headers,
        body: method === "GET" || method === "HEAD" ? undefined : Buffer.concat(chunks),
      });
      const response = await fetch(request);
      const out = new Uint8Array(await response.arrayBuffer());
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(out);
    } catch (err) {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: (err as Error).message }));
    }
  });
  server.on("close", () => closed());
  // A port in use is an "error" event: it fails the source, not the process.
  server.on("error", (err) => failed(err));
  setServer({
    shutdown: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
      }),
  });
  server.listen(at.port, at.hostname, () => {
    const a = server.address();
    onListen({
      hostname: at.hostname,
      port: typeof a === "object" && a ? a.port : at.port,
    });
  });
  return finished;
}
