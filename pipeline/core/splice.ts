/**
 * Writing an event the policy lowered from its original bytes: the level's value replaced
 * and the dropped bodies (`requestObject`, `responseObject`) cut out, everything else copied
 * as it came. For an event kube-apiserver wrote (compact, Go field order, Go escaping) the
 * result is the bytes `encodeEvent` would write for the lowered event, without parsing the
 * body the event keeps or serializing anything. Bytes in any other shape (whitespace between
 * members, a key written with escapes, a repeated level or body, the level not first) give
 * `null`, and the caller serializes the event as before.
 *
 * Only the event's top-level members are walked; a body is skipped by matching brackets
 * outside strings, since the bytes were checked as JSON when they were decoded.
 *
 * @module
 */
import type { Level } from "./event.ts";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;

const encoder = new TextEncoder();
/** `{"kind":"Event","apiVersion":"audit.k8s.io/v1",` as kube-apiserver starts a log line. */
const TOP = encoder.encode('{"kind":"Event","apiVersion":"audit.k8s.io/v1",');
const LEVEL_KEY = encoder.encode('"level":"');
const LEVEL_BYTES: Record<Level, Uint8Array> = {
  None: encoder.encode("None"),
  Metadata: encoder.encode("Metadata"),
  Request: encoder.encode("Request"),
  RequestResponse: encoder.encode("RequestResponse"),
};
const K_LEVEL = encoder.encode("level");
const K_KIND = encoder.encode("kind");
const K_API_VERSION = encoder.encode("apiVersion");
const K_REQUEST = encoder.encode("requestObject");
const K_RESPONSE = encoder.encode("responseObject");

/** What the policy changed in an event: its new level and the bodies it dropped. */
export interface Lowering {
  /** The level the event had (its bytes must say so). */
  readonly from: Level;
  /** The level to write. */
  readonly to: Level;
  readonly dropRequest: boolean;
  readonly dropResponse: boolean;
}

/** Index after the closing quote of the string opening at `i`, or -1. */
function stringEnd(s: Uint8Array, i: number): number {
  for (i++;;) {
    let c = s[i];
    while (c !== QUOTE && c !== BACKSLASH) {
      if (c === undefined) return -1;
      c = s[++i];
    }
    if (c === QUOTE) return i + 1;
    i += 2; // an escape: the byte after the backslash is never the string's end
  }
}

/**
 * Index after the JSON value starting at `i` (already known to be valid JSON), or -1: a
 * string or container by its brackets, a scalar up to the next `,` `}` `]`.
 */
function valueEnd(s: Uint8Array, i: number): number {
  let c = s[i];
  if (c === QUOTE) return stringEnd(s, i);
  if (c !== OPEN_OBJ && c !== OPEN_ARR) {
    while (c !== COMMA && c !== CLOSE_OBJ && c !== CLOSE_ARR) {
      if (c === undefined) return -1;
      c = s[++i];
    }
    return i;
  }
  let depth = 0;
  for (;;) {
    c = s[i];
    if (c === QUOTE) {
      i = stringEnd(s, i);
      if (i < 0) return -1;
      continue;
    }
    if (c === OPEN_OBJ || c === OPEN_ARR) depth++;
    else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
      if (--depth === 0) return i + 1;
    } else if (c === undefined) return -1;
    i++;
  }
}

/** Whether `s[from, to)` is exactly `key`. */
function isKey(s: Uint8Array, from: number, to: number, key: Uint8Array): boolean {
  if (to - from !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (s[from + k] !== key[k]) return false;
  return true;
}

function hasBackslash(s: Uint8Array, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (s[k] === BACKSLASH) return true;
  return false;
}

/**
 * The bytes of a lowered event cut from the bytes it came as: `src` is a top-level log line
 * (`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":...}`, `top`) or an `EventList`
 * item (`{"level":...}`), without a line end. Returns `null` when the bytes are not in the
 * shape kube-apiserver writes (see the module doc) or do not show what `lowering` says
 * (the level they carry, a body to drop); the caller then serializes the event.
 *
 * @example
 * ```ts
 * const line = new TextEncoder().encode('{"level":"Request","auditID":"a","requestObject":{}}');
 * spliceLowered(line, false, { from: "Request", to: "Metadata", dropRequest: true, dropResponse: false });
 * // bytes of '{"level":"Metadata","auditID":"a"}'
 * ```
 */
export function spliceLowered(
  src: Uint8Array,
  top: boolean,
  lowering: Lowering,
): Uint8Array | null {
  const n = src.length;
  let p = 0;
  if (top) {
    if (n < TOP.length) return null;
    for (let k = 0; k < TOP.length; k++) if (src[k] !== TOP[k]) return null;
    p = TOP.length;
  } else {
    if (src[0] !== OPEN_OBJ) return null;
    p = 1;
  }
  // The level: the first member, as Go writes it.
  for (let k = 0; k < LEVEL_KEY.length; k++) if (src[p + k] !== LEVEL_KEY[k]) return null;
  const levelStart = p + LEVEL_KEY.length;
  const was = LEVEL_BYTES[lowering.from];
  for (let k = 0; k < was.length; k++) if (src[levelStart + k] !== was[k]) return null;
  const levelEnd = levelStart + was.length;
  if (src[levelEnd] !== QUOTE) return null;
  // Every other top-level member: a repeated level or type, or a body key, must be seen.
  let reqFrom = -1;
  let reqTo = -1;
  let respFrom = -1;
  let respTo = -1;
  p = levelEnd + 1;
  while (src[p] === COMMA) {
    const keyStart = p + 1;
    if (src[keyStart] !== QUOTE) return null;
    const keyEnd = stringEnd(src, keyStart);
    if (keyEnd < 0 || src[keyEnd] !== COLON) return null;
    const kFrom = keyStart + 1;
    const kTo = keyEnd - 1;
    if (hasBackslash(src, kFrom, kTo)) return null;
    const end = valueEnd(src, keyEnd + 1);
    if (end < 0) return null;
    if (isKey(src, kFrom, kTo, K_REQUEST)) {
      if (reqFrom >= 0) return null;
      reqFrom = p;
      reqTo = end;
    } else if (isKey(src, kFrom, kTo, K_RESPONSE)) {
      if (respFrom >= 0) return null;
      respFrom = p;
      respTo = end;
    } else if (
      isKey(src, kFrom, kTo, K_LEVEL) || isKey(src, kFrom, kTo, K_KIND) ||
      isKey(src, kFrom, kTo, K_API_VERSION)
    ) return null;
    p = end;
  }
  if (p !== n - 1 || src[p] !== CLOSE_OBJ) return null;
  if (lowering.dropRequest && reqFrom < 0) return null;
  if (lowering.dropResponse && respFrom < 0) return null;
  // The pieces to keep, in order: up to the level's value, the new value, then the members
  // between and after the cut bodies.
  const to = LEVEL_BYTES[lowering.to];
  const cuts: number[] = [];
  if (lowering.dropRequest) cuts.push(reqFrom, reqTo);
  if (lowering.dropResponse) cuts.push(respFrom, respTo);
  if (cuts.length === 4 && cuts[2] < cuts[0]) cuts.push(cuts.shift()!, cuts.shift()!);
  let size = levelStart + to.length + (n - levelEnd);
  for (let k = 0; k < cuts.length; k += 2) size -= cuts[k + 1] - cuts[k];
  const out = new Uint8Array(size);
  out.set(src.subarray(0, levelStart), 0);
  out.set(to, levelStart);
  let o = levelStart + to.length;
  let from = levelEnd;
  for (let k = 0; k < cuts.length; k += 2) {
    out.set(src.subarray(from, cuts[k]), o);
    o += cuts[k] - from;
    from = cuts[k + 1];
  }
  out.set(src.subarray(from), o);
  return out;
}
