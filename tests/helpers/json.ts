/**
 * Small JSON helpers shared by the decoding tests.
 *
 * @module
 */

/**
 * Whether `JSON.parse` accepts `text`: the reference the fast decoding paths are held to.
 *
 * @example
 * ```ts
 * parses('{"a":1}'); // true
 * ```
 */
export function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
