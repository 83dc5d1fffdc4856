/**
 * The worker behind {@linkcode LineHasher}: SHA-256 of each line of a block, off the thread
 * that writes the log. Receives `{ buf, lens }` (the lines back to back and their lengths),
 * answers with their hex digests, concatenated, in the order received.
 *
 * @module
 */
import { lineDigest } from "./format.ts";

/** One block of lines, as posted to the worker. */
interface Block {
  readonly buf: ArrayBuffer;
  readonly lens: readonly number[];
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Block>) => void) | null;
  postMessage(message: string): void;
};

scope.onmessage = (e) => {
  const bytes = new Uint8Array(e.data.buf);
  const out: string[] = new Array(e.data.lens.length);
  let off = 0;
  for (let i = 0; i < out.length; i++) {
    const len = e.data.lens[i];
    out[i] = lineDigest(bytes.subarray(off, off + len));
    off += len;
  }
  scope.postMessage(out.join(""));
};
