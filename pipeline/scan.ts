/**
 * Finding where each item of a JSON list lies in the bytes it was parsed from, so events
 * that arrived in an `EventList` keep their original bytes and sinks need not serialize
 * them again. A structural scan only: `JSON.parse` has already checked the document.
 *
 * @module
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const LF = 0x0a;
const CR = 0x0d;
const ITEMS = new TextEncoder().encode('"items"');

/** Where one list item lies: `[start, end)`; `multiline` when it holds a line break. */
export interface ItemRange {
  readonly start: number;
  readonly end: number;
  readonly multiline: boolean;
}

/**
 * Index of the quote closing the string whose opening quote is at `open`. A plain byte loop:
 * most strings in an event are short keys, where calling `indexOf` costs more than it saves.
 */
function stringEnd(b: Uint8Array, open: number): number {
  const n = b.length;
  let i = open + 1;
  while (i < n) {
    const c = b[i];
    if (c === QUOTE) return i;
    i += c === BACKSLASH ? 2 : 1;
  }
  return n;
}

function isItemsKey(b: Uint8Array, open: number, close: number): boolean {
  if (close - open + 1 !== ITEMS.length) return false;
  for (let k = 0; k < ITEMS.length; k++) if (b[open + k] !== ITEMS[k]) return false;
  return true;
}

/**
 * The byte ranges of the items of a JSON document that is a list, or an object whose
 * `items` key holds one (an `EventList`). `null` when there is no such list. The document
 * must be valid JSON (parse it first).
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode('{"kind":"EventList","items":[{"a":1},{"b":2}]}');
 * itemRanges(bytes); // [{start: 29, end: 36, ...}, {start: 37, end: 44, ...}]
 * ```
 */
export function itemRanges(b: Uint8Array): ItemRange[] | null {
  let depth = 0;
  /** Depth of the list whose items we want, once found. */
  let listDepth = -1;
  let lastKeyOpen = -1;
  let lastKeyClose = -1;
  let itemStart = -1;
  let multiline = false;
  const out: ItemRange[] = [];
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c === QUOTE) {
      const close = stringEnd(b, i);
      if (depth === 1 && listDepth < 0) {
        lastKeyOpen = i;
        lastKeyClose = close;
      }
      i = close;
      continue;
    }
    if (c === OPEN_OBJ || c === OPEN_ARR) {
      if (listDepth < 0 && c === OPEN_ARR) {
        // The root list, or the list under the root object's "items" key.
        if (depth === 0 || (depth === 1 && isItemsKey(b, lastKeyOpen, lastKeyClose))) {
          listDepth = depth + 1;
          depth++;
          continue;
        }
      }
      depth++;
      if (depth === listDepth + 1) {
        itemStart = i;
        multiline = false;
      }
      continue;
    }
    if (c === CLOSE_OBJ || c === CLOSE_ARR) {
      if (depth === listDepth + 1 && itemStart >= 0) {
        out.push({ start: itemStart, end: i + 1, multiline });
        itemStart = -1;
      }
      if (depth === listDepth && c === CLOSE_ARR) return out;
      depth--;
      continue;
    }
    // Items that are not objects get no range; the caller sees the count differ.
    if ((c === LF || c === CR) && itemStart >= 0) multiline = true;
  }
  return null;
}
