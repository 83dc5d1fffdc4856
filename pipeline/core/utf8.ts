/**
 * Input bytes that are not valid UTF-8, made valid the way kube-apiserver's Go code would
 * see them: `encoding/json` decodes each byte that does not start a valid sequence
 * (`utf8.DecodeRune` returning `RuneError` of size 1) as U+FFFD. Events keep their original
 * bytes so sinks write them unchanged; doing this where the bytes come in means a sink that
 * writes those bytes and one that serializes the parsed event write the same thing, and
 * every output is valid UTF-8.
 *
 * @module
 */

const decoder = new TextDecoder();
const REPLACEMENT = "\uFFFD";

/**
 * Length of the valid UTF-8 sequence at `i`, or 0 if the byte there does not start one
 * (Unicode table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
 */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  if (c < 0xc2) return 0;
  const n = b.length;
  const cont = (k: number) => i + k < n && (b[i + k] & 0xc0) === 0x80;
  if (c < 0xe0) return cont(1) ? 2 : 0;
  if (c < 0xf0) {
    if (i + 2 >= n) return 0;
    const c1 = b[i + 1];
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    return c1 >= lo && c1 <= hi && cont(2) ? 3 : 0;
  }
  if (c < 0xf5) {
    if (i + 3 >= n) return 0;
    const c1 = b[i + 1];
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return c1 >= lo && c1 <= hi && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/**
 * `bytes` itself when it is valid UTF-8; else a copy with every byte that does not start a
 * valid sequence replaced by U+FFFD (`EF BF BD`), byte by byte as Go decodes: `E2 82 41`
 * (a cut-off sequence, then `A`) becomes two U+FFFD and `A`.
 *
 * @example
 * ```ts
 * toWellFormedUtf8(new Uint8Array([0x61, 0xff])); // bytes of "a\uFFFD"
 * ```
 */
export function toWellFormedUtf8(bytes: Uint8Array): Uint8Array {
  let invalid = 0;
  for (let i = 0; i < bytes.length;) {
    const len = sequenceLength(bytes, i);
    if (len === 0) {
      invalid++;
      i++;
    } else i += len;
  }
  if (invalid === 0) return bytes;
  const out = new Uint8Array(bytes.length + 2 * invalid);
  let o = 0;
  for (let i = 0; i < bytes.length;) {
    const len = sequenceLength(bytes, i);
    if (len === 0) {
      out[o++] = 0xef;
      out[o++] = 0xbf;
      out[o++] = 0xbd;
      i++;
    } else {
      for (const end = i + len; i < end;) out[o++] = bytes[i++];
    }
  }
  return out;
}

/**
 * Decodes `bytes` as UTF-8, returning the text and bytes it is the encoding of: `bytes`
 * itself when valid, else {@linkcode toWellFormedUtf8}'s copy. Costs nothing extra on text
 * without U+FFFD, which invalid input always decodes to; only then are the bytes checked.
 *
 * @example
 * ```ts
 * const { text, bytes } = decodeUtf8(line); // keep `bytes` as the event's original bytes
 * ```
 */
export function decodeUtf8(bytes: Uint8Array): { text: string; bytes: Uint8Array } {
  const text = decoder.decode(bytes);
  if (!text.includes(REPLACEMENT)) return { text, bytes };
  const valid = toWellFormedUtf8(bytes);
  return valid === bytes ? { text, bytes } : { text: decoder.decode(valid), bytes: valid };
}
