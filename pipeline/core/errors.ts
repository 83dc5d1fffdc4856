/**
 * Turning what was thrown into text and errors: the one place logs, acks and sink errors take
 * their wording from.
 *
 * @module
 */

/**
 * The message of `err`, or its text when it is not an Error.
 *
 * @example
 * ```ts
 * errorMessage(new Error("disk full")); // "disk full"
 * errorMessage("closed");                // "closed"
 * ```
 */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A one-line description of an error, with its `cause` chain (where `fetch` says why).
 *
 * @example
 * ```ts
 * errorText(new Error("fetch failed", { cause: new Error("invalid peer certificate") }));
 * // "fetch failed: invalid peer certificate"
 * ```
 */
export function errorText(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && depth < 5; depth++) {
    const msg = errorMessage(e);
    if (!parts.some((p) => p.includes(msg))) parts.push(msg);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ");
}

/**
 * `reason` as an Error: itself when it is one, else an Error saying `fallback` and, when given,
 * the reason. For what a stream was cancelled or aborted with, which acks fail with.
 *
 * @example
 * ```ts
 * asError(undefined, "batcher cancelled").message; // "batcher cancelled"
 * asError("shutdown", "batcher cancelled").message; // "batcher cancelled: shutdown"
 * ```
 */
export function asError(reason: unknown, fallback: string): Error {
  if (reason instanceof Error) return reason;
  return new Error(reason === undefined ? fallback : `${fallback}: ${String(reason)}`);
}

/**
 * `err` itself when it is an Error, else an Error with its text: what an ack fails with.
 *
 * @example
 * ```ts
 * ack.fail(toError(reason));
 * ```
 */
export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
