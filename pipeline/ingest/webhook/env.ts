/**
 * What the webhook source's middlewares hand each other through Hono's context.
 *
 * @module
 */
import type { BodyParts } from "../../body_parts.ts";

/**
 * The Hono environment of the webhook request path: `body` is set by `bodyLimit`, `parts` by
 * `decodeEventList`, and each later middleware reads what the earlier one set.
 *
 * @example
 * ```ts
 * const app = new Hono<WebhookEnv>();
 * app.post("/audit", (c) => c.json({ bytes: c.get("body").byteLength }));
 * ```
 */
export interface WebhookEnv {
  Variables: {
    /** The request body, read within the limits. */
    body: Uint8Array;
    /** The body's events, decoded piece by piece as they are handed on. */
    parts: BodyParts;
  };
}
