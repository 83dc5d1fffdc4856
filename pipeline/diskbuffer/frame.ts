/**
 * The on-disk record format: a frame is `length (u32 LE) | crc (u32 LE) | payload`, where the
 * CRC-32 covers the length bytes and the payload, so a zeroed or torn region never reads as a
 * record. The payload holds what a sink needs besides the event's bytes.
 *
 * Payload: `version (u8) | flags (u8, bit 0: level changed) | auditID length (u16 LE) |
 * stage length (u8) | 3 reserved bytes | appendedAt ms (f64 LE) | auditID | stage | event`.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { AUDIT_API_VERSION } from "../core/event.ts";

/** One event as a sink branch buffers it. */
export interface BufferRecord {
  /** The event's `auditID` (for logs and dedup downstream). */
  readonly auditID: string;
  /** The event's `stage`. */
  readonly stage: string;
  /** Whether the policy changed the event's level (the bytes already have the new level). */
  readonly levelChanged: boolean;
  /** The event's bytes as the sink will send them (its top-level JSON document). */
  readonly bytes: Uint8Array;
  /**
   * The same document as `EventList` item bytes (`{"level":...}`, without `kind` and
   * `apiVersion`), when the event came so: the frame is then written from it and `bytes` is
   * not read, which saves a copy of every webhook event before it is framed.
   */
  readonly item?: Uint8Array;
}

/** A record read back, with when it was appended (ms since the epoch). */
export interface DecodedRecord extends BufferRecord {
  readonly appendedAt: number;
}

/** Bytes before the payload. */
export const HEADER_BYTES = 8;
/** Bytes of the payload before the auditID. */
const FIXED_BYTES = 16;
const VERSION = 1;
/** The largest payload accepted, so a flipped length byte is not read as a 4 GB record. */
export const MAX_PAYLOAD_BYTES = 256 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** What an item's bytes lack of the top-level document: `{"kind":...,"apiVersion":...` + `,`. */
const ITEM_PREFIX = encoder.encode(`{"kind":"Event","apiVersion":"${AUDIT_API_VERSION}",`);

/** Bytes of `record`'s top-level document. */
function docLength(record: BufferRecord): number {
  return record.item !== undefined
    ? ITEM_PREFIX.length + record.item.length - 1
    : record.bytes.length;
}

/** Writes `record`'s top-level document at `out[at]`. */
function writeDoc(record: BufferRecord, out: Uint8Array, at: number): void {
  if (record.item === undefined) {
    out.set(record.bytes, at);
    return;
  }
  // `{"kind":"Event","apiVersion":"audit.k8s.io/v1",` + the item's members (after its `{`).
  out.set(ITEM_PREFIX, at);
  out.set(record.item.subarray(1), at + ITEM_PREFIX.length);
}

/** UTF-8 length of `s`, counting without encoding when it is ASCII (auditIDs and stages are). */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) return encoder.encode(s).length;
  }
  return s.length;
}

/** Writes `s` (of UTF-8 length `len`) at `out[at]`. */
function writeString(s: string, len: number, out: Uint8Array, at: number): void {
  if (len === s.length) {
    for (let i = 0; i < len; i++) out[at + i] = s.charCodeAt(i);
  } else {
    encoder.encodeInto(s, out.subarray(at, at + len));
  }
}

function readString(buf: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c > 0x7f) return decoder.decode(buf.subarray(start, end));
    s += String.fromCharCode(c);
  }
  return s;
}

/** A record's frame size, measured once and kept with it until it is written. */
export interface SizedRecord {
  readonly record: BufferRecord;
  readonly idLen: number;
  readonly stageLen: number;
  /** Bytes of the whole frame. */
  readonly size: number;
}

/**
 * Measures `record`'s frame, refusing one that cannot be framed.
 *
 * @throws {RangeError} when the auditID, stage or whole record is too long.
 * @example
 * ```ts
 * const sized = sizeFrame(record);
 * const out = new Uint8Array(sized.size);
 * writeFrame(sized, Date.now(), out, 0);
 * ```
 */
export function sizeFrame(record: BufferRecord): SizedRecord {
  const idLen = utf8Length(record.auditID);
  const stageLen = utf8Length(record.stage);
  if (idLen > 0xffff || stageLen > 0xff) {
    throw new RangeError(`auditID or stage too long (${idLen}, ${stageLen} bytes)`);
  }
  const payloadLen = FIXED_BYTES + idLen + stageLen + docLength(record);
  if (payloadLen > MAX_PAYLOAD_BYTES) {
    throw new RangeError(`record of ${payloadLen} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
  }
  return { record, idLen, stageLen, size: HEADER_BYTES + payloadLen };
}

/**
 * Writes the frame of `sized`, appended at `appendedAt` (ms since the epoch), at `out[at]`
 * (`sized.size` bytes), straight into the buffer that goes to disk.
 *
 * @example
 * ```ts
 * writeFrame(sizeFrame(record), Date.now(), out, 0);
 * ```
 */
export function writeFrame(
  sized: SizedRecord,
  appendedAt: number,
  out: Uint8Array,
  at: number,
): void {
  const { record, idLen, stageLen, size } = sized;
  const payloadLen = size - HEADER_BYTES;
  const view = new DataView(out.buffer, out.byteOffset + at, HEADER_BYTES + FIXED_BYTES);
  view.setUint32(0, payloadLen, true);
  const p = at + HEADER_BYTES;
  out[p] = VERSION;
  out[p + 1] = record.levelChanged ? 1 : 0;
  view.setUint16(HEADER_BYTES + 2, idLen, true);
  out[p + 4] = stageLen;
  out[p + 5] = out[p + 6] = out[p + 7] = 0;
  view.setFloat64(HEADER_BYTES + 8, appendedAt, true);
  writeString(record.auditID, idLen, out, p + FIXED_BYTES);
  writeString(record.stage, stageLen, out, p + FIXED_BYTES + idLen);
  writeDoc(record, out, p + FIXED_BYTES + idLen + stageLen);
  view.setUint32(4, frameCrc(out, at, payloadLen), true);
}

/**
 * The frame of `record`, appended at `appendedAt` (ms since the epoch).
 *
 * @example
 * ```ts
 * const frame = encodeFrame({ auditID: "a", stage: "ResponseComplete", levelChanged: false,
 *   bytes: new TextEncoder().encode("{}") }, Date.now());
 * ```
 */
export function encodeFrame(record: BufferRecord, appendedAt: number): Uint8Array {
  const sized = sizeFrame(record);
  const frame = new Uint8Array(sized.size);
  writeFrame(sized, appendedAt, frame, 0);
  return frame;
}

function frameCrc(buf: Uint8Array, at: number, payloadLen: number): number {
  const lenCrc = crc32(buf.subarray(at, at + 4));
  return crc32(buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + payloadLen), lenCrc) >>> 0;
}

/** What {@linkcode checkFrame} found at an offset. */
export type FrameCheck =
  | { readonly kind: "ok"; readonly payloadLen: number }
  | { readonly kind: "short"; readonly need: number }
  | { readonly kind: "bad"; readonly reason: string };

/**
 * Checks the frame starting at `buf[at]` with `avail` bytes available there: `short` when more
 * bytes are needed to tell (`need` in all), `bad` with a reason, or `ok` with its length.
 *
 * @example
 * ```ts
 * checkFrame(frame, 0, frame.length); // { kind: "ok", payloadLen: frame.length - 8 }
 * ```
 */
export function checkFrame(buf: Uint8Array, at: number, avail: number): FrameCheck {
  if (avail < HEADER_BYTES) return { kind: "short", need: HEADER_BYTES };
  const view = new DataView(buf.buffer, buf.byteOffset + at, HEADER_BYTES);
  const len = view.getUint32(0, true);
  if (len < FIXED_BYTES || len > MAX_PAYLOAD_BYTES) {
    return { kind: "bad", reason: `invalid length ${len}` };
  }
  if (avail < HEADER_BYTES + len) return { kind: "short", need: HEADER_BYTES + len };
  if (frameCrc(buf, at, len) !== view.getUint32(4, true)) {
    return { kind: "bad", reason: "CRC mismatch" };
  }
  const p = at + HEADER_BYTES;
  if (buf[p] !== VERSION) return { kind: "bad", reason: `unknown record version ${buf[p]}` };
  const pv = new DataView(buf.buffer, buf.byteOffset + p, FIXED_BYTES);
  if (FIXED_BYTES + pv.getUint16(2, true) + buf[p + 4] > len) {
    return { kind: "bad", reason: "field lengths exceed the record" };
  }
  return { kind: "ok", payloadLen: len };
}

/**
 * The record in a frame {@linkcode checkFrame} accepted; its bytes are copied out of `buf`.
 *
 * @example
 * ```ts
 * decodeFrame(frame, 0, frame.length - 8).auditID; // "a"
 * ```
 */
export function decodeFrame(buf: Uint8Array, at: number, payloadLen: number): DecodedRecord {
  const p = at + HEADER_BYTES;
  const view = new DataView(buf.buffer, buf.byteOffset + p, FIXED_BYTES);
  const idLen = view.getUint16(2, true);
  const stageLen = buf[p + 4];
  const s = p + FIXED_BYTES;
  return {
    auditID: readString(buf, s, s + idLen),
    stage: readString(buf, s + idLen, s + idLen + stageLen),
    levelChanged: (buf[p + 1] & 1) === 1,
    appendedAt: view.getFloat64(8, true),
    bytes: buf.slice(s + idLen + stageLen, p + payloadLen),
  };
}

/**
 * When the frame at `buf[at]` was appended, without decoding the rest (at least
 * `HEADER_BYTES + 16` bytes must be there).
 *
 * @example
 * ```ts
 * frameAppendedAt(frame, 0); // ms since the epoch
 * ```
 */
export function frameAppendedAt(buf: Uint8Array, at: number): number {
  return new DataView(buf.buffer, buf.byteOffset + at + HEADER_BYTES + 8, 8).getFloat64(0, true);
}

/** Bytes needed by {@linkcode frameAppendedAt}. */
export const APPENDED_AT_BYTES = HEADER_BYTES + FIXED_BYTES;
