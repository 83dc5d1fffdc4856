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

/**
 * Whether `line` holds only spaces, tabs, carriage returns and line feeds: what JSON-lines
 * readers skip.
 *
 * @example
 * ```ts
 * isBlank(new TextEncoder().encode(" \r\n")); // true
 * ```
 */
export function isBlank(line: Uint8Array): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) return false;
  }
  return true;
}

/**
 * Something bytes can be written to that may take fewer than it was given, as `Deno.stdout`
 * and `Deno.FsFile`.
 *
 * @example
 * ```ts
 * const collect: ByteWriter = { write: (p) => Promise.resolve(p.length) };
 * ```
 */
export interface ByteWriter {
  /** Writes some of `p` and resolves with how many bytes it took. */
  write(p: Uint8Array): Promise<number>;
}

/**
 * Writes all of `p`, looping on short writes; calls `wrote` with each count, so a caller can
 * tell how much went out before a failure. A write that takes nothing is an error.
 *
 * @example
 * ```ts
 * await writeAll(Deno.stdout, new TextEncoder().encode("done\n"));
 * ```
 */
export async function writeAll(
  out: ByteWriter,
  p: Uint8Array,
  wrote: (n: number) => void = () => {},
): Promise<void> {
  for (let off = 0; off < p.length;) {
    const n = await out.write(p.subarray(off));
    if (!(n > 0)) throw new Error(`short write: ${off} of ${p.length} bytes`);
    off += n;
    wrote(n);
  }
}
