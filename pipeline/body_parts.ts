/**
 * Decoding a request body piece by piece, so that a source can hand each piece on before
 * parsing the next. A 400-event `EventList` parses into several megabytes of objects; parsed
 * all at once and held until written, they outlive the young generation's collections and
 * are copied and promoted, which cost the webhook path more in garbage collection than the
 * parsing itself. Pieces of {@linkcode PART_SIZE} events die young.
 *
 * kube-apiserver's compact `EventList`s are split on item starts (`compactItemRanges`) and
 * each item is parsed on its own, its request and response bodies only validated and left to
 * parse on first read (`decode_fast.ts`); any other shape is parsed whole up front and handed out in
 * pieces all the same.
 *
 * @module
 */
import {
  attachItemBytes,
  type Decoded,
  decodeDocument,
  DecodeError,
  decodeWholeBody,
  envelopesOf,
  type Rejected,
} from "./core/decode.ts";
import { compactItemRanges, type ItemRange, itemRanges } from "./core/scan.ts";
import { decodeUtf8 } from "./core/utf8.ts";
import { BodyFinders, decodeLazyObject, type LazySource } from "./core/decode_fast.ts";

/**
 * Events per piece: small enough that a piece's objects die young (see above).
 *
 * @example
 * ```ts
 * new BodyParts(bytes, PART_SIZE); // the default
 * ```
 */
export const PART_SIZE = 64;

const encoder = new TextEncoder();
let scratch = new Uint8Array(64 * 1024);

/** UTF-8 length of `text[from, to)`. */
function utf8Length(text: string, from: number, to: number): number {
  if (scratch.length < 3 * (to - from)) scratch = new Uint8Array(3 * (to - from));
  return encoder.encodeInto(text.slice(from, to), scratch).written;
}

/** Character ranges of `text` as byte ranges of its UTF-8 encoding (ranges in order). */
function byteRanges(text: string, ranges: readonly ItemRange[]): ItemRange[] {
  let char = 0;
  let byte = 0;
  return ranges.map((r) => {
    byte += utf8Length(text, char, r.start);
    const start = byte;
    byte += utf8Length(text, r.start, r.end);
    char = r.end;
    return { start, end: byte, multiline: r.multiline };
  });
}

/**
 * A body's events, piece by piece. The constructor checks what can be checked of the whole
 * (JSON, an event container, the `EventList` header) and throws {@linkcode DecodeError} when
 * that fails; {@linkcode BodyParts.next} may still throw for a compact list whose rest is not
 * JSON, after earlier pieces were handed out.
 *
 * @example
 * ```ts
 * const parts = new BodyParts(bytes);
 * for (let part; (part = parts.next()) !== null;) await dispatch(part.envelopes);
 * ```
 */
export class BodyParts {
  readonly #bytes: Uint8Array;
  readonly #text: string;
  /** Compact list: the candidate pieces (character ranges), and their byte ranges. */
  #pieces: ItemRange[] = [];
  #bytesOf: ItemRange[] = [];
  #piece = 0;
  /** Decoded up front (any other body, or the rest of a list whose split failed). */
  #slices: Decoded[] = [];
  #viewsOfBody = false;
  /** For the fast path of items with bodies (`decode_fast.ts`). */
  #finders: BodyFinders | undefined;

  constructor(input: Uint8Array, readonly partSize: number = PART_SIZE) {
    // Invalid UTF-8 made valid as Go decodes it, so kept item bytes match the parsed events.
    const { text, bytes } = decodeUtf8(input);
    this.#bytes = bytes;
    this.#text = text;
    const found = compactItemRanges(this.#text);
    const header = found && parseHeader(found.head);
    if (found && header) {
      // Checks the header as the whole body would be checked (kind, apiVersion).
      decodeDocument(header);
      this.#pieces = found.items;
      this.#bytesOf = this.#text.length === bytes.length
        ? found.items
        : byteRanges(this.#text, found.items);
      this.#finders = new BodyFinders(this.#text);
    } else {
      this.#slice(decodeWholeBody(this.#text, bytes));
      this.#viewsOfBody = true;
    }
  }

  /**
   * Whether every event handed out holds copies, none a view into the body: then the body's
   * memory can be released once the last piece is out.
   */
  get copied(): boolean {
    return !this.#viewsOfBody;
  }

  /** The next piece: up to `partSize` items' envelopes and rejections; null when done. */
  next(): Decoded | null {
    const ready = this.#slices.shift();
    if (ready) return ready;
    const pieces = this.#pieces;
    if (this.#piece >= pieces.length) return null;
    // Each piece parsed so far was one item: a piece's index is its item's.
    const offset = this.#piece;
    const items: unknown[] = [];
    const ranges: ItemRange[] = [];
    // Bodies left unparsed read from the body until the piece has a buffer of its own.
    const src: LazySource = { bytes: this.#bytes, base: 0 };
    while (items.length < this.partSize && this.#piece < pieces.length) {
      const { start, end } = pieces[this.#piece];
      const b = this.#bytesOf[this.#piece];
      // An ASCII item (as many bytes as characters): its offsets differ by a constant.
      let item: unknown = b.end - b.start === end - start &&
        decodeLazyObject(this.#text, this.#bytes, start, end, src, this.#finders, b.start - start);
      if (!item) {
        try {
          item = JSON.parse(this.#text.slice(start, end));
        } catch {
          // Cut at a `},{"level":"` inside an event: the rest is decoded the slow way.
          this.#decodeRest();
          break;
        }
      }
      items.push(item);
      ranges.push(this.#bytesOf[this.#piece++]);
    }
    if (items.length === 0) return this.next();
    const rejected: Rejected[] = [];
    const envelopes = envelopesOf(items, rejected, offset);
    // The piece's own buffer, as a tail read has: what a sink buffers of it pins 64 events'
    // bytes at most, never the whole body.
    const from = ranges[0].start;
    const piece = this.#bytes.slice(from, ranges[ranges.length - 1].end);
    src.bytes = piece;
    src.base = from;
    const local = ranges.map((r) => ({
      start: r.start - from,
      end: r.end - from,
      multiline: false,
    }));
    attachItemBytes(envelopes, items, local, piece);
    return { envelopes, rejected };
  }

  /**
   * The items from the current piece to the end of the list, parsed as one JSON array, their
   * ranges found by the structural scan. Queued as slices after the items parsed so far.
   */
  #decodeRest(): void {
    const pieces = this.#pieces;
    const from = this.#piece;
    const text = this.#text.slice(pieces[from].start, pieces[pieces.length - 1].end);
    this.#piece = pieces.length;
    let list: unknown[];
    try {
      list = JSON.parse(`[${text}]`);
    } catch (err) {
      throw new DecodeError(`body is not JSON: from item ${from}: ${(err as Error).message}`);
    }
    const rejected: Rejected[] = [];
    const envelopes = envelopesOf(list, rejected, from);
    const start = this.#bytesOf[from].start;
    const end = this.#bytesOf[pieces.length - 1].end;
    const sub = new Uint8Array(end - start + 2);
    sub[0] = 0x5b;
    sub.set(this.#bytes.subarray(start, end), 1);
    sub[sub.length - 1] = 0x5d;
    const ranges = itemRanges(sub);
    if (ranges !== null && ranges.length === list.length) {
      const shifted = ranges.map((r) => ({
        ...r,
        start: r.start - 1 + start,
        end: r.end - 1 + start,
      }));
      attachItemBytes(envelopes, list, shifted, this.#bytes);
      this.#viewsOfBody = true;
    }
    this.#slice({ envelopes, rejected });
  }

  /** Queues `decoded` in slices of `partSize` envelopes, rejections with the first. */
  #slice(decoded: Decoded): void {
    const { envelopes, rejected } = decoded;
    for (let i = 0; i < envelopes.length || i === 0; i += this.partSize) {
      this.#slices.push({
        envelopes: envelopes.slice(i, i + this.partSize),
        rejected: i === 0 ? rejected : [],
      });
    }
  }
}

function parseHeader(head: string): Record<string, unknown> | null {
  try {
    const h = JSON.parse(head + '"items":[]}');
    return typeof h === "object" && h !== null && !Array.isArray(h) && h.kind === "EventList"
      ? h
      : null;
  } catch {
    return null;
  }
}

/**
 * Decodes a JSON body given as bytes all at once: {@linkcode BodyParts} with no limit on a
 * piece's size, for tests and tools that want every envelope together (the webhook source
 * hands bodies on piece by piece instead). Items of an `EventList` or array keep their original
 * bytes (`item`) when they are single-line objects without a type of their own, as
 * kube-apiserver sends them, so sinks write them without serializing again.
 *
 * @example
 * ```ts
 * const { envelopes, rejected } = decodeBodyBytes(new TextEncoder().encode(body));
 * ```
 */
export function decodeBodyBytes(bytes: Uint8Array): Decoded {
  const parts = new BodyParts(bytes, Infinity);
  const envelopes = [];
  const rejected = [];
  for (let part; (part = parts.next()) !== null;) {
    envelopes.push(...part.envelopes);
    rejected.push(...part.rejected);
  }
  return { envelopes, rejected };
}
