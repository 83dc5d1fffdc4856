/**
 * A JSON validator that builds nothing: it says where a JSON value ends in UTF-8 bytes, or
 * that they are not JSON, accepting exactly what `JSON.parse` accepts (ECMA-404: whitespace is space,
 * tab, `\n`, `\r`; no control characters in strings; escapes `\" \\ \/ \b \f \n \r \t
 * \uXXXX`; numbers `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; `true`, `false`,
 * `null`). Nesting has no depth limit (an explicit stack, no recursion), as V8's parser.
 *
 * It lets the fast decode path check the parts of an event it does not parse (request and
 * response bodies), so a line that is not one valid JSON object is never written. Bytes of
 * 0x80 and above are taken as they are: the caller checks UTF-8 (see `decodeUtf8`). On bytes
 * it runs at about 3–4× the speed of `JSON.parse` on the bench data (which is full of
 * short strings), and allocates nothing. One loop handles every value, key and separator
 * (no call per token but for strings and numbers), and byte classes come from tables (one
 * load and compare per byte of a string instead of three compares).
 *
 * @module
 */

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const OPEN_ARR = 0x5b;
const BACKSLASH = 0x5c;
const CLOSE_ARR = 0x5d;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;

// Byte classes. Indexing past the end of the input gives `undefined`, whose lookup is
// `undefined` too: no class, which ends every loop; callers then check `end`.
/** 1: stands for itself in a string (not `"`, `\`, or a control character). */
const PLAIN = new Uint8Array(256);
for (let c = SPACE; c < 256; c++) PLAIN[c] = c === QUOTE || c === BACKSLASH ? 0 : 1;
/** 1: JSON whitespace (space, tab, `\n`, `\r`). */
const WS = new Uint8Array(256);
WS[SPACE] =
  WS[TAB] =
  WS[LF] =
  WS[CR] =
    1;
/** 1: valid after a backslash but for `u`: `" \ / b f n r t`. */
const ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') ESCAPE[c.charCodeAt(0)] = 1;
/** 1: a hex digit. */
const HEX = new Uint8Array(256);
for (const c of "0123456789abcdefABCDEF") HEX[c.charCodeAt(0)] = 1;

function ws(s: Uint8Array, i: number): number {
  while (WS[s[i]] === 1) i++;
  return i;
}

/**
 * End of the string whose opening quote is at `i` (the index after its closing quote), or
 * -1 when it is not a valid JSON string within `end`.
 *
 * @example
 * ```ts
 * jsonStringEnd(new TextEncoder().encode('"a\\n"'), 0, 5); // 5
 * ```
 */
export function jsonStringEnd(s: Uint8Array, i: number, end: number): number {
  for (;;) {
    let c = s[++i];
    while (PLAIN[c] === 1) c = s[++i];
    if (i >= end) return -1;
    if (c === QUOTE) return i + 1;
    if (c !== BACKSLASH) return -1; // a control character
    c = s[++i];
    if (ESCAPE[c] === 1) continue;
    if (c !== 0x75 || i + 4 >= end) return -1; // u
    if ((HEX[s[i + 1]] & HEX[s[i + 2]] & HEX[s[i + 3]] & HEX[s[i + 4]]) !== 1) return -1;
    i += 4;
  }
}

function numberEnd(s: Uint8Array, i: number, end: number): number {
  let c = s[i];
  if (c === MINUS) c = s[++i];
  if (c === ZERO) c = s[++i];
  else if (c > ZERO && c <= NINE) {
    do c = s[++i]; while (c >= ZERO && c <= NINE);
  } else return -1;
  if (c === DOT) {
    c = s[++i];
    if (!(c >= ZERO && c <= NINE)) return -1;
    do c = s[++i]; while (c >= ZERO && c <= NINE);
  }
  if ((c | 0x20) === 0x65) { // e or E
    c = s[++i];
    if (c === 0x2b || c === MINUS) c = s[++i];
    if (!(c >= ZERO && c <= NINE)) return -1;
    do c = s[++i]; while (c >= ZERO && c <= NINE);
  }
  return i > end ? -1 : i;
}

// The open containers of the value being checked: 1 for an object, 2 for an array. Grown as
// needed, kept between calls (validation is synchronous and not re-entrant).
let stack = new Uint8Array(64);

function push(depth: number, kind: number): void {
  if (depth === stack.length) {
    const grown = new Uint8Array(stack.length * 2);
    grown.set(stack);
    stack = grown;
  }
  stack[depth] = kind;
}

/**
 * The index just after the JSON value that starts at `i` (leading whitespace allowed; none
 * after it is consumed), or -1 when `s[i, end)` does not start with a valid JSON value.
 *
 * @example
 * ```ts
 * const enc = new TextEncoder();
 * jsonValueEnd(enc.encode('{"a":[1,true]},'), 0, 15); // 14
 * jsonValueEnd(enc.encode('{"a":[1,tru]}'), 0, 13); // -1
 * ```
 */
export function jsonValueEnd(s: Uint8Array, i: number, end: number): number {
  let depth = 0;
  let inObject = false;
  for (;;) {
    // A value.
    let c = s[i];
    while (WS[c] === 1) c = s[++i];
    if (i >= end) return -1;
    if (c === QUOTE) {
      i = jsonStringEnd(s, i, end);
      if (i < 0) return -1;
    } else if (c === OPEN_OBJ) {
      c = s[++i];
      while (WS[c] === 1) c = s[++i];
      if (i >= end) return -1;
      if (c === CLOSE_OBJ) i++;
      else {
        push(depth++, 1);
        inObject = true;
        // The first key and its colon; the value comes round the loop.
        if (c !== QUOTE) return -1;
        i = jsonStringEnd(s, i, end);
        if (i < 0) return -1;
        c = s[i];
        while (WS[c] === 1) c = s[++i];
        if (c !== COLON || i >= end) return -1;
        i++;
        continue;
      }
    } else if (c === OPEN_ARR) {
      c = s[++i];
      while (WS[c] === 1) c = s[++i];
      if (i >= end) return -1;
      if (c === CLOSE_ARR) i++;
      else {
        push(depth++, 2);
        inObject = false;
        continue;
      }
    } else if (c === 0x74) { // true
      if (i + 4 > end || s[i + 1] !== 0x72 || s[i + 2] !== 0x75 || s[i + 3] !== 0x65) return -1;
      i += 4;
    } else if (c === 0x66) { // false
      if (
        i + 5 > end || s[i + 1] !== 0x61 || s[i + 2] !== 0x6c || s[i + 3] !== 0x73 ||
        s[i + 4] !== 0x65
      ) return -1;
      i += 5;
    } else if (c === 0x6e) { // null
      if (i + 4 > end || s[i + 1] !== 0x75 || s[i + 2] !== 0x6c || s[i + 3] !== 0x6c) return -1;
      i += 4;
    } else {
      i = numberEnd(s, i, end);
      if (i < 0) return -1;
    }
    // After a value: separators and closing brackets.
    for (;;) {
      if (depth === 0) return i;
      c = s[i];
      while (WS[c] === 1) c = s[++i];
      if (i >= end) return -1;
      i++;
      if (c === COMMA) {
        if (inObject) {
          c = s[i];
          while (WS[c] === 1) c = s[++i];
          if (c !== QUOTE) return -1;
          i = jsonStringEnd(s, i, end);
          if (i < 0) return -1;
          c = s[i];
          while (WS[c] === 1) c = s[++i];
          if (c !== COLON || i >= end) return -1;
          i++;
        }
        break;
      }
      if (c !== (inObject ? CLOSE_OBJ : CLOSE_ARR)) return -1;
      depth--;
      inObject = depth > 0 && stack[depth - 1] === 1;
    }
  }
}

/**
 * Whether `s` is exactly one JSON value, with optional whitespace around it: what
 * `JSON.parse` accepts of its (valid UTF-8) text.
 *
 * @example
 * ```ts
 * isJson(new TextEncoder().encode('{"a":1}')); // true
 * isJson(new TextEncoder().encode('{"a":1}x')); // false
 * ```
 */
export function isJson(s: Uint8Array): boolean {
  const end = jsonValueEnd(s, 0, s.length);
  return end >= 0 && ws(s, end) === s.length;
}
