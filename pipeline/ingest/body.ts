/**
 * Reading a webhook request's body within a size limit, enforced while it arrives: plain or
 * gzip, into one buffer of the body's size.
 *
 * @module
 */

/**
 * Why a body was refused, as counted under `auditpipe_source_rejected_total{reason}`.
 *
 * @example
 * ```ts
 * const reason: BodyRejectReason = "incomplete_body";
 * ```
 */
export type BodyRejectReason =
  | "too_large"
  | "incomplete_body"
  | "invalid_body"
  | "invalid_gzip"
  | "unsupported_encoding";

/**
 * A body that cannot be taken, with the HTTP status that says why, the reason it is counted
 * under, and a message fit for the client: it names the limit or the fault, never the
 * internal error behind it (that is the `cause`, for the daemon's log).
 *
 * @example
 * ```ts
 * try { await readBody(req, max); } catch (e) { if (e instanceof BodyError) answer(e.status); }
 * ```
 */
export class BodyError extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
    readonly reason: BodyRejectReason = status === 413
      ? "too_large"
      : status === 415
      ? "unsupported_encoding"
      : "invalid_body",
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What a request's body stream yields. */
type Bytes = Uint8Array<ArrayBuffer>;

const tooLarge = (max: number) => new BodyError(413, `body exceeds maxBodyBytes ${max}`);

/** The connection failed or closed before the body was complete. */
const incomplete = (length: number | null, cause?: unknown) =>
  new BodyError(
    400,
    length === null
      ? "request body ended before its last chunk"
      : "request body ended before its Content-Length",
    "incomplete_body",
    { cause },
  );

/**
 * The body of `req`, at most `max` bytes as sent and again after decompression: plain, or
 * gzip as kube-apiserver may send it. A Content-Length above `max` is refused before a byte
 * is read; otherwise bytes are counted as they arrive and reading stops at the limit, so a
 * body never costs more than `max` of memory. Throws {@linkcode BodyError} with the status to
 * answer.
 *
 * @example
 * ```ts
 * const bytes = await readBody(request, 12 * 1024 * 1024);
 * ```
 */
export async function readBody(req: Request, max: number): Promise<Uint8Array> {
  const enc = (req.headers.get("content-encoding") ?? "identity").toLowerCase();
  if (enc !== "identity" && enc !== "gzip") {
    await req.body?.cancel().catch(() => {});
    throw new BodyError(415, `unsupported Content-Encoding ${JSON.stringify(enc)}`);
  }
  const length = contentLength(req);
  if (length !== null && length > max) {
    await req.body?.cancel().catch(() => {});
    throw tooLarge(max);
  }
  const body = req.body;
  if (!body) return new Uint8Array();
  if (enc === "identity") return await readIdentity(body, length, max);
  // Decompressed size is bounded too, so a small gzip bomb cannot take the memory.
  let seen = 0;
  const limited = counted(body, length, max).pipeThrough(new DecompressionStream("gzip"))
    .pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(part, ctl) {
          seen += part.length;
          if (seen > max) throw tooLarge(max);
          ctl.enqueue(part);
        },
      }),
    );
  try {
    return new Uint8Array(await new Response(limited).arrayBuffer());
  } catch (err) {
    if (err instanceof BodyError) throw err;
    throw new BodyError(400, "request body is not valid gzip", "invalid_gzip", { cause: err });
  }
}

/** The Content-Length, or null when there is none (chunked) or it is not a number. */
function contentLength(req: Request): number | null {
  if (req.headers.has("transfer-encoding")) return null;
  const text = req.headers.get("content-length");
  if (text === null || !/^\d+$/.test(text.trim())) return null;
  const n = Number(text.trim());
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * `body` as it arrives, failing with 413 past `max` bytes and with "incomplete" when the
 * connection fails; the source stream is cancelled then, so nothing more is read.
 */
function counted(
  body: ReadableStream<Bytes>,
  length: number | null,
  max: number,
): ReadableStream<Bytes> {
  const reader = body.getReader();
  let seen = 0;
  return new ReadableStream<Bytes>({
    async pull(ctl) {
      let next: ReadableStreamReadResult<Bytes>;
      try {
        next = await reader.read();
      } catch (err) {
        throw incomplete(length, err);
      }
      if (next.done) {
        if (length !== null && seen < length) throw incomplete(length);
        return ctl.close();
      }
      seen += next.value.byteLength;
      if (seen > max) {
        await reader.cancel().catch(() => {});
        throw tooLarge(max);
      }
      ctl.enqueue(next.value);
    },
    cancel(reason) {
      return reader.cancel(reason).catch(() => {});
    },
  });
}

/**
 * Reads a plain body. With a Content-Length (kube-apiserver sends one) the bytes go into one
 * buffer of that size: straight from the connection when the body is a byte stream, else
 * chunk by chunk, each chunk's memory released as soon as it is copied. No chunks wait to be
 * joined, so a body costs its size once, and the events kept from it can stay views into it
 * (see `compact.ts`). Without one, chunks are counted against `max` as they arrive.
 */
async function readIdentity(
  body: ReadableStream<Bytes>,
  length: number | null,
  max: number,
): Promise<Uint8Array> {
  if (length === null) return await readCounted(body, max);
  let byob: ReadableStreamBYOBReader | null = null;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // Deno hands a body that had fully arrived as a plain stream of chunks.
  }
  let out: Uint8Array;
  try {
    out = byob ? await readInto(byob, length) : await copyInto(body.getReader(), length);
  } catch (err) {
    if (err instanceof BodyError) throw err;
    throw incomplete(length, err);
  }
  if (out.byteLength < length) throw incomplete(length);
  return out;
}

/**
 * A body without a Content-Length, its chunks counted against `max` as they arrive and
 * copied into a buffer that doubles as needed (never beyond `max`), each chunk released once
 * copied: a refused body costs at most `max` and its chunks, not twice that.
 */
async function readCounted(body: ReadableStream<Bytes>, max: number): Promise<Uint8Array> {
  const reader = body.getReader();
  let out = new Uint8Array(Math.min(max, 64 * 1024));
  let size = 0;
  for (;;) {
    let next: ReadableStreamReadResult<Bytes>;
    try {
      next = await reader.read();
    } catch (err) {
      throw incomplete(null, err);
    }
    if (next.done) break;
    const part = next.value;
    if (size + part.byteLength > max) {
      release(out);
      await reader.cancel().catch(() => {});
      throw tooLarge(max);
    }
    if (size + part.byteLength > out.byteLength) {
      const grown = new Uint8Array(Math.min(max, Math.max(size + part.byteLength, 2 * out.length)));
      grown.set(out.subarray(0, size));
      release(out);
      out = grown;
    }
    out.set(part, size);
    size += part.byteLength;
    release(part);
  }
  return out.subarray(0, size);
}

async function readInto(reader: ReadableStreamBYOBReader, length: number): Promise<Uint8Array> {
  let buffer = new ArrayBuffer(length);
  let offset = 0;
  while (offset < length) {
    const { value, done } = await reader.read(new Uint8Array(buffer, offset, length - offset));
    if (done) break;
    buffer = value.buffer as ArrayBuffer;
    offset += value.byteLength;
  }
  if (offset === length && !(await reader.read(new Uint8Array(1))).done) {
    await reader.cancel().catch(() => {});
    throw new BodyError(400, `request body is longer than its Content-Length ${length}`);
  }
  return new Uint8Array(buffer, 0, offset);
}

async function copyInto(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let offset = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (offset + value.byteLength > length) {
      await reader.cancel().catch(() => {});
      throw new BodyError(400, `request body is longer than its Content-Length ${length}`);
    }
    out.set(value, offset);
    offset += value.byteLength;
    release(value);
  }
  return out.subarray(0, offset);
}

/**
 * Frees a chunk's memory now rather than at the next collection, when the chunk is its whole
 * buffer; the caller vouches that nothing else looks at it. A burst of bodies otherwise holds
 * twice its size until the collector runs, which an idle daemon may not do for a long time.
 *
 * @example
 * ```ts
 * out.set(chunk, offset);
 * release(chunk);
 * ```
 */
export function release(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  if (!(buffer instanceof ArrayBuffer)) return;
  if (chunk.byteOffset !== 0 || chunk.byteLength !== buffer.byteLength) return;
  try {
    buffer.transfer(0);
  } catch { /* not detachable */ }
}
