/**
 * The webhook source: the HTTP endpoint kube-apiserver's audit webhook backend posts
 * `EventList`s to. It answers only when the sinks' modes say the events are safe (200), or
 * 503 when a `blocking-strict` sink failed, so kube-apiserver retries.
 *
 * @module
 */
import { Hono } from "hono";
import type { SourceConfig } from "../config/schema.ts";
import type { Chunk } from "../core/envelope.ts";
import type { Logger } from "../core/log.ts";
import type { SourceStats } from "../core/stats.ts";
import { annotateChunk } from "../stages/annotate.ts";
import type { Dispatch, Source } from "./source.ts";
import { bearerAuth } from "./webhook/auth.ts";
import { bodyLimit } from "./webhook/body_limit.ts";
import { jsonOnly } from "./webhook/content_type.ts";
import { DeadLetters } from "./webhook/dead_letters.ts";
import { decodeEventList } from "./webhook/decode.ts";
import { deliver } from "./webhook/deliver.ts";
import type { WebhookEnv } from "./webhook/env.ts";
import { internalError } from "./webhook/errors.ts";
import { inFlightLimit } from "./webhook/in_flight.ts";
import { serveMutualTls } from "./webhook/mtls.ts";
import { postOnly } from "./webhook/post_only.ts";
import { shuttingDown } from "./webhook/shutting_down.ts";
import { requestTiming } from "./webhook/timing.ts";
import { parseListen } from "../core/listen.ts";

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

/**
 * Creates the webhook source: one chain of named middlewares per request (see
 * `webhook/`), served by Deno.serve (plain or TLS) or `node:https` (mutual TLS).
 *
 * `requestTiming` → `postOnly` (405) → `shuttingDown` (503) → `inFlightLimit` (429) →
 * `bearerAuth` (401) → `jsonOnly` (415) → `bodyLimit` (413, 400, 415) → `decodeEventList`
 * (400) → `deliver` (200, or 503 when a `blocking-strict` sink failed).
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
  const source = deps.name;
  let stopping = false;
  let dispatch: Dispatch | null = null;
  let server: { shutdown(): Promise<void> } | null = null;
  let resolveListening!: () => void;
  const listening = new Promise<void>((r) => resolveListening = r);
  const deadLetters = new DeadLetters(cfg.deadLetterFile, source, log);
  const annotate = (chunk: Chunk): Chunk =>
    cfg.annotations ? annotateChunk(chunk, cfg.annotations) : chunk;

  const onError = internalError({ source, log, stats });
  const delivery = deliver({
    source,
    log,
    stats,
    dispatch: () => dispatch!,
    annotate,
    deadLetters,
  });
  const app = new Hono<WebhookEnv>();
  app.onError(onError);
  app.use(requestTiming(stats));
  app.all(
    cfg.path,
    postOnly(),
    shuttingDown(() => stopping),
    inFlightLimit(cfg.maxInFlight, stats),
  );
  if (deps.token !== undefined) app.post(cfg.path, bearerAuth(deps.token, stats));
  app.post(
    cfg.path,
    jsonOnly(stats),
    bodyLimit(cfg.maxBodyBytes, { source, log, stats }),
    decodeEventList(stats),
    delivery,
  );
  app.notFound((c) => c.json({ error: `not found; POST to ${cfg.path}` }, 404));

  const webhook: WebhookSource = {
    name: source,
    listening,
    async run(d) {
      dispatch = d;
      const { hostname, port } = parseListen(cfg.listen);
      const onListen = (addr: { hostname: string; port: number }) => {
        webhook.addr = addr;
        stats.ready = true;
        log.info("webhook source listening", {
          source,
          address: `${addr.hostname}:${addr.port}`,
          port: addr.port,
          path: cfg.path,
          tls: deps.tls ? (deps.tls.clientCA ? "mtls" : "tls") : "none",
        });
        resolveListening();
      };
      if (deps.tls?.clientCA) {
        const l = await serveMutualTls(
          app.fetch,
          { hostname, port },
          { cert: deps.tls.cert, key: deps.tls.key, clientCA: deps.tls.clientCA },
          { source, log, stats, onListen },
        );
        server = l;
        return await l.finished;
      }
      const s = Deno.serve({
        hostname,
        port,
        ...(deps.tls ? { cert: deps.tls.cert, key: deps.tls.key } : {}),
        onListen,
      }, app.fetch);
      server = s;
      return await s.finished;
    },
    async stop() {
      stopping = true;
      stats.ready = false;
      await server?.shutdown();
      delivery.flush();
      onError.flush();
      await deadLetters.flushed();
    },
  };
  return webhook;
}
