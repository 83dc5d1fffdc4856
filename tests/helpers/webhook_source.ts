/**
 * An in-process webhook source on an ephemeral port for the tests of its request handling:
 * started, handed to the test with what it has received, stopped whatever happens.
 *
 * @module
 */
import { webhookSource, type WebhookSourceConfig } from "../../pipeline/ingest/webhook.ts";
import { createLogger } from "../../pipeline/core/log.ts";
import { SourceStats } from "../../pipeline/core/stats.ts";
import type { Chunk } from "../../pipeline/core/envelope.ts";

/**
 * The config the tests start from: 127.0.0.1, any port, `/audit`, 1 MiB bodies.
 *
 * @example
 * ```ts
 * const cfg: WebhookSourceConfig = { ...WEBHOOK_SOURCE_BASE, maxBodyBytes: 1000 };
 * ```
 */
export const WEBHOOK_SOURCE_BASE: WebhookSourceConfig = {
  type: "webhook",
  name: "api",
  listen: "127.0.0.1:0",
  path: "/audit",
  maxBodyBytes: 1 << 20,
  maxInFlight: 64,
};

/** A running source, as {@linkcode withWebhookSource} hands it to the test. */
export interface RunningSource {
  readonly port: number;
  /** `http://127.0.0.1:PORT/audit` (the config's path) */
  readonly url: string;
  readonly stats: SourceStats;
  /** The chunks the source has emitted so far. */
  readonly chunks: Chunk[];
  /** The source's log records so far. */
  readonly logs: Record<string, unknown>[];
}

/**
 * Runs `fn` against a webhook source of {@linkcode WEBHOOK_SOURCE_BASE} with `cfg` over it.
 * Chunks are released (delivered) unless `opts.onChunk` says otherwise.
 *
 * @example
 * ```ts
 * await withWebhookSource({}, { token: "s3cret" }, async ({ url, chunks }) => {
 *   await fetch(url, { method: "POST", body: "{}" });
 * });
 * ```
 */
export async function withWebhookSource(
  cfg: Partial<WebhookSourceConfig>,
  opts: {
    token?: string;
    tls?: { cert: string; key: string; clientCA?: string };
    onChunk?: (c: Chunk) => Promise<void> | void;
  },
  fn: (s: RunningSource) => Promise<void>,
): Promise<void> {
  const stats = new SourceStats("api");
  const logs: Record<string, unknown>[] = [];
  const log = createLogger("debug", (line) => logs.push(JSON.parse(line)));
  const config = { ...WEBHOOK_SOURCE_BASE, ...cfg };
  const src = webhookSource(config, {
    name: "api",
    log,
    stats,
    token: opts.token,
    tls: opts.tls,
  });
  const chunks: Chunk[] = [];
  const ended = src.run(async (chunk) => {
    chunks.push(chunk);
    await (opts.onChunk ?? ((c: Chunk) => c.ack.release()))(chunk);
  });
  await src.listening;
  try {
    const port = src.addr!.port;
    await fn({ port, url: `http://127.0.0.1:${port}${config.path}`, stats, chunks, logs });
  } finally {
    await src.stop();
    await ended;
  }
}
