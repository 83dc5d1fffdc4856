/**
 * A stopping source takes no new requests.
 *
 * @module
 */
import { createMiddleware } from "hono/factory";

/**
 * Answers 503 once `stopping()` is true, so kube-apiserver retries against the next daemon
 * while the requests already in flight finish.
 *
 * @example
 * ```ts
 * let stopping = false;
 * app.post("/audit", shuttingDown(() => stopping));
 * ```
 */
export function shuttingDown(stopping: () => boolean) {
  return createMiddleware(async function shuttingDown(c, next) {
    if (stopping()) return c.json({ error: "shutting down" }, 503);
    await next();
  });
}
