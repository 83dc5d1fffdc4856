/**
 * What the webhook source answers when its own code fails.
 *
 * @module
 */
import type { ErrorHandler } from "hono";
import type { Logger } from "../../core/log.ts";
import { RateLimitedLog } from "../../core/log.ts";
import type { SourceStats } from "../../core/stats.ts";

/**
 * Hono's `onError` for the webhook source: a generic 500 (counted as `internal_error`) that
 * never carries the error's text, which goes to the log instead, at most once a second.
 *
 * @example
 * ```ts
 * app.onError(internalError({ source: "apiserver", log, stats }));
 * ```
 */
export function internalError(
  deps: { source: string; log: Logger; stats: SourceStats },
): ErrorHandler & { flush(): void } {
  const failed = new RateLimitedLog(deps.log, "webhook handler failed", 1000, "error");
  const handler: ErrorHandler = (err, c) => {
    deps.stats.reject("internal_error");
    failed.add(1, { source: deps.source, error: err });
    return c.json({ error: "internal error" }, 500);
  };
  return Object.assign(handler, { flush: () => failed.flush() });
}
