/**
 * Only POSTs carry audit events.
 *
 * @module
 */
import { createMiddleware } from "hono/factory";

/**
 * Answers 405 with `Allow: POST` to any other method.
 *
 * @example
 * ```ts
 * app.all("/audit", postOnly());
 * ```
 */
export function postOnly() {
  return createMiddleware(async function postOnly(c, next) {
    if (c.req.method !== "POST") {
      c.header("Allow", "POST");
      return c.json({ error: `method ${c.req.method} not allowed; POST an EventList` }, 405);
    }
    await next();
  });
}
