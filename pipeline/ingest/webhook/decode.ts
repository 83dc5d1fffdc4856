/**
 * Checking that a body is an event container before any of it is handed on.
 *
 * @module
 */
import { createMiddleware } from "hono/factory";
import { BodyParts } from "../../body_parts.ts";
import { DecodeError } from "../../core/decode.ts";
import type { SourceStats } from "../../core/stats.ts";
import type { WebhookEnv } from "./env.ts";
import { refuse } from "./refuse.ts";

/**
 * Sets `c.var.parts` from `c.var.body`: answers 400 (counted as `invalid_body`) when the body
 * is not JSON, not an `EventList`, a list of events or one event. The events themselves are
 * decoded piece by piece later, as they are handed on (see `body_parts.ts`).
 *
 * @example
 * ```ts
 * app.post("/audit", bodyLimit(max, deps), decodeEventList(stats), deliver(deps));
 * ```
 */
export function decodeEventList(stats: SourceStats) {
  return createMiddleware<WebhookEnv>(async function decodeEventList(c, next) {
    let parts: BodyParts;
    try {
      parts = new BodyParts(c.get("body"));
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      return refuse(c, stats, 400, "invalid_body", err.message);
    }
    c.set("parts", parts);
    await next();
  });
}
