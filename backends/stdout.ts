/**
 * The stdout sink: events as lines on standard output (kube-apiserver's
 * `--audit-log-path=-`), in `json` or `legacy` format.
 *
 * @module
 */
import type { Format } from "./lines.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import type { Sink, SinkContext } from "./sink.ts";
import { encodeLines } from "./lines.ts";
import { type ByteWriter, writeAll } from "../pipeline/core/bytes.ts";
import { errorMessage } from "../pipeline/core/errors.ts";

export type { ByteWriter } from "../pipeline/core/bytes.ts";

/**
 * Per-writer queues, shared by every sink writing to the same writer (a stdout sink and a
 * log sink with path `-`), so one batch is written completely before the next one starts
 * and lines from different sinks never interleave.
 */
const queues = new WeakMap<ByteWriter, Promise<unknown>>();

/**
 * Writers a write failed on part way through, so their output ends in a partial line. A
 * stream cannot be cut back: the next write ends that line first, so its own lines are
 * whole.
 */
const torn = new WeakSet<ByteWriter>();
const NEWLINE = new Uint8Array([0x0a]);

/**
 * Writes all of `p` to `out`, looping on partial writes, after every earlier call for the
 * same writer has finished. After a call that failed part way, the next call first ends the
 * partial line with `\n` (and fails without writing `p` if it cannot).
 *
 * @example
 * ```ts
 * await writeWhole(Deno.stdout, new TextEncoder().encode("one line\n"));
 * ```
 */
export function writeWhole(out: ByteWriter, p: Uint8Array): Promise<void> {
  const run = (queues.get(out) ?? Promise.resolve()).then(async () => {
    if (torn.has(out)) {
      await writeMarkingTorn(out, NEWLINE);
      torn.delete(out);
    }
    await writeMarkingTorn(out, p);
  });
  queues.set(out, run.catch(() => {}));
  return run;
}

/** {@linkcode writeAll}, remembering a writer left with part of `p` written. */
async function writeMarkingTorn(out: ByteWriter, p: Uint8Array): Promise<void> {
  let off = 0;
  try {
    await writeAll(out, p, (n) => off += n);
  } catch (e) {
    if (off > 0) torn.add(out);
    throw e;
  }
}

/**
 * Creates a sink writing each batch to `out` (default `Deno.stdout`) as one buffer of whole
 * lines, written fully before anything else goes to `out`. Closing waits for pending writes
 * and leaves `out` open.
 *
 * @example
 * ```ts
 * const sink = createStdoutSink({ format: "legacy" }, ctx);
 * await sink.write(envelopes);
 * await sink.close();
 * ```
 */
export function createStdoutSink(
  cfg: { readonly format: Format },
  _ctx: SinkContext,
  out: ByteWriter = Deno.stdout,
): Sink {
  let closed = false;
  let last: Promise<unknown> = Promise.resolve();
  return {
    write(items: readonly Envelope[]): Promise<void> {
      if (closed) return Promise.reject(new Error("write stdout: sink closed"));
      if (items.length === 0) return Promise.resolve();
      const { bytes } = encodeLines(items, cfg.format);
      const run = writeWhole(out, bytes).catch((e: unknown) => {
        throw new Error(`write stdout: ${errorMessage(e)}`, { cause: e });
      });
      last = run.catch(() => {});
      return run;
    },
    async close(): Promise<void> {
      closed = true;
      await last;
    },
  };
}
