/**
 * The webhook sink: each batch is one `POST` of an `audit.k8s.io/v1` EventList to the server
 * of a kubeconfig, as kube-apiserver's webhook backend sends it (spec sec. 11), retried with
 * its backoff schedule. Batching, throttling and concurrency (`maxInFlight`) are stages in
 * front of it; `write` may run concurrently and keeps no per-call state outside the call.
 *
 * @module
 */
import { formatDuration } from "../pipeline/core/duration.ts";
import { itemBytes } from "../pipeline/core/encode.ts";
import { concatBytes } from "../pipeline/core/bytes.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import { AUDIT_API_VERSION } from "../pipeline/core/event.ts";
import { RateLimitedLog } from "../pipeline/core/log.ts";
import { type Sink, type SinkContext, SinkError } from "./sink.ts";
import { loadKubeconfig, readTokenFile, type WebhookTarget } from "./kubeconfig.ts";
import { RetryError, withRetry } from "../pipeline/core/retry.ts";
import { errorText } from "../pipeline/core/errors.ts";
import { createNodeFetch, type FetchLike } from "./node_fetch.ts";

/**
 * The webhook sink's settings (a whole webhook sink config fits); durations in milliseconds.
 *
 * @example
 * ```ts
 * const cfg: WebhookSinkConfig = { kubeconfig: "siem.kubeconfig", initialBackoff: 10_000,
 *   timeout: 30_000, compress: "none", retry: { maxAttempts: 5 }, maxInFlight: 1 };
 * ```
 */
export interface WebhookSinkConfig {
  /** The kubeconfig naming the server (`--audit-webhook-config-file`). */
  readonly kubeconfig: string;
  /** `--audit-webhook-initial-backoff`. */
  readonly initialBackoff: number;
  /** One request's deadline. */
  readonly timeout: number;
  /** Request body encoding. */
  readonly compress: "none" | "gzip";
  /** Attempts per batch, and the longest wait between two. */
  readonly retry: { readonly maxAttempts: number; readonly maxBackoff?: number };
  /** Requests at once. */
  readonly maxInFlight: number;
}

/** Test seams of {@linkcode createWebhookSink}. */
export interface WebhookSinkOptions {
  /** Uniform [0, 1) source for the backoff jitter; default `Math.random`. */
  random?: () => number;
}

/**
 * A response that is not success (200-206), with what the server said.
 *
 * @example
 * ```ts
 * if (err instanceof WebhookHttpError && err.status === 429) wait(err.retryAfterSeconds);
 * ```
 */
export class WebhookHttpError extends Error {
  override name = "WebhookHttpError";
  constructor(
    message: string,
    /** The HTTP status. */
    readonly status: number,
    /** `Retry-After` in seconds when a 429/5xx gave a whole number of them. */
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(message);
  }
}

const LIST_HEAD = `{"kind":"EventList","apiVersion":"${AUDIT_API_VERSION}","metadata":{},"items":[`;
const LIST_TAIL = "]}\n";
const LIST_HEAD_BYTES = new TextEncoder().encode(LIST_HEAD);
const LIST_TAIL_BYTES = new TextEncoder().encode(LIST_TAIL);
/** How much of an error response's body goes into the error message. */
const SNIPPET_CHARS = 256;
/** How much of a success response's body is read before the rest is cancelled. */
const DRAIN_BYTES = 64 * 1024;
/** client-go's cached token file source re-reads the file this often. */
const TOKEN_REFRESH_MS = 60_000;

/**
 * The request body of one batch: the EventList JSON and a newline, built from each event's
 * item encoding so events are serialized once and in batch order.
 *
 * @example
 * ```ts
 * new TextDecoder().decode(eventListBody(batch));
 * // '{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[...]}\n'
 * ```
 */
export function eventListBody(items: readonly Envelope[]): Uint8Array<ArrayBuffer> {
  // Items are cut from each event's top-level bytes: an unchanged event is never serialized.
  const parts = items.map(itemBytes);
  let total = LIST_HEAD_BYTES.length + LIST_TAIL_BYTES.length + Math.max(0, parts.length - 1);
  for (const p of parts) total += p.length;
  const body = new Uint8Array(total);
  body.set(LIST_HEAD_BYTES, 0);
  let off = LIST_HEAD_BYTES.length;
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) body[off++] = 0x2c;
    body.set(parts[i], off);
    off += parts[i].length;
  }
  body.set(LIST_TAIL_BYTES, off);
  return body;
}

async function gzip(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([data]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Reads up to `limit` bytes of a body and cancels the rest, so the connection is freed. */
async function readSome(res: Response, limit: number): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array();
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < limit) {
      const { value, done } = await reader.read();
      if (done) return concatBytes(chunks, n);
      chunks.push(value);
      n += value.length;
    }
    await reader.cancel();
    return concatBytes(chunks, n);
  } finally {
    reader.releaseLock();
  }
}

/** client-go's `checkWait`: 429 and 5xx may carry a whole number of seconds to wait. */
function retryAfterSeconds(res: Response): number | undefined {
  if (res.status !== 429 && res.status < 500) return undefined;
  const h = res.headers.get("Retry-After")?.trim();
  if (h === undefined || !/^\d+$/.test(h)) return undefined;
  return Number(h);
}

/** The URL a batch is posted to: the target's, with `timeout=<timeout>` as the only query. */
function requestUrl(target: WebhookTarget, timeoutMs: number): string {
  const url = new URL(target.url);
  url.search = timeoutMs > 0 ? `timeout=${formatDuration(timeoutMs)}` : "";
  return url.href;
}

/**
 * Creates a webhook sink. Reads `cfg.kubeconfig` unless `target` is given; fails (with a
 * {@linkcode KubeconfigError} or a TLS setup error) when it cannot be used.
 *
 * `write` posts one batch, retrying every failure (transport error, timeout, non-2xx) on the
 * backoff schedule; each retry counts in `ctx.stats.retries`. It rejects after the last
 * attempt with an error naming attempts, event count and the last error; the caller counts
 * the drop. `ctx.signal` ends waiting and in-flight requests.
 *
 * @example
 * ```ts
 * const sink = await createWebhookSink(cfg, ctx);
 * await sink.write(batch.items);
 * await sink.close();
 * ```
 */
export async function createWebhookSink(
  cfg: WebhookSinkConfig,
  ctx: SinkContext,
  target?: WebhookTarget,
  opts: WebhookSinkOptions = {},
): Promise<Sink> {
  const t = target ?? await loadKubeconfig(cfg.kubeconfig);
  const log = ctx.log.with({ sink: ctx.name });
  for (const w of t.warnings) log.warn(`webhook kubeconfig: ${w}`, { kubeconfig: cfg.kubeconfig });

  let client: Deno.HttpClient | undefined;
  let send: FetchLike = (u, init) => fetch(u, { ...init, client });
  let closeTransport = () => client?.close();
  const onlyCa = t.onlyCaCerts === true && t.caCerts !== undefined && t.url.protocol === "https:";
  if (t.insecureSkipTLSVerify || t.tlsServerName !== undefined || onlyCa) {
    // Deno's client can neither skip verification, set the server name nor trust only the
    // given CAs; node:https can.
    const node = createNodeFetch({
      ca: t.caCerts,
      cert: t.cert,
      key: t.key,
      servername: t.tlsServerName,
      rejectUnauthorized: !t.insecureSkipTLSVerify,
    }, cfg.maxInFlight);
    send = node.fetch;
    closeTransport = node.close;
  } else if (t.caCerts !== undefined || t.cert !== undefined) {
    try {
      // Deno adds caCerts to its default roots; it has no way to trust only the given CA.
      client = Deno.createHttpClient({ caCerts: t.caCerts, cert: t.cert, key: t.key });
    } catch (e) {
      // Bad PEM or a key that does not match the certificate shows up here, at startup.
      throw new Error(
        `webhook ${ctx.name}: TLS settings from ${cfg.kubeconfig} are unusable: ${errorText(e)}`,
        { cause: e },
      );
    }
  }

  const url = requestUrl(t, cfg.timeout);
  const failures = new RateLimitedLog(log, "webhook attempt failed", 1000, "warn");

  let auth = t.headers.Authorization;
  let tokenReadAt = ctx.clock.now();
  let tokenRefresh: Promise<void> | undefined;
  /** The current Authorization, re-reading a token file when the cached one is old. */
  const authorization = async (): Promise<string | undefined> => {
    if (t.tokenFile === undefined || ctx.clock.now() - tokenReadAt < TOKEN_REFRESH_MS) {
      return auth;
    }
    tokenRefresh ??= (async () => {
      try {
        auth = `Bearer ${await readTokenFile(t.tokenFile!)}`;
      } catch (e) {
        // As client-go: keep the last good token and try again later.
        log.warn("webhook token file unreadable, using the previous token", { error: e });
      } finally {
        tokenReadAt = ctx.clock.now();
        tokenRefresh = undefined;
      }
    })();
    await tokenRefresh;
    return auth;
  };

  /** One HTTP exchange; resolves on 200-206, else throws with what went wrong. */
  const post = async (body: Uint8Array<ArrayBuffer>): Promise<void> => {
    const headers = new Headers({
      "Content-Type": "application/json",
      "Accept": "application/json, */*",
    });
    if (cfg.compress === "gzip") headers.set("Content-Encoding", "gzip");
    const a = await authorization();
    if (a !== undefined) headers.set("Authorization", a);
    const timeout = cfg.timeout > 0 ? AbortSignal.timeout(cfg.timeout) : undefined;
    const signal = timeout ? AbortSignal.any([ctx.signal, timeout]) : ctx.signal;
    let res: Response;
    try {
      res = await send(url, { method: "POST", headers, body, signal });
    } catch (e) {
      if (timeout?.aborted && !ctx.signal.aborted) {
        // No cause: the abort error would only repeat "timeout" in the cause chain.
        throw new Error(`POST ${url}: no response within ${formatDuration(cfg.timeout)}`);
      }
      // fetch says only "fetch failed"; the reason (refused, bad certificate...) is the cause.
      throw new Error(`POST ${url}: ${errorText(e)}`, { cause: e });
    }
    let got: Uint8Array;
    try {
      got = await readSome(res, res.ok ? DRAIN_BYTES : SNIPPET_CHARS * 4);
    } catch (e) {
      throw new Error(`POST ${url}: HTTP ${res.status}, reading the body failed: ${errorText(e)}`, {
        cause: e,
      });
    }
    if (res.status >= 200 && res.status <= 206) return;
    let snippet = new TextDecoder().decode(got).replace(/\s+/g, " ").trim();
    if (snippet.length > SNIPPET_CHARS) snippet = snippet.slice(0, SNIPPET_CHARS) + "...";
    throw new WebhookHttpError(
      `POST ${url}: HTTP ${res.status}${res.statusText ? " " + res.statusText : ""}` +
        (snippet ? `: ${snippet}` : ""),
      res.status,
      retryAfterSeconds(res),
    );
  };

  return {
    async write(items: readonly Envelope[]): Promise<void> {
      // kube-apiserver never sends an empty batch.
      if (items.length === 0) return;
      let body = eventListBody(items);
      // Compressed once per batch; every attempt sends the same bytes.
      if (cfg.compress === "gzip") body = await gzip(body);
      const maxAttempts = cfg.retry.maxAttempts;
      try {
        await withRetry(() => post(body), {
          maxAttempts,
          initialBackoff: cfg.initialBackoff,
          maxBackoff: cfg.retry.maxBackoff,
          random: opts.random,
          clock: ctx.clock,
          signal: ctx.signal,
          retryAfter: (e) =>
            e instanceof WebhookHttpError && e.retryAfterSeconds !== undefined
              ? e.retryAfterSeconds * 1000
              : undefined,
          onRetry: (attempt, err, delayMs) => {
            ctx.stats.retries++;
            failures.add(1, {
              events: items.length,
              attempt,
              maxAttempts: maxAttempts || "unlimited",
              retryInMs: delayMs,
              error: errorText(err),
            });
          },
        });
      } catch (e) {
        const attempts = e instanceof RetryError ? e.attempts : 1;
        const last = e instanceof RetryError ? e.cause : e;
        if (!(e instanceof RetryError && e.aborted)) {
          failures.add(1, { events: items.length, attempt: attempts, error: errorText(last) });
        }
        const what = e instanceof RetryError && e.aborted ? "aborted" : "failed";
        throw new SinkError(
          `webhook ${ctx.name}: ${items.length} event${items.length === 1 ? "" : "s"} not ` +
            `delivered, ${what} after ${attempts} attempt${attempts === 1 ? "" : "s"}: ` +
            errorText(last),
          what === "aborted" ? "shutdown" : "retries_exhausted",
          { cause: last },
        );
      }
    },
    close(): Promise<void> {
      failures.flush();
      closeTransport();
      return Promise.resolve();
    },
  };
}
