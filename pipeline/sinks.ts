/**
 * Creating a sink from its config: one factory per backend, all behind {@linkcode Sink}. Each
 * backend's module is imported when a sink of its type is first created, so a daemon loads
 * only the backends its config uses (no NATS client, HTTP client or signing code for a
 * stdout sink): that is most of its start-up.
 *
 * @module
 */
import type { NatsSecurity } from "./core/nats_connect.ts";
import type { KeyObject } from "node:crypto";
import type { SinkConfig } from "./config/schema.ts";
import type { Envelope } from "./core/envelope.ts";
import { jsonSize } from "./core/encode.ts";
import type { Sink, SinkContext } from "../backends/sink.ts";
import type { WebhookTarget } from "../backends/kubeconfig.ts";
import { legacyLine } from "../backends/legacy.ts";

export type { Sink, SinkContext } from "../backends/sink.ts";

/**
 * Opens the sink `cfg` describes.
 *
 * @example
 * ```ts
 * const sink = await createSink(resolved.config, ctx, resolved.target, resolved.nats);
 * ```
 */
export async function createSink(
  cfg: SinkConfig,
  ctx: SinkContext,
  target?: WebhookTarget,
  nats?: NatsSecurity,
  signingKey?: KeyObject,
): Promise<Sink> {
  switch (cfg.type) {
    // Literal specifiers, so `deno bundle` and `deno compile` include each backend.
    case "stdout":
      return (await import("../backends/stdout.ts")).createStdoutSink(cfg, ctx);
    case "log":
      return await (await import("../backends/log.ts")).createLogSink(cfg, ctx, {}, signingKey);
    case "webhook":
      return await (await import("../backends/webhook.ts")).createWebhookSink(cfg, ctx, target);
    case "nats":
      return await (await import("../backends/nats.ts")).createNatsSink(cfg, ctx, {
        security: nats,
      });
  }
}

const encoder = new TextEncoder();

/**
 * The byte size of what `cfg`'s sink writes for one event, line end included: what the
 * truncate stage measures.
 *
 * @example
 * ```ts
 * const size = sinkEventSize(cfg); size(envelope); // 1187
 * ```
 */
export function sinkEventSize(cfg: SinkConfig): (env: Envelope) => number {
  if ((cfg.type === "log" || cfg.type === "stdout") && cfg.format === "legacy") {
    return (env) => encoder.encode(legacyLine(env.event)).length + 1;
  }
  return jsonSize;
}
