/**
 * Bearer-token authentication of the webhook source. kube-apiserver's webhook client sends
 * `Authorization: Bearer <token>` with whatever string its kubeconfig holds, so any token
 * that can travel in a header is accepted, not only RFC 6750's `b64token` charset.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createMiddleware } from "hono/factory";
import type { SourceStats } from "../../core/stats.ts";
import { refuse } from "./refuse.ts";

/**
 * Why `token` cannot be sent in an `Authorization` header, or undefined when it can: HTTP
 * trims whitespace around a header value and forbids control characters in it, and a token
 * with a space inside is not one word after `Bearer`. Used by `--check` and at load.
 *
 * @example
 * ```ts
 * bearerTokenProblem("p@ss:w0rd!"); // undefined
 * bearerTokenProblem("s3cret\n");    // "token contains a line feed (U+000A) at character 7: ..."
 * ```
 */
export function bearerTokenProblem(token: string): string | undefined {
  const m = /[\s\p{Cc}]/u.exec(token);
  if (!m) return undefined;
  const code = m[0].codePointAt(0)!;
  const name = code === 0x0a
    ? "a line feed"
    : code === 0x0d
    ? "a carriage return"
    : code === 0x09
    ? "a tab"
    : code === 0x20
    ? "a space"
    : /\p{Cc}/u.test(m[0])
    ? "a control character"
    : "whitespace";
  const u = `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
  return `token contains ${name} (${u}) at character ${
    m.index + 1
  }: it cannot be sent in an Authorization header`;
}

/**
 * Calls `report` with the problem of `token`, if it has one: the config loader's hook, so
 * `--check` refuses a token kube-apiserver could never send.
 *
 * @example
 * ```ts
 * checkToken(token, (why) => problem(["sources", 0, "auth", "bearerTokenFile"], why));
 * ```
 */
export function checkToken(token: string, report: (problem: string) => void): void {
  const why = bearerTokenProblem(token);
  if (why !== undefined) report(why);
}

/** SHA-256 of `bytes`: equal-length values to compare in constant time. */
function digest(bytes: Uint8Array): Uint8Array {
  return createHash("sha256").update(bytes).digest();
}

/**
 * A header value as the bytes that came over the wire: header values are byte strings, one
 * character per byte, so a UTF-8 token arrives as its UTF-8 bytes.
 */
function headerBytes(value: string): Uint8Array {
  const out = new Uint8Array(value.length);
  for (let i = 0; i < value.length; i++) out[i] = value.charCodeAt(i) & 0xff;
  return out;
}

/**
 * Answers 401 with `WWW-Authenticate: Bearer` (counted as `unauthorized`) unless the request
 * carries `Authorization: Bearer <token>`. The presented and expected tokens are compared as
 * SHA-256 digests with `timingSafeEqual`, so neither the content nor the length of the token
 * leaks through the time the answer takes.
 *
 * @example
 * ```ts
 * app.post("/audit", bearerAuth("p@ss:w0rd!", stats));
 * ```
 */
export function bearerAuth(token: string, stats: SourceStats) {
  const expected = digest(new TextEncoder().encode(token));
  return createMiddleware(async function bearerAuth(c, next) {
    const header = c.req.header("authorization");
    const m = header === undefined ? null : /^bearer +(.+)$/is.exec(header);
    if (!m || !timingSafeEqual(digest(headerBytes(m[1])), expected)) {
      c.header("WWW-Authenticate", 'Bearer realm="auditpipe"');
      return refuse(
        c,
        stats,
        401,
        "unauthorized",
        m ? "invalid bearer token" : "missing bearer token",
      );
    }
    await next();
  });
}
