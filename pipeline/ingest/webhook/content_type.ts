/**
 * Audit events come as JSON.
 *
 * @module
 */
import { createMiddleware } from "hono/factory";
import type { SourceStats } from "../../core/stats.ts";
import { refuse } from "./refuse.ts";

/**
 * Answers 415 (counted as `unsupported_media_type`) unless the Content-Type is
 * `application/json` or a `+json` type.
 *
 * @example
 * ```ts
 * app.post("/audit", jsonOnly(stats));
 * ```
 */
export function jsonOnly(stats: SourceStats) {
  return createMiddleware(async function jsonOnly(c, next) {
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "application/json" && !type.endsWith("+json")) {
      return refuse(
        c,
        stats,
        415,
        "unsupported_media_type",
        `Content-Type must be application/json, got ${JSON.stringify(type)}`,
      );
    }
    await next();
  });
}
