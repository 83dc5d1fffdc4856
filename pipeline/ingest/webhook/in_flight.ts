/**
 * A bound on concurrent requests, checked before a body is read.
 *
 * @module
 */
import { createMiddleware } from "hono/factory";
import type { SourceStats } from "../../core/stats.ts";
import { refuse } from "./refuse.ts";

/**
 * Answers 429 with `Retry-After: 1` (counted as `overload`) while `max` requests are being
 * served; the count covers reading, decoding and waiting for the sinks.
 *
 * @example
 * ```ts
 * app.post("/audit", inFlightLimit(1024, stats));
 * ```
 */
export function inFlightLimit(max: number, stats: SourceStats) {
  let inFlight = 0;
  return createMiddleware(async function inFlightLimit(c, next) {
    if (inFlight >= max) {
      c.header("Retry-After", "1");
      return refuse(c, stats, 429, "overload", `too many concurrent requests (maxInFlight ${max})`);
    }
    inFlight++;
    try {
      await next();
    } finally {
      inFlight--;
    }
  });
}
