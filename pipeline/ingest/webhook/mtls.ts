/**
 * Serving the webhook source with mutual TLS through `node:https`, which can require and
 * verify client certificates (Deno.serve cannot request them). Each request is bridged to
 * the same fetch handler as soon as its headers arrive, its body a stream read on demand, so
 * the request path's limits (in-flight count, body size) apply before and while the body
 * arrives, exactly as they do with Deno.serve.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../../core/log.ts";
import { RateLimitedLog } from "../../core/log.ts";
import type { SourceStats } from "../../core/stats.ts";

/** The PEM texts a mutual-TLS listener needs. */
export interface MutualTlsPem {
  readonly cert: string;
  readonly key: string;
  readonly clientCA: string;
}

/** A running listener. */
export interface Listener {
  /** Stops accepting, waits for the requests in flight. */
  shutdown(): Promise<void>;
  /** Resolves once the listener has closed; rejects when it could not listen (port in use). */
  readonly finished: Promise<void>;
}

/**
 * The request's body as a web stream that pulls from the socket only when read: the handler
 * never gets more than it asks for, and a handler that stops reading stops the upload. A
 * connection that closes before the body ended errors the stream.
 */
function bodyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  let settled = false;
  return new ReadableStream<Uint8Array>({
    start(ctl) {
      req.pause();
      req.on("data", (b: Uint8Array) => {
        // After a refusal the stream is cancelled; what still arrives is dropped.
        if (settled) return;
        ctl.enqueue(b);
        if ((ctl.desiredSize ?? 0) <= 0) req.pause();
      });
      req.on("end", () => {
        if (!settled) settled = true, ctl.close();
      });
      const cut = (err?: unknown) => {
        if (settled) return;
        settled = true;
        ctl.error(
          err instanceof Error ? err : new Error("connection closed before the body ended"),
        );
      };
      req.on("error", cut);
      req.on("close", () => {
        if (!req.complete) cut();
      });
    },
    pull() {
      req.resume();
    },
    cancel() {
      settled = true;
      req.pause();
    },
  }, { highWaterMark: 1 });
}

/** A web Request of a node request, its body streamed. */
function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
  }
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  return new Request(`https://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, {
    method,
    headers,
    body: hasBody ? bodyStream(req) : undefined,
  });
}

/**
 * Writes `response`; when the request body was not read to its end (a refusal before or
 * while reading), the connection closes after the answer instead of carrying on the upload.
 */
async function answer(req: IncomingMessage, res: ServerResponse, response: Response) {
  const out = new Uint8Array(await response.arrayBuffer());
  const headers = Object.fromEntries(response.headers);
  headers["content-length"] = String(out.byteLength);
  const unread = !req.complete;
  if (unread) headers["connection"] = "close";
  res.writeHead(response.status, headers);
  res.end(out, () => {
    // The client may still be sending: give it a moment to read the answer, discarding what
    // arrives meanwhile, then cut the upload off.
    if (!unread || req.complete) return;
    req.removeAllListeners("data");
    req.on("data", () => {});
    req.resume();
    const timer = setTimeout(() => req.socket.destroy(), 1000);
    Deno.unrefTimer(timer as unknown as number);
    req.socket.once("close", () => clearTimeout(timer));
  });
}

/**
 * Listens with `node:https` requiring a client certificate signed by `tls.clientCA`, and
 * serves every request with `fetch`. A failure of the bridge itself answers a generic 500
 * (counted as `internal_error`) and is logged at most once a second.
 *
 * @example
 * ```ts
 * const l = await serveMutualTls(app.fetch, { hostname: "0.0.0.0", port: 8443 }, pem,
 *   { source: "apiserver", log, stats, onListen: (a) => console.log(a.port) });
 * await l.shutdown();
 * ```
 */
export async function serveMutualTls(
  fetch: (req: Request) => Response | Promise<Response>,
  at: { hostname: string; port: number },
  tls: MutualTlsPem,
  deps: {
    source: string;
    log: Logger;
    stats: SourceStats;
    onListen: (addr: { hostname: string; port: number }) => void;
  },
): Promise<Listener> {
  const https = await import("node:https");
  const failed = new RateLimitedLog(deps.log, "webhook mTLS bridge failed", 1000, "error");
  let closed!: () => void;
  let broke!: (err: Error) => void;
  const finished = new Promise<void>((r, j) => (closed = r, broke = j));
  const server = https.createServer({
    cert: tls.cert,
    key: tls.key,
    ca: tls.clientCA,
    requestCert: true,
    rejectUnauthorized: true,
  }, async (req, res) => {
    try {
      await answer(req, res, await fetch(toRequest(req)));
    } catch (err) {
      deps.stats.reject("internal_error");
      failed.add(1, { source: deps.source, error: err });
      if (res.headersSent) return void req.socket.destroy();
      res.writeHead(500, { "content-type": "application/json", connection: "close" });
      res.end(JSON.stringify({ error: "internal error" }));
    }
  });
  server.on("close", () => {
    failed.flush();
    closed();
  });
  // A port in use is an "error" event: it fails the source, not the process.
  server.on("error", (err) => broke(err));
  server.listen(at.port, at.hostname, () => {
    const a = server.address();
    deps.onListen({
      hostname: at.hostname,
      port: typeof a === "object" && a ? a.port : at.port,
    });
  });
  return {
    shutdown: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
      }),
    finished,
  };
}
