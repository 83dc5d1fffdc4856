/**
 * Reading a webhook request's body within a size limit: plain or gzip, into one buffer of
 * the body's size.
 *
 * @module
 */

/**
 * A body that cannot be taken, with the HTTP status that says why.
 *
 * @example
 * ```ts
 * try { await readBody(req, max); } catch (e) { if (e instanceof BodyError) answer(e.status); }
 * ```
 */
export class BodyError extends Error {
  constructor(readonly status: 400 | 413 | 415, message: string) {
    super(message);
  }
}

/**
 * The body of `req`, at most `max` bytes after decompression: plain, or gzip as
 * kube-apiserver may send it. Throws {@linkcode BodyError} with the status to answer.
 *
 * @example
 * ```ts
 * const bytes = await readBody(request, 12 * 1024 * 1024);
 * ```
 */
export async function readBody(req: Request, max: number): Promise<Uint8Array> {
  const enc = (req.headers.get("content-encoding") ?? "identity").toLowerCase();
  if (enc === "identity") return await readIdentity(req, max);
  if (enc !== "gzip") throw new BodyError(415, `unsupported Content-Encoding ${enc}`);
  const body = req.body;
  if (!body) return new Uint8Array();
  // Decompressed size is bounded too, so a small gzip bomb cannot take the memory.
  let seen = 0;
  const limited = body.pipeThrough(new DecompressionStream("gzip")).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(part, ctl) {
        seen += part.length;
        if (seen > max) throw new BodyError(413, `decompressed body exceeds ${max} bytes`);
        ctl.enqueue(part);
      },
    }),
  );
  try {
    return new Uint8Array(await new Response(limited).arrayBuffer());
  } catch (err) {
    if (err instanceof BodyError) throw err;
    throw new BodyError(400, `body is not valid gzip: ${(err as Error).message}`);
  }
}

/**
 * Reads a plain body. With a Content-Length (kube-apiserver sends one) the bytes go into one
 * buffer of that size: straight from the connection when the body is a byte stream, else
 * chunk by chunk, each chunk's memory released as soon as it is copied. No chunks wait to be
 * joined, so a body costs its size once, and the events kept from it can stay views into it
 * (see `compact.ts`).
 */
async function readIdentity(req: Request, max: number): Promise<Uint8Array> {
  const length = Number(req.headers.get("content-length") ?? NaN);
  const body = req.body;
  if (!body) return new Uint8Array();
  if (!Number.isSafeInteger(length) || length > max) {
    return new Uint8Array(await req.arrayBuffer());
  }
  let byob: ReadableStreamBYOBReader | null = null;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // Deno hands a body that had fully arrived as a plain stream of chunks.
  }
  const out = byob ? await readInto(byob, length) : await copyInto(body.getReader(), length);
  if (out.byteLength < length) {
    throw new BodyError(400, `body ended after ${out.byteLength} of ${length} bytes`);
  }
  return out;
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
    throw new BodyError(400, `body is longer than its Content-Length ${length}`);
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
      throw new BodyError(400, `body is longer than its Content-Length ${length}`);
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
