/**
 * A `fetch` over `node:https`, for the two kubeconfig settings Deno's own HTTP client cannot
 * honour: `insecure-skip-tls-verify` (no per-client switch) and `tls-server-name` (no SNI
 * override). Under Deno, `node:https` supports both; everything else uses `fetch`.
 *
 * @module
 */
import https from "node:https";
import { Buffer } from "node:buffer";

/** TLS settings for {@linkcode createNodeFetch}. */
export interface NodeTlsOptions {
  /** PEM CA certificates; when set, only these are trusted. */
  readonly ca?: string[];
  readonly cert?: string;
  readonly key?: string;
  /** The name the server certificate is checked against (and sent as SNI). */
  readonly servername?: string;
  /** `false` accepts any server certificate (`insecure-skip-tls-verify`). */
  readonly rejectUnauthorized: boolean;
}

/** A fetch-like function: POST-style requests with a body, signal-aware. */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Headers; body: Uint8Array<ArrayBuffer>; signal?: AbortSignal },
) => Promise<Response>;

/**
 * A fetch over `node:https` with `tls`, keeping connections alive (up to `maxSockets`).
 * Returns the function and a `close` that ends its connections.
 *
 * @example
 * ```ts
 * const { fetch, close } = createNodeFetch({ rejectUnauthorized: false }, 1);
 * const res = await fetch("https://127.0.0.1:8443/audit", { method: "POST", headers, body });
 * close();
 * ```
 */
export function createNodeFetch(
  tls: NodeTlsOptions,
  maxSockets: number,
): { fetch: FetchLike; close: () => void } {
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets,
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    servername: tls.servername,
    rejectUnauthorized: tls.rejectUnauthorized,
  });
  const fetch: FetchLike = (url, init) =>
    new Promise<Response>((resolve, reject) => {
      if (init.signal?.aborted) return reject(init.signal.reason);
      const headers: Record<string, string> = {};
      init.headers.forEach((v, k) => headers[k] = v);
      headers["content-length"] = String(init.body.length);
      const req = https.request(url, { method: init.method, headers, agent }, (res) => {
        const parts: Uint8Array[] = [];
        res.on("data", (d: Uint8Array) => parts.push(d));
        res.on("error", reject);
        res.on("end", () => {
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(", ") : v);
          }
          const status = res.statusCode ?? 0;
          const body = status === 204 || status === 304 ? null : Buffer.concat(parts);
          resolve(new Response(body, { status, statusText: res.statusMessage, headers: out }));
        });
      });
      const onAbort = () => req.destroy(init.signal!.reason as Error);
      init.signal?.addEventListener("abort", onAbort, { once: true });
      req.on("close", () => init.signal?.removeEventListener("abort", onAbort));
      req.on("error", (e: Error) => reject(new Error(`request failed`, { cause: e })));
      req.end(init.body);
    });
  return { fetch, close: () => agent.destroy() };
}
