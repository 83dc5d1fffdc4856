/**
 * Turning bytes into envelopes: an `EventList` body, a single `Event`, a JSON array of
 * events, or JSON lines. Every item that is not an event is reported with its index (or
 * line) and reason; the valid ones always go on.
 *
 * @module
 */
import { asEvent, AUDIT_API_VERSION, eventProblem } from "./event.ts";
import type { Envelope } from "./envelope.ts";
import { isTopLevelLine } from "./encode.ts";
import { type ItemRange, itemRanges } from "./scan.ts";
import { decodeUtf8 } from "./utf8.ts";
import { decodeLazyObject } from "./decode_fast.ts";

/** What `isTopLevelLine` looks for, as text. */
const TOP_TEXT = `{"kind":"Event","apiVersion":"${AUDIT_API_VERSION}"`;

/** An input item that is not a valid event. */
export interface Rejected {
  /** Zero-based index in the list, or one-based line number for JSON lines. */
  readonly index: number;
  readonly reason: string;
  /** The item as received, for a dead-letter file. */
  readonly item: unknown;
}

/** The result of decoding one document or one line. */
export interface Decoded {
  readonly envelopes: Envelope[];
  readonly rejected: Rejected[];
}

/**
 * The body is not an event container at all (not JSON, not a list, not an event).
 *
 * @example
 * ```ts
 * try { decodeBody("{"); } catch (e) { if (e instanceof DecodeError) respond(400, e.message); }
 * ```
 */
export class DecodeError extends Error {
  override name = "DecodeError";
}

/**
 * Envelopes of the valid `items`; the others go to `rejected` with their index (+ `offset`).
 *
 * @example
 * ```ts
 * const rejected: Rejected[] = [];
 * const envelopes = envelopesOf(items, rejected);
 * ```
 */
export function envelopesOf(items: unknown[], rejected: Rejected[], offset = 0): Envelope[] {
  const out: Envelope[] = [];
  for (let i = 0; i < items.length; i++) {
    const problem = eventProblem(items[i]);
    if (problem === null) out.push({ event: asEvent(items[i]) });
    else rejected.push({ index: i + offset, reason: problem, item: items[i] });
  }
  return out;
}

/**
 * Decodes a parsed JSON document: an `EventList`, a JSON array of events or one `Event`.
 * Throws {@linkcode DecodeError} when it is none of these.
 *
 * @example
 * ```ts
 * const { envelopes, rejected } = decodeDocument(JSON.parse(body));
 * ```
 */
export function decodeDocument(doc: unknown): Decoded {
  const rejected: Rejected[] = [];
  if (Array.isArray(doc)) return { envelopes: envelopesOf(doc, rejected), rejected };
  if (typeof doc !== "object" || doc === null) {
    throw new DecodeError("body is not an EventList, an Event or a list of events");
  }
  const o = doc as Record<string, unknown>;
  if (o.kind === "EventList") {
    if (o.apiVersion !== undefined && o.apiVersion !== AUDIT_API_VERSION) {
      throw new DecodeError(
        `EventList apiVersion ${JSON.stringify(o.apiVersion)} is not ${AUDIT_API_VERSION}`,
      );
    }
    if (o.items === null || o.items === undefined) return { envelopes: [], rejected };
    if (!Array.isArray(o.items)) throw new DecodeError("EventList items is not a list");
    return { envelopes: envelopesOf(o.items, rejected), rejected };
  }
  if (o.kind !== undefined && o.kind !== "Event") {
    throw new DecodeError(`kind ${JSON.stringify(o.kind)} is not EventList or Event`);
  }
  const problem = eventProblem(doc);
  if (problem !== null) throw new DecodeError(`body is not an event: ${problem}`);
  return { envelopes: [{ event: asEvent(doc) }], rejected };
}

/**
 * Decodes a JSON text body (webhook request, stdin document).
 *
 * @example
 * ```ts
 * decodeBody('{"kind":"EventList","items":[]}'); // { envelopes: [], rejected: [] }
 * ```
 */
export function decodeBody(text: string): Decoded {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DecodeError(`body is not JSON: ${(err as Error).message}`);
  }
  return decodeDocument(doc);
}

/**
 * Decodes a JSON body (webhook request, stdin document) given as its `text` and `bytes`: one
 * `JSON.parse` of the whole, and a structural scan of the bytes for the items' ranges. Items
 * of an `EventList` or array keep their original bytes (`item`) when they are single-line
 * objects without a type of their own, so sinks write them without serializing again.
 * `bytes` must be valid UTF-8 and `text` their decoding (see `decodeUtf8`).
 *
 * @example
 * ```ts
 * const { text, bytes } = decodeUtf8(body);
 * decodeWholeBody(text, bytes);
 * ```
 */
export function decodeWholeBody(text: string, bytes: Uint8Array): Decoded {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DecodeError(`body is not JSON: ${(err as Error).message}`);
  }
  const decoded = decodeDocument(doc);
  if (decoded.envelopes.length === 0) return decoded;
  const items = Array.isArray(doc) ? doc : (doc as { items?: unknown }).items;
  if (!Array.isArray(items)) return decoded;
  const ranges = itemRanges(bytes);
  if (ranges === null || ranges.length !== items.length) return decoded;
  attachItemBytes(decoded.envelopes, items, ranges, bytes);
  return decoded;
}

/**
 * Gives each valid item's envelope the bytes it came as (`ranges[i]` of `bytes` for
 * `items[i]`), when they can be written as they are.
 *
 * @example
 * ```ts
 * attachItemBytes(envelopes, items, itemRanges(bytes)!, bytes);
 * ```
 */
export function attachItemBytes(
  envelopes: readonly Envelope[],
  items: readonly unknown[],
  ranges: readonly ItemRange[],
  bytes: Uint8Array,
): void {
  // Envelopes are the valid items in order; walk both lists together.
  let e = 0;
  for (let i = 0; i < items.length && e < envelopes.length; i++) {
    const env = envelopes[e];
    if (env.event !== items[i]) continue;
    e++;
    const r = ranges[i];
    if (r.multiline || env.event.kind !== undefined || env.event.apiVersion !== undefined) continue;
    env.item = bytes.subarray(r.start, r.end);
  }
}

/**
 * Decodes one line of an audit log (without its line end). A line that is a top-level v1
 * Event keeps its bytes as `raw`, so JSON sinks write it unchanged; bytes that are not valid
 * UTF-8 are replaced by U+FFFD first, as Go decodes them (see `toWellFormedUtf8`). A line holding an
 * `EventList` or array yields all its items. Request and response bodies of a top-level line
 * are parsed only when read (see `decode_fast.ts`). Throws {@linkcode DecodeError} for a line that is
 * not JSON or not an event container; returns rejected items otherwise.
 *
 * @example
 * ```ts
 * const { envelopes } = decodeLine(new TextEncoder().encode(line));
 * ```
 */
export function decodeLine(input: Uint8Array): Decoded {
  const { text, bytes: line } = decodeUtf8(input);
  // As `isTopLevelLine(line)`, on the text: an ASCII prefix of valid UTF-8 is the same in
  // both, but for a byte order mark, which the text has lost.
  const top = line[0] === 0x7b && text.startsWith(TOP_TEXT);
  // ASCII text (offsets of text and bytes agree), as kube-apiserver writes nearly every line.
  if (top && text.length === line.length) {
    const doc = decodeLazyObject(text, line, 0, line.length, { bytes: line, base: 0 });
    if (doc !== null) {
      const problem = eventProblem(doc);
      if (problem !== null) throw new DecodeError(`not an event: ${problem}`);
      return { envelopes: [{ event: asEvent(doc), raw: line }], rejected: [] };
    }
  }
  return decodeParsedLine(text, line, top);
}

/**
 * {@linkcode decodeLine} without its fast path: the whole line through `JSON.parse`. The
 * reference the fast path is tested against.
 *
 * @example
 * ```ts
 * const { envelopes } = decodeLineWhole(new TextEncoder().encode(line));
 * ```
 */
export function decodeLineWhole(input: Uint8Array): Decoded {
  const { text, bytes } = decodeUtf8(input);
  return decodeParsedLine(text, bytes, isTopLevelLine(bytes));
}

/** `top`: the line starts as a top-level v1 event does (`isTopLevelLine`). */
function decodeParsedLine(text: string, line: Uint8Array, top: boolean): Decoded {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DecodeError(`not JSON: ${(err as Error).message}`);
  }
  if (typeof doc === "object" && doc !== null && !Array.isArray(doc) && top) {
    const problem = eventProblem(doc);
    if (problem !== null) throw new DecodeError(`not an event: ${problem}`);
    return { envelopes: [{ event: asEvent(doc), raw: line }], rejected: [] };
  }
  return decodeDocument(doc);
}
