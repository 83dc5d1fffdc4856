/**
 * Writing all of some bytes to stdout or stderr at once: a terminal or pipe may take fewer
 * than given in one write.
 *
 * @module
 */

/**
 * Writes all of `bytes` to `out` synchronously (so that what is drawn on a terminal is never
 * interleaved with another write).
 *
 * @example
 * ```ts
 * writeAllSync(Deno.stderr, new TextEncoder().encode("\r\x1b[K"));
 * ```
 */
export function writeAllSync(out: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += out.writeSync(bytes.subarray(off));
}
