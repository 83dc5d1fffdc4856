/**
 * Reading the request body within `maxBodyBytes`, enforced while it arrives.
 *
 * @module
 */
import { createMiddleware } from "hono/factory";
import type { Logger } from "../../core/log.ts";
import { RateLimitedLog } from "../../core/log.ts";
import type { SourceStats } from "../../core/stats.ts";
import { BodyError, type BodyRejectReason, readBody } from "../body.ts";
import type { WebhookEnv } from "./env.ts";
import { refuse } from "./refuse.ts";

/**
 * Reads the body into `c.var.body`: 413 above `max` bytes as sent (a Content-Length above it
 * is refused before reading) or after gzip, 400 for a body cut off before its end, longer
 * than its Content-Length or not valid gzip, 415 for another Content-Encoding. Each refusal
 * is counted under its reason and logged at most once a second per reason, with the internal
 * error that the client's answer leaves out.
 *
 * @example
 * ```ts
 * app.post("/audit", bodyLimit(12 << 20, { source: "apiserver", log, stats }));
 * ```
 */
export function bodyLimit(
  max: number,
  deps: { source: string; log: Logger; stats: SourceStats },
) {
  const logs = new Map<BodyRejectReason, RateLimitedLog>();
  const logged = (reason: BodyRejectReason) => {
    let l = logs.get(reason);
    if (!l) logs.set(reason, l = new RateLimitedLog(deps.log, "webhook request body refused"));
    return l;
  };
  return createMiddleware<WebhookEnv>(async function bodyLimit(c, next) {
    let body: Uint8Array;
    try {
      body = await readBody(c.req.raw, max);
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      logged(err.reason).add(1, {
        source: deps.source,
        reason: err.reason,
        status: err.status,
        error: err.message,
        ...(err.cause === undefined ? {} : { cause: String(err.cause) }),
      });
      return refuse(c, deps.stats, err.status, err.reason, err.message);
    }
    c.set("body", body);
    await next();
  });
}
