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
 * Index of the quote closing the string whose opening quote is at `open`. Short strings
 * (keys, most values) end within a few bytes, where a plain loop is cheapest; past that,
 * `indexOf` finds the next quote natively and a run of backslashes before it says whether
 * it is escaped.
 */
function stringEnd(b: Uint8Array, open: number): number {
  const n = b.length;
  const short = Math.min(n, open + 24);
  let i = open + 1;
  while (i < short) {
    const c = b[i];
    if (c === QUOTE) return i;
    i += c === BACKSLASH ? 2 : 1;
  }
  while (i < n) {
    const q = b.indexOf(QUOTE, i);
    if (q < 0) return n;
    let slashes = 0;
    while (b[q - 1 - slashes] === BACKSLASH) slashes++;
    if ((slashes & 1) === 0) return q;
    i = q + 1;
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

const ITEMS_OPEN = '"items":[{"level":"';
const ITEM_SPLIT = '},{"level":"';

/**
 * Where the items of an `EventList` lie in its text (character offsets), found with native string searches, when
 * the text has kube-apiserver's shape: compact JSON, `items` the last key, every item starting with `"level"` (Go writes
 * `audit.Event` fields in order). `null` when it has not that shape; then use
 * {@linkcode itemRanges}.
 *
 * A split point is only a candidate: `},{"level":"` may occur inside an event (a nested
 * list of objects with a `level` key first). The caller parses every piece and the header
 * (`head` + `"items":[]}`); each parsing on its own proves the split, because a piece cut
 * inside a nested list has unclosed brackets and does not parse.
 *
 * @example
 * ```ts
 * const t = '{"kind":"EventList","items":[{"level":"None"},{"level":"Metadata"}]}';
 * compactItemRanges(t); // { head: '{"kind":"EventList",', items: [{start: 29, ...}, ...] }
 * ```
 */
export function compactItemRanges(
  text: string,
): { head: string; items: ItemRange[] } | null {
  const open = text.indexOf(ITEMS_OPEN);
  if (open < 0) return null;
  const trimmed = text.trimEnd();
  // A line break inside an item would end its line in a log; compact JSON has none.
  if (!trimmed.endsWith("]}") || trimmed.includes("\n") || trimmed.includes("\r")) return null;
  const last = trimmed.length - 2;
  const items: ItemRange[] = [];
  let start = open + ITEMS_OPEN.length - '{"level":"'.length;
  for (;;) {
    const split = text.indexOf(ITEM_SPLIT, start);
    if (split < 0 || split >= last) break;
    items.push({ start, end: split + 1, multiline: false });
    start = split + 2;
  }
  items.push({ start, end: last, multiline: false });
  return { head: text.slice(0, open), items };
}
