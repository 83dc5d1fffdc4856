/**
 * The request-duration histogram of the webhook source, by answered status.
 *
 * @module
 */
import { createMiddleware } from "hono/factory";
import type { SourceStats } from "../../core/stats.ts";

/**
 * Observes every request's time from arrival to answer under its status code
 * (`auditpipe_webhook_request_duration_seconds`); first in the chain, so every answer counts.
 *
 * @example
 * ```ts
 * app.use(requestTiming(stats));
 * ```
 */
export function requestTiming(stats: SourceStats) {
  return createMiddleware(async function requestTiming(c, next) {
    const t0 = performance.now();
    await next();
    stats.answered(c.res.status, (performance.now() - t0) / 1000);
  });
}
