/**
 * Serializing events the way kube-apiserver's JSON encoder does: key order as received
 * (Go struct order for events that came from Go), `kind`/`apiVersion` first on a top-level
 * event, HTML-sensitive characters escaped (`<` `>` `&` U+2028 U+2029), one `\n` per
 * document. Byte sizes for truncation are measured on exactly these bytes.
 *
 * @module
 */
import { AUDIT_API_VERSION, type Event } from "./event.ts";
import type { Envelope } from "./envelope.ts";

const HTML_UNSAFE = /[<>&\u2028\u2029]/g;
const HTML_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

/**
 * Escapes what Go's `encoding/json` escapes and `JSON.stringify` does not.
 *
 * @example
 * ```ts
 * goEscape('{"a":"<b>"}'); // '{"a":"\\u003cb\\u003e"}'
 * ```
 */
export function goEscape(json: string): string {
  return json.replace(HTML_UNSAFE, (c) => HTML_ESCAPES[c]);
}

const TOP_PREFIX = `{"kind":"Event","apiVersion":"${AUDIT_API_VERSION}"`;

/**
 * An event as a top-level `audit.k8s.io/v1` JSON document, without the line end.
 *
 * @example
 * ```ts
 * encodeEvent({ level: "None", auditID: "a", stage: "Panic", requestURI: "", verb: "",
 *   user: {}, requestReceivedTimestamp: null, stageTimestamp: null });
 * // '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"None",...}'
 * ```
 */
export function encodeEvent(event: Event): string {
  let body: string;
  if (event.kind === undefined && event.apiVersion === undefined) {
    // An EventList item: no copy of the object needed to leave the type out.
    body = JSON.stringify(event);
  } else {
    const { kind: _k, apiVersion: _v, ...rest } = event;
    body = JSON.stringify(rest);
  }
  return goEscape(body.length > 2 ? `${TOP_PREFIX},${body.slice(1)}` : `${TOP_PREFIX}}`);
}

/**
 * An event as an `EventList` item: no `kind` or `apiVersion`, as Go writes list items.
 *
 * @example
 * ```ts
 * encodeItem(event); // '{"level":"Metadata","auditID":...}'
 * ```
 */
export function encodeItem(event: Event): string {
  if (event.kind === undefined && event.apiVersion === undefined) {
    return goEscape(JSON.stringify(event));
  }
  const { kind: _k, apiVersion: _v, ...rest } = event;
  return goEscape(JSON.stringify(rest));
}

const encoder = new TextEncoder();
const RAW_PREFIX = encoder.encode(TOP_PREFIX);

/**
 * The top-level document for an `EventList` item's bytes (`{"level":...}`): the type
 * prefix, then the item's members. The item must be an object with at least one member and
 * without `kind` or `apiVersion` of its own.
 *
 * @example
 * ```ts
 * topLevelFromItem(new TextEncoder().encode('{"level":"None"}'));
 * // bytes of '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"None"}'
 * ```
 */
export function topLevelFromItem(item: Uint8Array): Uint8Array {
  const out = new Uint8Array(RAW_PREFIX.length + item.length);
  out.set(RAW_PREFIX, 0);
  out[RAW_PREFIX.length] = 0x2c; // ","
  out.set(item.subarray(1), RAW_PREFIX.length + 1);
  return out;
}

/**
 * An envelope's event as `EventList` item bytes (no `kind`/`apiVersion`): cut from its
 * top-level bytes, so an unchanged event is never serialized again.
 *
 * @example
 * ```ts
 * itemBytes(envelope); // bytes of '{"level":"Metadata",...}'
 * ```
 */
export function itemBytes(envelope: Envelope): Uint8Array {
  if (envelope.item !== undefined) return envelope.item;
  const top = jsonBytes(envelope);
  if (top[RAW_PREFIX.length] !== 0x2c) return encoder.encode(encodeItem(envelope.event));
  // `{"kind":"Event","apiVersion":"audit.k8s.io/v1",` + members → `{` + members
  const members = top.subarray(RAW_PREFIX.length + 1);
  const out = new Uint8Array(members.length + 1);
  out[0] = 0x7b;
  out.set(members, 1);
  return out;
}

/**
 * Whether a line's bytes can be written as they are for a JSON sink: they start as a
 * top-level v1 Event that kube-apiserver wrote (`{"kind":"Event","apiVersion":...`).
 *
 * @example
 * ```ts
 * isTopLevelLine(new TextEncoder().encode('{"kind":"Event","apiVersion":"audit.k8s.io/v1"}'));
 * // true
 * ```
 */
export function isTopLevelLine(line: Uint8Array): boolean {
  if (line.length < RAW_PREFIX.length) return false;
  for (let i = 0; i < RAW_PREFIX.length; i++) if (line[i] !== RAW_PREFIX[i]) return false;
  return true;
}

/**
 * The top-level JSON bytes of an envelope's event, without the line end: the original bytes
 * when it still has them, else serialized once and cached on the envelope.
 *
 * @example
 * ```ts
 * const bytes = jsonBytes(envelope);
 * file.write(bytes);
 * ```
 */
export function jsonBytes(envelope: Envelope): Uint8Array {
  if (envelope.raw !== undefined) return envelope.raw;
  return envelope.raw = envelope.item !== undefined
    ? topLevelFromItem(envelope.item)
    : encoder.encode(encodeEvent(envelope.event));
}

/**
 * Writes an envelope's top-level JSON document (no line end) into `out` at `offset`, without
 * an intermediate copy when the event came as `EventList` item bytes; returns the new
 * offset. `out` must have room for {@linkcode jsonSize} - 1 bytes.
 *
 * @example
 * ```ts
 * const out = new Uint8Array(jsonSize(env));
 * const end = writeJson(env, out, 0); out[end] = 0x0a;
 * ```
 */
export function writeJson(envelope: Envelope, out: Uint8Array, offset: number): number {
  if (envelope.raw === undefined && envelope.item !== undefined) {
    out.set(RAW_PREFIX, offset);
    out[offset + RAW_PREFIX.length] = 0x2c;
    out.set(envelope.item.subarray(1), offset + RAW_PREFIX.length + 1);
    return offset + RAW_PREFIX.length + envelope.item.length;
  }
  const bytes = jsonBytes(envelope);
  out.set(bytes, offset);
  return offset + bytes.length;
}

/**
 * Size of an event as kube-apiserver's truncate backend measures it: the bytes of its
 * top-level JSON document plus the trailing newline.
 *
 * @example
 * ```ts
 * jsonSize(envelope); // e.g. 1024
 * ```
 */
export function jsonSize(envelope: Envelope): number {
  if (envelope.raw === undefined && envelope.item !== undefined) {
    return RAW_PREFIX.length + envelope.item.length + 1;
  }
  return jsonBytes(envelope).length + 1;
}
