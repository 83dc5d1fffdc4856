/**
 * The fast path of decoding one event object: everything but its request and response
 * bodies is parsed; the bodies are only checked (`json_validate.ts`) and parsed the first
 * time something reads them. kube-apiserver writes `requestObject` and `responseObject`
 * after every field a policy reads (Go field order: `level`, `auditID`, `stage`,
 * `requestURI`, `verb`, `user`, `impersonatedUser`, `sourceIPs`, `userAgent`, `objectRef`,
 * `responseStatus`, then the bodies, then the timestamps and `annotations`), and the bodies
 * are most of an event's bytes; an event the policy keeps unchanged is written from its
 * original bytes, and one it lowers to `Metadata` drops them, so most bodies are never built.
 *
 * The object is the one `JSON.parse` would give, key for key and in the same order; the
 * bodies are accessor properties (enumerable, configurable) that parse on first read and
 * replace themselves with plain values, so `JSON.stringify`, spreading and assignment see
 * what they would have. Where the bodies' bytes are is kept under a symbol key, not
 * enumerable: only `Reflect.ownKeys` and `Object.getOwnPropertySymbols` see it. Anything
 * outside the shape this path knows (text that is not ASCII, whitespace around the bodies, a
 * body key out of place or repeated, a key written with escapes) returns `null`, and the
 * caller parses the whole text as before.
 *
 * @module
 */
import { jsonValueEnd } from "./json_validate.ts";

const REQUEST = ',"requestObject":';
const RESPONSE = ',"responseObject":';
const decoder = new TextDecoder();

/**
 * Where the bytes of lazily parsed bodies live: `bytes[i - base]` is the byte at offset `i`
 * of the text the object was decoded from. The webhook source moves an event's bytes into a
 * buffer of their own after decoding, and points this there. (Bodies are not cut from the
 * text: an event held until written would keep the text as well as the bytes, and decoding
 * the few bodies that are read costs nothing measurable.)
 *
 * @example
 * ```ts
 * const src: LazySource = { bytes: line, base: 0 };
 * ```
 */
export interface LazySource {
  bytes: Uint8Array;
  base: number;
}

/**
 * Where an event's unparsed bodies are: ranges of `src`, -1 when absent. Held by the event
 * under a symbol key, not enumerable, which `JSON.stringify`, spreading, `Object.keys` and
 * `for…in` never see.
 */
class LazyBodies {
  requestStart = -1;
  requestEnd = -1;
  responseStart = -1;
  responseEnd = -1;
  constructor(readonly src: LazySource) {}

  parse(start: number, end: number): unknown {
    const { bytes, base } = this.src;
    return JSON.parse(decoder.decode(bytes.subarray(start - base, end - base)));
  }
}

const BODIES: unique symbol = Symbol("auditpipe.lazyBodies");
type WithBodies = Record<string, unknown> & { [BODIES]: LazyBodies };

function settle(obj: object, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

// One accessor pair per body key, shared by every event: objects that gain the same keys in
// the same order share one hidden class, where accessors made per object would give each
// its own (and cost two closures per body).
const REQUEST_ACCESSOR: PropertyDescriptor = {
  enumerable: true,
  configurable: true,
  get(this: WithBodies): unknown {
    const b = this[BODIES];
    const value = b.parse(b.requestStart, b.requestEnd);
    settle(this, "requestObject", value);
    return value;
  },
  set(this: WithBodies, value: unknown): void {
    settle(this, "requestObject", value);
  },
};
const RESPONSE_ACCESSOR: PropertyDescriptor = {
  enumerable: true,
  configurable: true,
  get(this: WithBodies): unknown {
    const b = this[BODIES];
    const value = b.parse(b.responseStart, b.responseEnd);
    settle(this, "responseObject", value);
    return value;
  },
  set(this: WithBodies, value: unknown): void {
    settle(this, "responseObject", value);
  },
};

/**
 * Whether `obj` has `key` with a value other than `undefined`, without parsing a lazy body
 * (a lazy body is JSON, never `undefined`).
 *
 * @example
 * ```ts
 * if (hasValue(event, "requestObject")) dropRequest = true;
 * ```
 */
export function hasValue(obj: object, key: string): boolean {
  const d = Object.getOwnPropertyDescriptor(obj, key);
  if (d === undefined) return false;
  return d.get !== undefined || d.value !== undefined;
}

/**
 * The bytes a body (`requestObject` or `responseObject`) of `obj` arrived as, while it is
 * still unparsed; `undefined` once read, set or deleted, or when `obj` was not decoded
 * lazily. A writer may copy them into its output instead of serializing the value (they are
 * valid JSON: the decoder checked them, and valid UTF-8, as the input was made).
 *
 * @example
 * ```ts
 * const raw = unparsedBody(event, "requestObject");
 * if (raw !== undefined) out.push(raw); // else JSON.stringify(event.requestObject)
 * ```
 */
export function unparsedBody(
  obj: object,
  key: "requestObject" | "responseObject",
): Uint8Array | undefined {
  const d = Object.getOwnPropertyDescriptor(obj, key);
  if (d === undefined || d.get === undefined) return undefined;
  const bodies = (obj as Partial<WithBodies>)[BODIES];
  if (!(bodies instanceof LazyBodies)) return undefined;
  const { bytes, base } = bodies.src;
  if (key === "requestObject") {
    if (d.get !== REQUEST_ACCESSOR.get) return undefined;
    return bytes.subarray(bodies.requestStart - base, bodies.requestEnd - base);
  }
  if (d.get !== RESPONSE_ACCESSOR.get) return undefined;
  return bytes.subarray(bodies.responseStart - base, bodies.responseEnd - base);
}

// Both body keys end in `Object":`, a needle short enough that `indexOf` finds it by its
// rare first character, several times faster than searching for each whole key: this search
// runs over every line, most of which have no body at all.
const NEEDLE = 'Object":';
const BEFORE_REQUEST = ',"request';
const BEFORE_RESPONSE = ',"response';

/**
 * The index of the first `,"requestObject":` or `,"responseObject":` in `text` at or after
 * `from`, or -1.
 *
 * @example
 * ```ts
 * findBodyKey('{"a":1,"responseObject":{}}', 0); // 6
 * ```
 */
export function findBodyKey(text: string, from: number): number {
  for (
    let at = text.indexOf(NEEDLE, from + BEFORE_REQUEST.length);
    at >= 0;
    at = text.indexOf(NEEDLE, at + 1)
  ) {
    if (text.startsWith(BEFORE_REQUEST, at - BEFORE_REQUEST.length)) {
      return at - BEFORE_REQUEST.length;
    }
    const r = at - BEFORE_RESPONSE.length;
    if (r >= from && text.startsWith(BEFORE_RESPONSE, r)) return r;
  }
  return -1;
}

/**
 * Finds the body keys in a text from positions that only grow (the items of one body, in
 * order), searching each part of the text once: an item without bodies must not search the
 * rest of a long body on every call.
 *
 * @example
 * ```ts
 * const finder = new BodyFinders(body);
 * finder.next(itemStart); // first body key at or after itemStart, or -1
 * ```
 */
export class BodyFinders {
  #at = -2;
  #from = 0;
  constructor(readonly text: string) {}

  /** The first index of a body key at or after `from`, or -1. */
  next(from: number): number {
    if (this.#at === -2 || from < this.#from || (this.#at >= 0 && this.#at < from)) {
      this.#at = findBodyKey(this.text, from);
      this.#from = from;
    }
    return this.#at;
  }
}

/**
 * Decodes the JSON object `text[start, end)`, whose bytes are `bytes[start + delta, end +
 * delta)` (the object's text must be ASCII, so offsets agree but for `delta`), parsing all but its `requestObject` and
 * `responseObject`, which are validated and left to parse on first read from
 * `src`. `finders` (for many objects of one text, in order) save searching the whole text
 * for every object. Returns `null` when the object has no bodies, or is not in the shape this path
 * handles, or is not valid JSON: the caller then parses it whole (and reports what is wrong).
 *
 * @example
 * ```ts
 * const obj = decodeLazyObject(text, bytes, 0, text.length, { bytes, base: 0 });
 * if (obj === null) fallBack(); // JSON.parse(text)
 * ```
 */
export function decodeLazyObject(
  text: string,
  bytes: Uint8Array,
  start: number,
  end: number,
  src: LazySource,
  finders?: BodyFinders,
  delta = 0,
): Record<string, unknown> | null {
  const head = finders ? finders.next(start) : findBodyKey(text, start);
  if (head < 0 || head >= end) return null;
  // A match inside a nested object leaves brackets open: the head does not parse.
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(text.slice(start, head) + "}");
  } catch {
    return null;
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return null;
  if (Object.hasOwn(obj, "requestObject") || Object.hasOwn(obj, "responseObject")) return null;
  let at = head;
  const bodies = new LazyBodies(src);
  Object.defineProperty(obj, BODIES, { value: bodies });
  if (text.startsWith(REQUEST, at)) {
    const from = at + REQUEST.length;
    at = jsonValueEnd(bytes, from + delta, end + delta) - delta;
    if (at < from) return null;
    bodies.requestStart = from + delta;
    bodies.requestEnd = at + delta;
    Object.defineProperty(obj, "requestObject", REQUEST_ACCESSOR);
  }
  if (text.startsWith(RESPONSE, at)) {
    const from = at + RESPONSE.length;
    at = jsonValueEnd(bytes, from + delta, end + delta) - delta;
    if (at < from) return null;
    bodies.responseStart = from + delta;
    bodies.responseEnd = at + delta;
    Object.defineProperty(obj, "responseObject", RESPONSE_ACCESSOR);
  }
  // The rest: `}` (then only whitespace), or more members.
  if (at >= end) return null;
  const next = text.charCodeAt(at);
  let rest: Record<string, unknown>;
  try {
    if (next === 0x7d) rest = JSON.parse("{" + text.slice(at, end));
    else if (next === 0x2c && text.charCodeAt(at + 1) === 0x22) {
      rest = JSON.parse("{" + text.slice(at + 1, end));
    } else return null;
  } catch {
    return null;
  }
  for (const key in rest) {
    // A body repeated, or a key assignment would not copy as JSON.parse defines it.
    if (key === "requestObject" || key === "responseObject" || key === "__proto__") return null;
    // Assignment keeps a repeated key where it first was, with the last value: as JSON.parse.
    obj[key] = rest[key];
  }
  return obj;
}
