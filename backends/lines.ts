/**
 * A batch of events as the lines the log and stdout sinks write: one buffer holding every
 * line, so a batch goes out in one write call, and a view of each line in it, so a rotating
 * file can still keep whole lines together without copying.
 *
 * @module
 */
import { jsonSize, writeJson } from "../pipeline/core/encode.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import { legacyLine } from "./legacy.ts";

/** An output format of the log and stdout sinks: kube-apiserver's `--audit-log-format`. */
export type Format = "json" | "legacy";

/**
 * A batch encoded as lines.
 *
 * @example
 * ```ts
 * const { bytes, lines }: EncodedLines = encodeLines(batch, "legacy");
 * ```
 */
export interface EncodedLines {
  /** Every line, each ending in `\n`, back to back. */
  readonly bytes: Uint8Array;
  /** One view into `bytes` per envelope, in order, each with its `\n`. */
  readonly lines: Uint8Array[];
}

const encoder = new TextEncoder();
const NEWLINE = 0x0a;

/**
 * Encodes envelopes as lines: `json` is the event's top-level JSON document (its original
 * bytes when the envelope still has them, see `jsonBytes` and `writeJson`), `legacy` is kube-apiserver's
 * legacy line; either followed by `\n`.
 *
 * @example
 * ```ts
 * const { bytes, lines } = encodeLines(batch, "json");
 * await file.write(bytes); // lines[i] is the i-th event's line inside bytes
 * ```
 */
export function encodeLines(items: readonly Envelope[], format: Format): EncodedLines {
  if (format === "json") return encodeJsonLines(items);
  const bodies = items.map((e) => encoder.encode(legacyLine(e.event)));
  let total = 0;
  for (const b of bodies) total += b.length + 1;
  const bytes = new Uint8Array(total);
  const lines: Uint8Array[] = new Array(bodies.length);
  let off = 0;
  for (let i = 0; i < bodies.length; i++) {
    const start = off;
    bytes.set(bodies[i], off);
    off += bodies[i].length;
    bytes[off++] = NEWLINE;
    lines[i] = bytes.subarray(start, off);
  }
  return { bytes, lines };
}

/** JSON lines written straight into one buffer: events that came as bytes are copied once. */
function encodeJsonLines(items: readonly Envelope[]): EncodedLines {
  let total = 0;
  for (const e of items) total += jsonSize(e);
  const bytes = new Uint8Array(total);
  const lines: Uint8Array[] = new Array(items.length);
  let off = 0;
  for (let i = 0; i < items.length; i++) {
    const start = off;
    off = writeJson(items[i], bytes, off);
    bytes[off++] = NEWLINE;
    lines[i] = bytes.subarray(start, off);
  }
  return { bytes, lines };
}
