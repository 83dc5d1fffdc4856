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
 * it runs at about 1.5–2× the speed of `JSON.parse` on the bench data (which is full of
 * short strings), and allocates nothing.
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

/** Valid after a backslash: `" \ / b f n r t u`. */
const ESCAPE = new Uint8Array(128);
for (const c of '"\\/bfnrtu') ESCAPE[c.charCodeAt(0)] = 1;
/** Hex digits. */
const HEX = new Uint8Array(128);
for (const c of "0123456789abcdefABCDEF") HEX[c.charCodeAt(0)] = 1;

function ws(s: Uint8Array, i: number): number {
  // Past the end `s[i]` is undefined, which ends the loop: callers check `end` after.
  for (let c = s[i]; c === SPACE || c === LF || c === CR || c === TAB; c = s[++i]);
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
  i++;
  for (;;) {
    // The common case, plain characters, in a tight loop; undefined past the end stops it.
    let c = s[i];
    while (c >= SPACE && c !== QUOTE && c !== BACKSLASH) c = s[++i];
    if (i >= end) return -1;
    if (c === QUOTE) return i + 1;
    if (c !== BACKSLASH) return -1; // a control character
    const e = s[i + 1];
    if (i + 1 >= end || e > 127 || ESCAPE[e] === 0) return -1;
    if (e === 0x75) { // u
      if (i + 5 >= end) return -1;
      for (let k = 2; k < 6; k++) {
        const h = s[i + k];
        if (h > 127 || HEX[h] === 0) return -1;
      }
      i += 6;
    } else i += 2;
  }
}

function digitsEnd(s: Uint8Array, i: number): number {
  for (let c = s[i]; c >= ZERO && c <= NINE; c = s[++i]);
  return i;
}

function numberEnd(s: Uint8Array, i: number, end: number): number {
  if (s[i] === MINUS) i++;
  const first = s[i];
  if (first === ZERO) i++;
  else if (first > ZERO && first <= NINE) i = digitsEnd(s, i + 1);
  else return -1;
  if (s[i] === DOT) {
    const from = i + 1;
    i = digitsEnd(s, from);
    if (i === from) return -1;
  }
  if ((s[i] | 0x20) === 0x65) { // e or E
    i++;
    if (s[i] === 0x2b || s[i] === MINUS) i++;
    const from = i;
    i = digitsEnd(s, from);
    if (i === from) return -1;
  }
  return i > end ? -1 : i;
}

function literalEnd(s: Uint8Array, i: number, end: number, word: Uint8Array): number {
  if (i + word.length > end) return -1;
  for (let k = 1; k < word.length; k++) if (s[i + k] !== word[k]) return -1;
  return i + word.length;
}

const TRUE = new TextEncoder().encode("true");
const FALSE = new TextEncoder().encode("false");
const NULL = new TextEncoder().encode("null");

/** `"key"` then `:` at `i` (after whitespace); the index after the colon, or -1. */
function keyEnd(s: Uint8Array, i: number, end: number): number {
  if (s[i] !== QUOTE) i = ws(s, i);
  if (i >= end || s[i] !== QUOTE) return -1;
  i = jsonStringEnd(s, i, end);
  if (i < 0) return -1;
  if (s[i] !== COLON) i = ws(s, i);
  if (i >= end || s[i] !== COLON) return -1;
  return i + 1;
}

// The open containers of the value being checked: 1 for an object, 2 for an array. Grown as
// needed, kept between calls (validation is synchronous and not re-entrant).
let stack = new Uint8Array(64);

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
  for (;;) {
    // A value.
    let c = s[i];
    if (c <= SPACE) {
      i = ws(s, i);
      c = s[i];
    }
    if (i >= end) return -1;
    if (c === QUOTE) {
      i = jsonStringEnd(s, i, end);
    } else if (c === OPEN_OBJ || c === OPEN_ARR) {
      let j = i + 1;
      if (s[j] <= SPACE) j = ws(s, j);
      if (j < end && s[j] === c + 2) { // `{}` or `[]`
        i = j + 1;
      } else {
        if (depth === stack.length) {
          const grown = new Uint8Array(stack.length * 2);
          grown.set(stack);
          stack = grown;
        }
        if (c === OPEN_OBJ) {
          stack[depth++] = 1;
          i = keyEnd(s, j, end);
          if (i < 0) return -1;
        } else {
          stack[depth++] = 2;
          i = j;
        }
        continue;
      }
    } else if (c === 0x74) i = literalEnd(s, i, end, TRUE);
    else if (c === 0x66) i = literalEnd(s, i, end, FALSE);
    else if (c === 0x6e) i = literalEnd(s, i, end, NULL);
    else i = numberEnd(s, i, end);
    if (i < 0) return -1;
    // After a value: separators and closing brackets.
    for (;;) {
      if (depth === 0) return i;
      let d = s[i];
      if (d <= SPACE) {
        i = ws(s, i);
        d = s[i];
      }
      if (i >= end) return -1;
      const inObject = stack[depth - 1] === 1;
      if (d === COMMA) {
        i = inObject ? keyEnd(s, i + 1, end) : i + 1;
        if (i < 0) return -1;
        break;
      }
      if (d !== (inObject ? CLOSE_OBJ : CLOSE_ARR)) return -1;
      depth--;
      i++;
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
