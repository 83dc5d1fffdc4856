/**
 * Line digests computed on a worker thread. Hashing costs about 5 µs a line through
 * node:crypto (per-call overhead, whatever the API) while the log sink writes a line in about
 * 4 µs, so on the writing thread integrity would cost the sink most of its throughput
 * (bench/integrity.ts: 0.26 of it in batches of 400); here the writing thread only copies
 * the lines into a block (a memcpy) and posts a block per megabyte or checkpoint.
 *
 * @module
 */

/**
 * The worker: SHA-256 (hex) of each line of a block `{ buf, lens }` (the lines back to back
 * and their lengths), answered as one string, in the order received; the same digest as
 * `lineDigest` in `format.ts`. Inline, from a blob URL, because a worker loaded from a file
 * needs read permission on the program's own source, which the daemon's least permissions
 * (`auditpipe permissions`) do not grant.
 */
const WORKER_SOURCE = `
import { hash } from "node:crypto";
self.onmessage = (e) => {
  const bytes = new Uint8Array(e.data.buf);
  const lens = e.data.lens;
  const out = new Array(lens.length);
  let off = 0;
  for (let i = 0; i < lens.length; i++) {
    out[i] = hash("sha256", bytes.subarray(off, off + lens[i]), "hex");
    off += lens[i];
  }
  self.postMessage(out.join(""));
};
`;

/** Bytes gathered before a block goes to the worker. */
const BLOCK = 1 << 20;
/** Hex digits of one digest. */
const HEX = 64;

/**
 * Hashes lines in order on a worker; `take(n)` resolves with the next `n` digests.
 *
 * @example
 * ```ts
 * const hasher = new LineHasher();
 * hasher.push(line);
 * const digests = await hasher.take(1); // 64 hex digits
 * hasher.close();
 * ```
 */
export class LineHasher {
  readonly #worker: Worker;
  #block = new Uint8Array(BLOCK);
  #used = 0;
  #lens: number[] = [];
  /** Digests received and not taken yet. */
  #ready: string[] = [];
  #readyLines = 0;
  #wakers: (() => void)[] = [];
  #failed: Error | null = null;

  constructor() {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    this.#worker = new Worker(url, { type: "module" });
    URL.revokeObjectURL(url);
    this.#worker.onmessage = (e: MessageEvent<string>) => {
      this.#ready.push(e.data);
      this.#readyLines += e.data.length / HEX;
      this.#wake();
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#failed = new Error(`line hasher failed: ${e.message}`);
      this.#wake();
    };
  }

  #wake(): void {
    const w = this.#wakers;
    this.#wakers = [];
    for (const f of w) f();
  }

  /**
   * Queues a line (copied now: the caller may reuse its buffer).
   *
   * @example
   * ```ts
   * hasher.push(new TextEncoder().encode("{}\n"));
   * ```
   */
  push(line: Uint8Array): void {
    if (this.#used + line.length > this.#block.length) {
      this.#post();
      if (line.length > this.#block.length) this.#block = new Uint8Array(line.length);
    }
    this.#block.set(line, this.#used);
    this.#used += line.length;
    this.#lens.push(line.length);
    if (this.#used >= BLOCK) this.#post();
  }

  #post(): void {
    if (this.#lens.length === 0) return;
    const buf = this.#block.buffer.slice(0, this.#used);
    this.#worker.postMessage({ buf, lens: this.#lens }, [buf]);
    this.#used = 0;
    this.#lens = [];
  }

  /**
   * The digests of the next `n` lines pushed, concatenated (64 hex digits each).
   *
   * @example
   * ```ts
   * const all = await hasher.take(3); // 192 hex digits
   * ```
   */
  async take(n: number): Promise<string> {
    if (n === 0) return "";
    this.#post();
    while (this.#readyLines < n) {
      if (this.#failed) throw this.#failed;
      await new Promise<void>((r) => this.#wakers.push(r));
    }
    const joined = this.#ready.join("");
    const out = joined.slice(0, n * HEX);
    const rest = joined.slice(n * HEX);
    this.#ready = rest === "" ? [] : [rest];
    this.#readyLines -= n;
    return out;
  }

  /**
   * Stops the worker.
   *
   * @example
   * ```ts
   * hasher.close();
   * ```
   */
  close(): void {
    this.#worker.terminate();
    this.#failed ??= new Error("line hasher closed");
    this.#wake();
  }
}
