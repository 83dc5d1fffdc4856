/**
 * kube-apiserver's `legacy` audit log format: one line of `key="value"` pairs per event, as
 * `EventString` in k8s.io/apiserver `pkg/audit/format.go` prints it, with Go's `%q` quoting
 * and `time.RFC3339Nano` timestamps reproduced byte for byte.
 *
 * @module
 */
import type { Event } from "../pipeline/core/event.ts";

const HEX = "0123456789abcdef";

/** Go's `strconv.IsPrint` for one code point. */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
/** Strings made only of these need no escaping at all, the common case for audit fields. */
const PLAIN_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * Whether Go prints a rune as is inside `%q`: letters, marks, numbers, punctuation, symbols
 * and the ASCII space (`strconv.IsPrint`). Latin-1 takes Go's own fast path, which is why
 * U+00A0 (no-break space) and U+00AD (soft hyphen) are escaped.
 *
 * Above Latin-1 the answer comes from the JavaScript engine's Unicode tables, which may be a
 * newer Unicode version than the Go release kube-apiserver was built with; they can differ
 * only for code points assigned in between.
 *
 * @example
 * ```ts
 * isGoPrint(0x41); // true
 * isGoPrint(0xa0); // false
 * ```
 */
export function isGoPrint(r: number): boolean {
  if (r <= 0xff) {
    if (r >= 0x20 && r <= 0x7e) return true;
    // U+00A1..U+00FF are all graphic except the soft hyphen (a format character).
    return r >= 0xa1 && r !== 0xad;
  }
  if (r >= 0xd800 && r <= 0xdfff) return false;
  return PRINTABLE.test(String.fromCodePoint(r));
}

function hex(n: number, digits: number): string {
  let out = "";
  for (let i = digits - 1; i >= 0; i--) out += HEX[(n >> (4 * i)) & 0xf];
  return out;
}

/** One rune as `strconv.appendEscapedRune` writes it with `"` as the quote. */
function escapeRune(r: number): string {
  if (r === 0x22) return '\\"';
  if (r === 0x5c) return "\\\\";
  if (isGoPrint(r)) return String.fromCodePoint(r);
  switch (r) {
    case 0x07:
      return "\\a";
    case 0x08:
      return "\\b";
    case 0x0c:
      return "\\f";
    case 0x0a:
      return "\\n";
    case 0x0d:
      return "\\r";
    case 0x09:
      return "\\t";
    case 0x0b:
      return "\\v";
  }
  if (r < 0x20 || r === 0x7f) return "\\x" + hex(r, 2);
  if (r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) r = 0xfffd;
  return r < 0x10000 ? "\\u" + hex(r, 4) : "\\U" + hex(r, 8);
}

/**
 * Decodes one rune at `i` as Go's `utf8.DecodeRune` does: returns `[rune, width]`, or
 * `[-1, 1]` for a byte that does not start a valid UTF-8 sequence (overlong forms, surrogates
 * and values above U+10FFFF included).
 */
function decodeRune(b: Uint8Array, i: number): [number, number] {
  const b0 = b[i];
  if (b0 < 0x80) return [b0, 1];
  const cont = (j: number, lo = 0x80, hi = 0xbf) =>
    i + j < b.length && b[i + j] >= lo && b[i + j] <= hi;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    if (cont(1)) return [((b0 & 0x1f) << 6) | (b[i + 1] & 0x3f), 2];
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    const lo = b0 === 0xe0 ? 0xa0 : 0x80;
    const hi = b0 === 0xed ? 0x9f : 0xbf;
    if (cont(1, lo, hi) && cont(2)) {
      return [((b0 & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f), 3];
    }
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    const lo = b0 === 0xf0 ? 0x90 : 0x80;
    const hi = b0 === 0xf4 ? 0x8f : 0xbf;
    if (cont(1, lo, hi) && cont(2) && cont(3)) {
      return [
        ((b0 & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) |
        (b[i + 3] & 0x3f),
        4,
      ];
    }
  }
  return [-1, 1];
}

/**
 * Quotes text as Go's `fmt` `%q` verb (`strconv.Quote`) does: double quotes; `\"` and `\\`;
 * `\a \b \f \n \r \t \v`; other control bytes and DEL as `\xHH`; other non-printable runes
 * as `\uHHHH` or `\UHHHHHHHH`; printable non-ASCII as is; hex digits lowercase.
 *
 * Bytes are read as Go reads a string: each byte of invalid UTF-8 becomes `\xHH`. A
 * JavaScript string cannot hold invalid UTF-8; a lone surrogate in one is printed as U+FFFD,
 * which is what Go's JSON decoder would have made of it.
 *
 * @example
 * ```ts
 * goQuote('say "hi"\n');                       // '"say \\"hi\\"\\n"'
 * goQuote(new Uint8Array([0x61, 0xff]));        // '"a\\xff"'
 * goQuote("caf\u00e9\u00a0");                  // '"café\\u00a0"'
 * ```
 */
export function goQuote(s: string | Uint8Array): string {
  if (typeof s === "string") {
    if (PLAIN_ASCII.test(s)) return `"${s}"`;
    let out = '"';
    for (const ch of s) {
      const r = ch.codePointAt(0)!;
      out += escapeRune(r >= 0xd800 && r <= 0xdfff ? 0xfffd : r);
    }
    return out + '"';
  }
  let out = '"';
  for (let i = 0; i < s.length;) {
    const [r, width] = decodeRune(s, i);
    out += r < 0 ? "\\x" + hex(s[i], 2) : escapeRune(r);
    i += width;
  }
  return out + '"';
}

/**
 * Go's zero `time.Time` in RFC3339Nano: what the legacy format prints for a missing time.
 *
 * @example
 * ```ts
 * rfc3339Nano(null) === GO_ZERO_TIME; // true
 * ```
 */
export const GO_ZERO_TIME = "0001-01-01T00:00:00Z";

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/**
 * A wire timestamp (`MicroTime`, RFC 3339) formatted as Go's `time.RFC3339Nano`: at most 9
 * fraction digits with trailing zeros removed (no dot when the fraction is zero), in UTC
 * with `Z`.
 *
 * Go formats in the time's zone, and a decoded `MicroTime` is in the process's local zone;
 * auditpipe prints UTC (a kube-apiserver running with `TZ=UTC`, the usual case), converting
 * any offset the timestamp carries. `null`, absent and unparseable values (which Go could
 * not have decoded) print as Go's zero time, `0001-01-01T00:00:00Z`.
 *
 * @example
 * ```ts
 * rfc3339Nano("2024-03-01T12:34:56.789000Z");      // "2024-03-01T12:34:56.789Z"
 * rfc3339Nano("2024-03-01T14:34:56.000000+02:00"); // "2024-03-01T12:34:56Z"
 * rfc3339Nano(null);                               // "0001-01-01T00:00:00Z"
 * ```
 */
export function rfc3339Nano(ts: string | null | undefined): string {
  if (typeof ts !== "string") return GO_ZERO_TIME;
  const m = RFC3339.exec(ts);
  if (!m) return GO_ZERO_TIME;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) {
    return GO_ZERO_TIME;
  }
  let offsetMinutes = 0;
  if (m[8] !== "Z") {
    const sign = m[8][0] === "-" ? -1 : 1;
    const oh = Number(m[8].slice(1, 3));
    const om = Number(m[8].slice(4, 6));
    if (oh > 23 || om > 59) return GO_ZERO_TIME;
    offsetMinutes = sign * (oh * 60 + om);
  }
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  if (d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) return GO_ZERO_TIME;
  d.setUTCHours(hour, minute - offsetMinutes, second, 0);
  const frac = (m[7] ?? "").slice(0, 9).replace(/0+$/, "");
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-` +
    `${pad(d.getUTCDate(), 2)}T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:` +
    `${pad(d.getUTCSeconds(), 2)}${frac ? "." + frac : ""}Z`;
}

/** A field as Go would hold it: absent and null are the zero string. */
function text(v: unknown): string {
  if (typeof v === "string") return v;
  return v === undefined || v === null ? "" : String(v);
}

/** `auditStringSlice`: each element `%q`-quoted, joined by commas. */
function quotedList(list: readonly unknown[]): string {
  return list.map((g) => goQuote(text(g))).join(",");
}

/**
 * An event as kube-apiserver's `legacy` log format prints it, without the trailing newline
 * (the log backend appends one `\n` per event).
 *
 * Fields follow `EventString`: `user`/`groups` are `<none>` without a username (`groups`
 * also without groups), `as`/`asgroups` are `<self>`/`<lookup>` without impersonation
 * (`asgroups` is the impersonated groups whenever that list is present, even empty), `ip` is
 * the first source IP or `<unknown>`, `namespace` is `<none>` when empty, `response` the
 * status code or `<deferred>` without a `responseStatus`.
 *
 * @example
 * ```ts
 * legacyLine({ auditID: "X" } as Event);
 * // '0001-01-01T00:00:00Z AUDIT: id="X" stage="" ip="<unknown>" method="" user="<none>" ...'
 * ```
 */
export function legacyLine(event: Event): string {
  const user = event.user ?? {};
  let username = "<none>";
  let groups = "<none>";
  if (text(user.username) !== "") {
    username = text(user.username);
    if (Array.isArray(user.groups) && user.groups.length > 0) groups = quotedList(user.groups);
  }
  let asUser = "<self>";
  let asGroups = "<lookup>";
  const imp = event.impersonatedUser;
  if (imp !== undefined && imp !== null) {
    asUser = text(imp.username);
    // Go tests `Groups != nil`: a present list counts even when empty.
    if (Array.isArray(imp.groups)) asGroups = quotedList(imp.groups);
  }
  const ns = text(event.objectRef?.namespace);
  const namespace = ns === "" ? "<none>" : ns;
  const status = event.responseStatus;
  const response = status === undefined || status === null
    ? "<deferred>"
    : String(Math.trunc(Number(status.code ?? 0)) || 0);
  const ips = event.sourceIPs;
  const ip = Array.isArray(ips) && ips.length > 0 ? text(ips[0]) : "<unknown>";
  const fields: [string, string][] = [
    ["id", text(event.auditID)],
    ["stage", text(event.stage)],
    ["ip", ip],
    ["method", text(event.verb)],
    ["user", username],
    ["groups", groups],
    ["as", asUser],
    ["asgroups", asGroups],
    ["user-agent", text(event.userAgent)],
    ["namespace", namespace],
    ["uri", text(event.requestURI)],
  ];
  let line = `${rfc3339Nano(event.requestReceivedTimestamp)} AUDIT:`;
  for (const [key, value] of fields) line += ` ${key}=${goQuote(value)}`;
  // `response="%s"`: digits or <deferred>, never escaped.
  return `${line} response="${response}"`;
}
