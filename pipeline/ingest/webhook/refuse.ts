/**
 * The one way the webhook request path says no: a JSON answer with a message fit for the
 * client, counted under `auditpipe_source_rejected_total{reason}`.
 *
 * @module
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { SourceStats } from "../../core/stats.ts";

/**
 * Counts a refusal under `reason` and answers `status` with `{"error": message}`.
 *
 * @example
 * ```ts
 * if (tooMany) return refuse(c, stats, 429, "overload", "too many concurrent requests");
 * ```
 */
export function refuse(
  c: Context,
  stats: SourceStats,
  status: ContentfulStatusCode,
  reason: string,
  message: string,
): Response {
  stats.reject(reason);
  return c.json({ error: message }, status);
}
