/**
 * Writing an event the policy lowered from its original bytes: the level's value replaced
 * and the dropped bodies (`requestObject`, `responseObject`) cut out, everything else copied
 * as it came. For an event kube-apiserver wrote (compact, Go field order, Go escaping) the
 * result is the bytes `encodeEvent` would write for the lowered event, without parsing the
 * body the event keeps or serializing anything. Bytes in any other shape (whitespace between
 * members, a key written with escapes, a repeated level or body, the level not first) give
 * `null`, and the caller serializes the event as before.
 *
 * Only the event's top-level members around the bodies are walked (a value is skipped by
 * matching brackets outside strings: the bytes were checked as JSON when they were
 * decoded), and the bodies are found from the members' count in the decoded event.
 *
 * @module
 */
import type { Level } from "./event.ts";
import { unparsedBody } from "./decode_fast.ts";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;

/** 1 for the bytes that end a run of plain string bytes: `"` and `\\`. */
const STRING_STOP = new Uint8Array(256);
STRING_STOP[QUOTE] = 1;
STRING_STOP[BACKSLASH] = 1;

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
    // One load and one compare per plain byte; past the end the table gives undefined.
    let c = s[i];
    while (STRING_STOP[c] === 0) c = s[++i];
    if (c === QUOTE) return i + 1;
    if (c !== BACKSLASH) return -1; // past the end
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

function hasBackslash(s: Uint8Array, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (s[k] === BACKSLASH) return true;
  return false;
}

/** Key names as bytes, for the few names events have. */
const KEY_BYTES = new Map<string, Uint8Array>();

function keyBytes(key: string): Uint8Array {
  let b = KEY_BYTES.get(key);
  if (b === undefined) {
    b = encoder.encode(`,${JSON.stringify(key)}:`);
    if (KEY_BYTES.size < 256) KEY_BYTES.set(key, b);
  }
  return b;
}

/**
 * Whether `src[from, to)` is exactly the `count` bodies of `event` from key index `first`,
 * as the decoder found them: each still unparsed and a view into `src`'s buffer, right after
 * its key. False when that cannot be told this way (the caller then walks the bytes).
 */
function bodiesFill(
  src: Uint8Array,
  event: object,
  keys: readonly string[],
  first: number,
  count: number,
  from: number,
  to: number,
): boolean {
  let at = from;
  for (let k = first; k < first + count; k++) {
    const key = keys[k];
    if (key !== "requestObject" && key !== "responseObject") return false;
    const body = unparsedBody(event, key);
    if (body === undefined || body.buffer !== src.buffer) return false;
    const start = body.byteOffset - src.byteOffset;
    if (start !== at + keyBytes(key).length || !holds(src, at, keyBytes(key))) return false;
    at = start + body.length;
  }
  return at === to;
}

/** Whether `s` holds `pattern` at `at`. */
function holds(s: Uint8Array, at: number, pattern: Uint8Array): boolean {
  if (at < 0 || at + pattern.length > s.length) return false;
  for (let k = 0; k < pattern.length; k++) if (s[at + k] !== pattern[k]) return false;
  return true;
}

/** The last index at or before `from` where `s` holds `pattern`, or -1. */
function lastIndexOf(s: Uint8Array, pattern: Uint8Array, from: number): number {
  const first = pattern[0];
  for (let i = Math.min(from, s.length - pattern.length); i >= 0; i--) {
    if (s[i] === first && holds(s, i, pattern)) return i;
  }
  return -1;
}

/**
 * Walks `count` top-level members from `p` (at a `,` before a member, compact, unescaped
 * keys); returns the index after the last one, or -1.
 */
function walk(s: Uint8Array, p: number, count: number): number {
  for (let m = 0; m < count; m++) {
    if (s[p] !== COMMA || s[p + 1] !== QUOTE) return -1;
    const keyEnd = stringEnd(s, p + 1);
    if (keyEnd < 0 || s[keyEnd] !== COLON || hasBackslash(s, p + 2, keyEnd - 1)) return -1;
    p = valueEnd(s, keyEnd + 1);
    if (p < 0) return -1;
  }
  return p;
}

/**
 * The bytes of a lowered event cut from the bytes it came as: `src` is a top-level log line
 * (`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":...}`, `top`) or an `EventList`
 * item (`{"level":...}`), without a line end, and `event` the event decoded from them (its
 * own keys, in order, say which members the bytes hold). Returns `null` when the bytes are
 * not in the shape kube-apiserver writes (see the module doc) or do not show what
 * `lowering` says (the level they carry, a body to drop); the caller then serializes the
 * event.
 *
 * The members before the bodies and after them are walked and counted against the event's
 * keys, so a repeated or escaped key there is seen; the bodies are walked too (matching
 * brackets, not parsed), so that what is cut or kept is exactly the bodies.
 *
 * @example
 * ```ts
 * const line = new TextEncoder().encode('{"level":"Request","auditID":"a","requestObject":{}}');
 * const event = JSON.parse(new TextDecoder().decode(line));
 * spliceLowered(line, false, event, { from: "Request", to: "Metadata", dropRequest: true, dropResponse: false });
 * // bytes of '{"level":"Metadata","auditID":"a"}'
 * ```
 */
export function spliceLowered(
  src: Uint8Array,
  top: boolean,
  event: object,
  lowering: Lowering,
): Uint8Array | null {
  const n = src.length;
  if (src[n - 1] !== CLOSE_OBJ) return null;
  let p = 0;
  if (top) {
    if (!holds(src, 0, TOP)) return null;
    p = TOP.length;
  } else {
    if (src[0] !== OPEN_OBJ) return null;
    p = 1;
  }
  // The level: the first member, as Go writes it.
  const was = LEVEL_BYTES[lowering.from];
  if (was === undefined || LEVEL_BYTES[lowering.to] === undefined) return null;
  if (!holds(src, p, LEVEL_KEY)) return null;
  const levelStart = p + LEVEL_KEY.length;
  if (!holds(src, levelStart, was)) return null;
  const levelEnd = levelStart + was.length;
  if (src[levelEnd] !== QUOTE) return null;
  const keys = Object.keys(event);
  const k0 = top ? 2 : 0;
  if (keys[k0] !== "level" || (top && (keys[0] !== "kind" || keys[1] !== "apiVersion"))) {
    return null;
  }
  const iReq = keys.indexOf("requestObject");
  const iResp = keys.indexOf("responseObject");
  const bodies = (iReq >= 0 ? 1 : 0) + (iResp >= 0 ? 1 : 0);
  if ((lowering.dropRequest && iReq < 0) || (lowering.dropResponse && iResp < 0)) return null;
  if (bodies === 2 && Math.abs(iReq - iResp) !== 1) return null;
  const bFirst = bodies === 0 ? keys.length : Math.min(...[iReq, iResp].filter((i) => i >= 0));
  // The members before the bodies (or all of them), exactly as many as the event has keys.
  const bStart = walk(src, levelEnd + 1, bFirst - k0 - 1);
  if (bStart < 0) return null;
  let cuts: number[];
  if (bodies === 0) {
    if (bStart !== n - 1) return null;
    cuts = [];
  } else {
    const firstKey = keys[bFirst];
    if (!holds(src, bStart, keyBytes(firstKey))) return null;
    // The members after the bodies, found from the end: the last place their first key is
    // at, which must walk to the closing brace in exactly as many members (a match nested
    // in a later member ends at an inner closing bracket instead).
    const after = keys.length - (bFirst + bodies);
    let c = n - 1;
    if (after > 0) {
      c = lastIndexOf(src, keyBytes(keys[bFirst + bodies]), n - 1);
      if (c <= bStart || walk(src, c, after) !== n - 1) return null;
    }
    const dropFirst = firstKey === "requestObject" ? lowering.dropRequest : lowering.dropResponse;
    const dropSecond = bodies === 2 &&
      (firstKey === "requestObject" ? lowering.dropResponse : lowering.dropRequest);
    if (dropFirst && (bodies === 1 || dropSecond)) {
      // What is cut must be just the bodies: a key repeated between or after them (which
      // JSON.parse let win) would leave with them. Bodies still unparsed say where they are.
      if (!bodiesFill(src, event, keys, bFirst, bodies, bStart, c)) {
        if (walk(src, bStart, bodies) !== c) return null;
      }
      cuts = [bStart, c];
    } else if (!dropFirst && !dropSecond) {
      // Nothing cut: the bodies are kept as they are, and must be just the bodies.
      if (walk(src, bStart, bodies) !== c) return null;
      cuts = [];
    } else {
      // One of two cut: where the first body ends and the second begins.
      const e = walk(src, bStart, 1);
      if (e < 0 || !holds(src, e, keyBytes(keys[bFirst + 1]))) return null;
      if (dropFirst && walk(src, e, 1) !== c) return null;
      cuts = dropFirst ? [bStart, e] : [e, c];
    }
  }
  const to = LEVEL_BYTES[lowering.to];
  const cut = cuts.length ? cuts[1] - cuts[0] : 0;
  const out = new Uint8Array(n - cut - (levelEnd - levelStart) + to.length);
  out.set(src.subarray(0, levelStart), 0);
  out.set(to, levelStart);
  let o = levelStart + to.length;
  if (cuts.length) {
    out.set(src.subarray(levelEnd, cuts[0]), o);
    o += cuts[0] - levelEnd;
    out.set(src.subarray(cuts[1]), o);
  } else out.set(src.subarray(levelEnd), o);
  return out;
}
