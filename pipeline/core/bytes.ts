/**
 * Joining byte arrays: the one helper that reads, bodies and line fragments share.
 *
 * @module
 */

/**
 * The bytes of `parts` back to back in one new array.
 *
 * @example
 * ```ts
 * concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concatBytes(
  parts: readonly Uint8Array[],
  total: number = parts.reduce((n, p) => n + p.length, 0),
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
