/**
 * Reading the CLI's inputs: files and standard input one after another, each plain or gzip
 * (what kube-apiserver's `--audit-log-compress` makes of rotated backups, found by its magic
 * bytes, not its name), streamed chunk by chunk through {@linkcode RecordScanner} and
 * {@linkcode EventDecoder} into batches of envelopes. Memory stays bounded by one chunk and
 * the largest record, whatever the size of the inputs.
 *
 * @module
 */
import type { Envelope } from "../../pipeline/core/envelope.ts";
import { EventDecoder, type Reject } from "./events.ts";
import type { InputFile } from "./io.ts";
import { RecordScanner } from "./records.ts";

const GZIP_MAGIC_1 = 0x1f;
const GZIP_MAGIC_2 = 0x8b;

/**
 * Largest record (one event, or one line of JSON) read by default: far above what
 * kube-apiserver logs (its request body limit is 3 MiB), small enough to hold.
 *
 * @example
 * ```ts
 * new RecordScanner({ maxRecordBytes: MAX_RECORD_BYTES });
 * ```
 */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/**
 * One named, opened input.
 *
 * @example
 * ```ts
 * const input: NamedInput = { name: "audit.log", file: await io.openFile("audit.log") };
 * ```
 */
export interface NamedInput {
  /** As given on the command line (`<stdin>` for `-`): used in messages. */
  readonly name: string;
  readonly file: InputFile;
}

/**
 * The bytes of `file`, decompressed when they are gzip. `onRead` is told how many bytes of
 * the file itself (compressed or not) have been read, for progress.
 *
 * @example
 * ```ts
 * for await (const chunk of inputBytes(file, (n) => done += n)) scan(chunk);
 * ```
 */
export async function* inputBytes(
  file: InputFile,
  onRead: (bytes: number) => void,
): AsyncGenerator<Uint8Array> {
  const reader = file.stream.getReader();
  let first: Uint8Array = new Uint8Array(0);
  let ended = false;
  try {
    // The magic bytes may come in more than one read from a pipe.
    while (first.length < 2) {
      const r = await reader.read();
      if (r.done) {
        ended = true;
        break;
      }
      onRead(r.value.length);
      first = first.length === 0 ? r.value : concat(first, r.value);
    }
  } catch (err) {
    reader.releaseLock();
    await file.stream.cancel().catch(() => {});
    throw err;
  }
  const raw = new ReadableStream<Uint8Array>({
    start(c) {
      if (first.length > 0) c.enqueue(first);
      if (ended) c.close();
    },
    async pull(c) {
      const r = await reader.read();
      if (r.done) return c.close();
      onRead(r.value.length);
      c.enqueue(r.value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  const gzip = first[0] === GZIP_MAGIC_1 && first[1] === GZIP_MAGIC_2;
  const bytes = gzip
    ? raw.pipeThrough(new DecompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>)
    : raw;
  yield* bytes;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Options of {@linkcode readEvents}.
 *
 * @example
 * ```ts
 * const opts: ReadOptions = { reject, onReadError, onRead: (n) => progress.add(n) };
 * ```
 */
export interface ReadOptions {
  /** Told of every item that is not an event, as `FILE:LINE` and a reason. */
  readonly reject: Reject;
  /** Told when an input cannot be read to its end; reading goes on with the next one. */
  readonly onReadError: (name: string, err: Error) => void;
  /** Told of bytes read from the inputs themselves (before decompression). */
  readonly onRead?: (bytes: number) => void;
  readonly maxRecordBytes?: number;
}

/**
 * The events of `inputs`, in order, in batches (those decoded from one chunk of input; empty
 * batches are left out).
 *
 * @example
 * ```ts
 * for await (const batch of readEvents(inputs, opts)) for (const env of batch) use(env.event);
 * ```
 */
export async function* readEvents(
  inputs: readonly NamedInput[],
  opts: ReadOptions,
): AsyncGenerator<Envelope[]> {
  const max = opts.maxRecordBytes ?? MAX_RECORD_BYTES;
  const onRead = opts.onRead ?? (() => {});
  for (const { name, file } of inputs) {
    const scanner = new RecordScanner({ maxRecordBytes: max });
    const events = new EventDecoder(name, max, opts.reject);
    const chunks = inputBytes(file, onRead);
    for (;;) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await chunks.next();
      } catch (err) {
        // A damaged gzip backup or a failing disk: what was read counts, the rest is lost.
        opts.onReadError(name, err as Error);
        break;
      }
      if (next.done) break;
      const batch: Envelope[] = [];
      for (const s of scanner.push(next.value)) events.decode(s, batch);
      if (batch.length > 0) yield batch;
    }
    const batch: Envelope[] = [];
    for (const s of scanner.end()) events.decode(s, batch);
    if (batch.length > 0) yield batch;
  }
}
