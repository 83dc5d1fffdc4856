/**
 * The tail floor's loop, shared by `floor_tail.ts` and `bound.ts`: reads a file in 256 KiB
 * reads (as the tail source does), hands each complete line to `onLine`, and writes the
 * lines of each read back out with one write. Nothing else, so that what a caller does per
 * line is all that differs between them.
 *
 * @module
 */

/** Bytes per read, as the tail source reads. */
export const READ_SIZE = 256 * 1024;

/**
 * Copies the lines of `path` to `output`, calling `onLine` for each (without its `\n`);
 * returns the bytes read. A last line without a line end is neither handed out nor written.
 *
 * @example
 * ```ts
 * const bytes = await copyLines("in.jsonl", output, new Uint8Array(READ_SIZE), (line) => n++);
 * ```
 */
export async function copyLines(
  path: string,
  output: Deno.FsFile,
  buf: Uint8Array,
  onLine: (line: Uint8Array) => void,
): Promise<number> {
  let bytes = 0;
  using input = await Deno.open(path, { read: true });
  let carry = new Uint8Array(0);
  for (let n; (n = await input.read(buf)) !== null;) {
    bytes += n;
    let data = buf.subarray(0, n);
    if (carry.length > 0) {
      const joined = new Uint8Array(carry.length + n);
      joined.set(carry);
      joined.set(data, carry.length);
      data = joined;
    }
    let start = 0;
    for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, start)) {
      onLine(data.subarray(start, nl));
      start = nl + 1;
    }
    const whole = data.subarray(0, start);
    for (let off = 0; off < whole.length;) off += await output.write(whole.subarray(off));
    carry = data.slice(start);
  }
  return bytes;
}
