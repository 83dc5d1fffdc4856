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

/** One event as a sink branch buffers it. */
export interface BufferRecord {
  /** The event's `auditID` (for logs and dedup downstream). */
  readonly auditID: string;
  /** The event's `stage`. */
  readonly stage: string;
  /** Whether the policy changed the event's level (the bytes already have the new level). */
  readonly levelChanged: boolean;
  /** The event's bytes as the sink will send them. */
  readonly bytes: Uint8Array;
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
  const id = encoder.encode(record.auditID);
  const stage = encoder.encode(record.stage);
  if (id.length > 0xffff || stage.length > 0xff) {
    throw new RangeError(`auditID or stage too long (${id.length}, ${stage.length} bytes)`);
  }
  const payloadLen = FIXED_BYTES + id.length + stage.length + record.bytes.length;
  if (payloadLen > MAX_PAYLOAD_BYTES) {
    throw new RangeError(`record of ${payloadLen} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
  }
  const frame = new Uint8Array(HEADER_BYTES + payloadLen);
  const view = new DataView(frame.buffer);
  view.setUint32(0, payloadLen, true);
  const p = HEADER_BYTES;
  frame[p] = VERSION;
  frame[p + 1] = record.levelChanged ? 1 : 0;
  view.setUint16(p + 2, id.length, true);
  frame[p + 4] = stage.length;
  view.setFloat64(p + 8, appendedAt, true);
  frame.set(id, p + FIXED_BYTES);
  frame.set(stage, p + FIXED_BYTES + id.length);
  frame.set(record.bytes, p + FIXED_BYTES + id.length + stage.length);
  view.setUint32(4, frameCrc(frame, 0, payloadLen), true);
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
    auditID: decoder.decode(buf.subarray(s, s + idLen)),
    stage: decoder.decode(buf.subarray(s + idLen, s + idLen + stageLen)),
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
