/**
 * Finding JSON records in a byte stream, chunk by chunk, holding no more than one record:
 * top-level values one after another (JSON lines, or concatenated pretty-printed documents),
 * and the items of a list (a root JSON array, or the `items` of an `EventList` and the
 * `records` of an Azure diagnostic log) one by one, so a multi-gigabyte list, even on one
 * line, is read item by item.
 *
 * A structural scan only: brackets and strings are followed to find where records end, and
 * each record is parsed on its own later. Two facts of JSON let it recover from damage
 * without holding the rest of the input: a string never holds a raw line break, and in a
 * JSON-lines input (the first value ends on its own line) no value spans lines. A record cut
 * by a line end is reported as broken and reading goes on at the next line; in a multi-line
 * document, at the next line that starts with `{` or `[`.
 *
 * @module
 */
import { concatBytes } from "../../pipeline/core/bytes.ts";

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;

/**
 * Which list items come from: a root JSON array, an `EventList`'s `items`, or an Azure
 * diagnostic log's `records`.
 *
 * @example
 * ```ts
 * const kind: ListKind = "items";
 * ```
 */
export type ListKind = "array" | "items" | "records";

/**
 * A top-level value. `bytes` is `null` when it was larger than the limit (it was skipped
 * without being held); `size` is its length either way.
 *
 * @example
 * ```ts
 * const r: ScannedValue = { type: "value", bytes, size: bytes.length, line: 1, multiline: false };
 * ```
 */
export interface ScannedValue {
  readonly type: "value";
  readonly bytes: Uint8Array | null;
  readonly size: number;
  /** One-based line where the record starts. */
  readonly line: number;
  /** Whether the record holds a line break (pretty-printed). */
  readonly multiline: boolean;
}

/**
 * One item of a list, with the list's kind and the item's zero-based index in it.
 *
 * @example
 * ```ts
 * const r: ScannedItem = {
 *   type: "item", list: "items", index: 0, bytes, size: bytes.length, line: 1, multiline: false,
 * };
 * ```
 */
export interface ScannedItem extends Omit<ScannedValue, "type"> {
  readonly type: "item";
  readonly list: ListKind;
  readonly index: number;
}

/**
 * The start or end of a list whose items follow (or followed) as records. For `items` and
 * `records` lists, `header` is the enclosing object with the list left empty (for example
 * `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[]}`): at the start, the
 * members before the list; at the end, all of them.
 *
 * @example
 * ```ts
 * const s: ScannedList = { type: "listStart", list: "items", header, line: 1, count: 0 };
 * ```
 */
export interface ScannedList {
  readonly type: "listStart" | "listEnd";
  readonly list: ListKind;
  /** `null` for a root array, or when the header was larger than the limit. */
  readonly header: Uint8Array | null;
  /** One-based line where the enclosing value starts. */
  readonly line: number;
  /** Items seen (at the end). */
  readonly count: number;
}

/**
 * Input that is not JSON where a record was expected, or a record cut short; the
 * enclosing list (if any) ends with it.
 *
 * @example
 * ```ts
 * const b: ScannedBroken = { type: "broken", line: 3, reason: "the line ends inside a JSON value" };
 * ```
 */
export interface ScannedBroken {
  readonly type: "broken";
  readonly line: number;
  readonly reason: string;
}

/**
 * What {@linkcode RecordScanner} finds.
 *
 * @example
 * ```ts
 * for (const s of scanner.push(chunk)) if (s.type === "value") handle(s.bytes);
 * ```
 */
export type Scanned = ScannedValue | ScannedItem | ScannedList | ScannedBroken;

/** Holds the bytes of the record being scanned across chunks, up to a limit. */
class Recorder {
  #parts: Uint8Array[] = [];
  #len = 0;
  /** Where the record starts in the current chunk (0 when it began in an earlier one). */
  #from = 0;
  #start = 0;
  #over = false;
  active = false;

  constructor(readonly max: number) {}

  begin(index: number, abs: number): void {
    this.#parts = [];
    this.#len = 0;
    this.#from = index;
    this.#start = abs;
    this.#over = false;
    this.active = true;
  }

  /** At the end of a chunk: keeps a copy of the part of it the record covers. */
  hold(chunk: Uint8Array): void {
    if (!this.active) return;
    const piece = chunk.subarray(this.#from);
    this.#from = 0;
    if (this.#over) return;
    if (this.#len + piece.length > this.max) {
      // Too big to hand out: drop it and keep only the count.
      this.#over = true;
      this.#parts = [];
      this.#len = 0;
      return;
    }
    this.#parts.push(piece.slice());
    this.#len += piece.length;
  }

  /** The bytes from `absFrom` to `absTo` (absolute offsets; the current chunk starts at `base`). */
  slice(chunk: Uint8Array, base: number, absFrom: number, absTo: number): Uint8Array | null {
    if (this.#over || absTo - absFrom > this.max) return null;
    if (absFrom >= base) return chunk.subarray(absFrom - base, absTo - base);
    const held = concatBytes(this.#parts, this.#len);
    const fromHeld = held.subarray(absFrom - this.#start, Math.min(absTo, base) - this.#start);
    if (absTo <= base) return fromHeld;
    return concatBytes([fromHeld, chunk.subarray(0, absTo - base)]);
  }

  /** The record from its start to `absEnd`, and stops recording. */
  take(chunk: Uint8Array, base: number, absEnd: number): Uint8Array | null {
    const out = this.slice(chunk, base, this.#start, absEnd);
    this.reset();
    return out;
  }

  get start(): number {
    return this.#start;
  }

  reset(): void {
    this.#parts = [];
    this.#len = 0;
    this.active = false;
  }
}

const enum Mode {
  /** No value has ended yet. */
  Undecided,
  /** The first value ended on its line: values never span lines. */
  Lines,
  /** The first value spanned lines: pretty-printed documents. */
  Document,
}

const enum Skip {
  None,
  /** To the end of the line. */
  Line,
  /** To the next line that starts with `{` or `[`. */
  Resync,
}

const enum Rec {
  None,
  /** A top-level object (or an object list's header, until its list starts). */
  Value,
  /** A list item that is an object or array. */
  Item,
  /** A list item that is a string. */
  StringItem,
  /** A list item that is a number, `true`, `false`, `null` or garbage. */
  ScalarItem,
  /** What follows an object's list, up to the object's end. */
  Suffix,
}

const ITEMS_KEY = new TextEncoder().encode("items");
const RECORDS_KEY = new TextEncoder().encode("records");
const enc = new TextEncoder();

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** How much of a line that is not JSON its message shows. */
const PREVIEW_BYTES = 40;

/**
 * Options of a {@linkcode RecordScanner}.
 *
 * @example
 * ```ts
 * const opts: RecordScannerOptions = { maxRecordBytes: 64 << 20 };
 * ```
 */
export interface RecordScannerOptions {
  /** Largest record handed out; a larger one is reported with `bytes: null`. */
  readonly maxRecordBytes: number;
}

/**
 * Scans one input's bytes, pushed chunk by chunk, for records (see the module doc). Memory
 * is bounded by the largest record (at most `maxRecordBytes`) and one chunk. Records are
 * views into the pushed chunks where they lie in one, so a caller must not reuse a chunk's
 * buffer after pushing it.
 *
 * @example
 * ```ts
 * const scanner = new RecordScanner({ maxRecordBytes: 64 << 20 });
 * for await (const chunk of stream) for (const s of scanner.push(chunk)) handle(s);
 * for (const s of scanner.end()) handle(s);
 * ```
 */
export class RecordScanner {
  readonly #rec: Recorder;
  /** Absolute offset of the current chunk's first byte. */
  #base = 0;
  #line = 1;
  /** Just past a line end (for Skip.Resync). */
  #atLineStart = true;
  #mode = Mode.Undecided;
  #skip = Skip.None;
  /** Open brackets of the current top-level value. */
  #depth = 0;
  #inString = false;
  #escape = false;
  #stringOpen = 0;
  /** The current top-level value: `{`, `[` or 0 between values. */
  #root = 0;
  #topLine = 1;
  /** Depth at which list items lie (-1 when not in a list). */
  #listDepth = -1;
  #list: ListKind = "array";
  /** The top-level object has had its list (a second one is an ordinary member). */
  #listSeen = false;
  #index = 0;
  /** The last string at depth 1 of a top-level object, when it names a list, and where. */
  #keyList: ListKind | null = null;
  #keyOpen = 0;
  /** The object's members before its list. */
  #prefix: Uint8Array | null = null;
  #what = Rec.None;
  #recLine = 1;
  #multiline = false;
  /** The start of a line that is not JSON, while skipping the rest of it; and its number. */
  #garbage: Uint8Array[] | null = null;
  #garbageLine = 0;

  constructor(opts: RecordScannerOptions) {
    this.#rec = new Recorder(opts.maxRecordBytes);
  }

  /** Scans `chunk` and returns what ended in it, in input order. */
  push(chunk: Uint8Array): Scanned[] {
    const out: Scanned[] = [];
    const n = chunk.length;
    let i = 0;
    if (this.#base === 0 && n >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) {
      i = 3; // a byte-order mark
    }
    while (i < n) {
      if (this.#skip !== Skip.None) {
        i = this.#skipLines(chunk, i, out);
        continue;
      }
      if (this.#inString) {
        i = this.#string(chunk, i, out);
        continue;
      }
      const c = chunk[i];
      if (c === LF) {
        this.#line++;
        if (this.#depth > 0) {
          if (this.#mode === Mode.Undecided) this.#mode = Mode.Document;
          if (this.#mode === Mode.Lines) {
            this.#broken(out, "the line ends inside a JSON value", true);
            i++;
            continue;
          }
          if (this.#what === Rec.ScalarItem) this.#endItem(chunk, i, out);
          this.#multiline = true;
        }
        i++;
        continue;
      }
      if (c === SPACE || c === TAB || c === CR) {
        // A record with a bare CR cannot be written out as a line as it is.
        if (c === CR && this.#depth > 0) this.#multiline = true;
        if (this.#what === Rec.ScalarItem) this.#endItem(chunk, i, out);
        i++;
        continue;
      }
      if (this.#depth === 0) {
        if (c === OPEN_OBJ || c === OPEN_ARR) {
          this.#openTop(c, i, out);
          i++;
        } else {
          // Reported at the line's end, with its start.
          this.#garbage = [];
          this.#garbageLine = this.#line;
          this.#skip = Skip.Line;
        }
        continue;
      }
      if (this.#depth === this.#listDepth) {
        i = this.#atListLevel(c, chunk, i, out);
        continue;
      }
      if (c === QUOTE) {
        this.#inString = true;
        this.#stringOpen = this.#base + i;
      } else if (c === OPEN_OBJ || c === OPEN_ARR) {
        if (
          c === OPEN_ARR && this.#depth === 1 && this.#root === OPEN_OBJ &&
          this.#keyList !== null && !this.#listSeen
        ) {
          this.#openObjectList(chunk, out);
        } else {
          this.#depth++;
        }
      } else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
        this.#depth--;
        if (this.#depth === 0) this.#closeTop(chunk, i, out);
        else if (this.#depth === this.#listDepth) this.#endItem(chunk, i + 1, out);
      }
      i++;
    }
    this.#rec.hold(chunk);
    this.#base += n;
    return out;
  }

  /** Ends the input: reports a record left open. */
  end(): Scanned[] {
    const out: Scanned[] = [];
    if (this.#what === Rec.ScalarItem || this.#depth > 0 || this.#inString) {
      this.#broken(out, "the input ends inside a JSON value", true);
    }
    this.#reportGarbage(out);
    this.#skip = Skip.None;
    return out;
  }

  #skipLines(chunk: Uint8Array, i: number, out: Scanned[]): number {
    if (this.#skip === Skip.Resync && this.#atLineStart) {
      const c = chunk[i];
      if (c === OPEN_OBJ || c === OPEN_ARR) {
        this.#skip = Skip.None;
        return i;
      }
    }
    const nl = chunk.indexOf(LF, i);
    const end = nl < 0 ? chunk.length : nl;
    if (this.#garbage !== null) {
      const have = this.#garbage.reduce((n, p) => n + p.length, 0);
      const take = Math.min(end - i, PREVIEW_BYTES + 1 - have);
      if (take > 0) this.#garbage.push(chunk.slice(i, i + take));
    }
    if (nl < 0) {
      this.#atLineStart = false;
      return chunk.length;
    }
    this.#line++;
    this.#atLineStart = true;
    if (this.#skip === Skip.Line) {
      this.#skip = Skip.None;
      this.#reportGarbage(out);
    }
    return nl + 1;
  }

  #reportGarbage(out: Scanned[]): void {
    if (this.#garbage === null) return;
    let text = new TextDecoder().decode(concatBytes(this.#garbage)).replace(/\r$/, "");
    if (text.length > PREVIEW_BYTES) text = `${text.slice(0, PREVIEW_BYTES)}...`;
    out.push({ type: "broken", line: this.#garbageLine, reason: `not JSON: ${text}` });
    this.#garbage = null;
  }

  /** Inside a string: finds its end, or a line end that breaks it. */
  #string(chunk: Uint8Array, i: number, out: Scanned[]): number {
    const n = chunk.length;
    let j = i;
    if (this.#escape) {
      this.#escape = false;
      if (chunk[j] !== LF) j++;
    }
    while (j < n) {
      const c = chunk[j];
      if (c === QUOTE) {
        this.#inString = false;
        this.#stringClosed(chunk, j, out);
        return j + 1;
      }
      if (c === BACKSLASH) {
        if (j + 1 === n) {
          this.#escape = true;
          return n;
        }
        if (chunk[j + 1] === LF) {
          j++;
          break;
        }
        j += 2;
        continue;
      }
      if (c === LF) break;
      j++;
    }
    if (j >= n) return n;
    // The line end itself is read next, as usual.
    this.#broken(out, "a line ends inside a string", true);
    return j;
  }

  #stringClosed(chunk: Uint8Array, j: number, out: Scanned[]): void {
    if (this.#what === Rec.StringItem && this.#depth === this.#listDepth) {
      this.#endItem(chunk, j + 1, out);
      return;
    }
    if (this.#depth !== 1 || this.#root !== OPEN_OBJ || this.#listSeen) return;
    // A string directly in the top-level object: a key, or a value (then the next key
    // comes before any list opens, so remembering the last string is enough).
    const from = this.#stringOpen + 1;
    const to = this.#base + j;
    this.#keyList = null;
    if (to - from === ITEMS_KEY.length || to - from === RECORDS_KEY.length) {
      const name = this.#rec.slice(chunk, this.#base, from, to);
      if (name !== null && sameBytes(name, ITEMS_KEY)) this.#keyList = "items";
      else if (name !== null && sameBytes(name, RECORDS_KEY)) this.#keyList = "records";
      this.#keyOpen = this.#stringOpen;
    }
  }

  /** A byte where list items begin and end (between them, or in a scalar item). */
  #atListLevel(c: number, chunk: Uint8Array, i: number, out: Scanned[]): number {
    if (this.#what === Rec.ScalarItem) {
      if (c !== COMMA && c !== CLOSE_ARR) return i + 1;
      this.#endItem(chunk, i, out);
    }
    if (c === COMMA) return i + 1;
    if (c === CLOSE_ARR) {
      this.#closeList(i, out);
      return i + 1;
    }
    if (c === CLOSE_OBJ) {
      this.#broken(out, "a list ends with }", false);
      return i + 1;
    }
    this.#rec.begin(i, this.#base + i);
    this.#recLine = this.#line;
    this.#multiline = false;
    if (c === OPEN_OBJ || c === OPEN_ARR) {
      this.#what = Rec.Item;
      this.#depth++;
    } else if (c === QUOTE) {
      this.#what = Rec.StringItem;
      this.#inString = true;
      this.#stringOpen = this.#base + i;
    } else {
      this.#what = Rec.ScalarItem;
    }
    return i + 1;
  }

  #openTop(c: number, i: number, out: Scanned[]): void {
    this.#depth = 1;
    this.#root = c;
    this.#topLine = this.#line;
    this.#multiline = false;
    if (c === OPEN_ARR) {
      this.#startList("array", 1);
      out.push({ type: "listStart", list: "array", header: null, line: this.#line, count: 0 });
      return;
    }
    this.#listSeen = false;
    this.#keyList = null;
    this.#rec.begin(i, this.#base + i);
    this.#what = Rec.Value;
    this.#recLine = this.#line;
  }

  #startList(list: ListKind, depth: number): void {
    this.#list = list;
    this.#listDepth = depth;
    this.#index = 0;
  }

  /** The `[` of a top-level object's `items` or `records`. */
  #openObjectList(chunk: Uint8Array, out: Scanned[]): void {
    const list = this.#keyList!;
    this.#prefix = this.#rec.take(chunk, this.#base, this.#keyOpen);
    this.#what = Rec.None;
    this.#listSeen = true;
    this.#depth = 2;
    this.#startList(list, 2);
    const header = this.#header(null);
    out.push({ type: "listStart", list, header, line: this.#topLine, count: 0 });
  }

  /** The object around a list, with the list empty; `suffix` null at the list's start. */
  #header(suffix: Uint8Array | null): Uint8Array | null {
    if (this.#prefix === null) return null;
    const empty = enc.encode(`"${this.#list}":[]${suffix === null ? "}" : ""}`);
    return concatBytes(suffix === null ? [this.#prefix, empty] : [this.#prefix, empty, suffix]);
  }

  #closeList(i: number, out: Scanned[]): void {
    this.#depth--;
    this.#listDepth = -1;
    if (this.#root === OPEN_ARR) {
      const line = this.#topLine;
      out.push({ type: "listEnd", list: "array", header: null, line, count: this.#index });
      this.#topDone();
      return;
    }
    this.#rec.begin(i + 1, this.#base + i + 1);
    this.#what = Rec.Suffix;
  }

  #closeTop(chunk: Uint8Array, i: number, out: Scanned[]): void {
    const end = this.#base + i + 1;
    if (this.#what === Rec.Value) {
      const size = end - this.#rec.start;
      const bytes = this.#rec.take(chunk, this.#base, end);
      const line = this.#recLine;
      out.push({ type: "value", bytes, size, line, multiline: this.#multiline });
    } else if (this.#what === Rec.Suffix) {
      const suffix = this.#rec.take(chunk, this.#base, end);
      const header = suffix === null ? null : this.#header(suffix);
      const line = this.#topLine;
      out.push({ type: "listEnd", list: this.#list, header, line, count: this.#index });
    }
    this.#topDone();
  }

  #endItem(chunk: Uint8Array, endIndex: number, out: Scanned[]): void {
    const end = this.#base + endIndex;
    const size = end - this.#rec.start;
    const bytes = this.#rec.take(chunk, this.#base, end);
    out.push({
      type: "item",
      bytes,
      size,
      line: this.#recLine,
      multiline: this.#multiline,
      list: this.#list,
      index: this.#index++,
    });
    this.#what = Rec.None;
  }

  #topDone(): void {
    this.#betweenValues();
    if (this.#mode === Mode.Undecided) this.#mode = Mode.Lines;
  }

  /** Forgets the top-level value being read: the scanner stands between values again. */
  #betweenValues(): void {
    this.#what = Rec.None;
    this.#root = 0;
    this.#depth = 0;
    this.#listDepth = -1;
    this.#listSeen = false;
    this.#prefix = null;
    this.#keyList = null;
  }

  /**
   * Reports the current record as broken and starts again between values: at the line end
   * that broke it (`atLineEnd`), else after the rest of its line; in a multi-line document,
   * at the next line that starts a value.
   */
  #broken(out: Scanned[], reason: string, atLineEnd: boolean): void {
    const inRecord = this.#what !== Rec.None && this.#what !== Rec.Suffix;
    out.push({ type: "broken", line: inRecord ? this.#recLine : this.#topLine, reason });
    this.#rec.reset();
    this.#betweenValues();
    this.#inString = false;
    this.#escape = false;
    this.#atLineStart = false;
    if (this.#mode === Mode.Document) this.#skip = Skip.Resync;
    else if (!atLineEnd) this.#skip = Skip.Line;
  }
}
