/**
 * The files a tail source holds open: each with its identity (device, inode), the name it
 * was opened under, the largest size seen and its first bytes (for the checkpoint's
 * fingerprint); and the set of them, so none is closed while a position still refers to it.
 *
 * @module
 */
import { FINGERPRINT_BYTES } from "../checkpoint.ts";

/**
 * A position in one open file.
 *
 * @example
 * ```ts
 * const start: Pos = { h, offset: 0 };
 * ```
 */
export interface Pos {
  readonly h: OpenFile;
  readonly offset: number;
}

/**
 * An open file and what we know of it; identity is (dev, ino).
 *
 * @example
 * ```ts
 * const h = await files.open("/var/log/audit.log");
 * const n = await h.readAt(buf, 0);
 * ```
 */
export class OpenFile {
  /** The file descriptor's position, to seek only when needed. */
  #pos = 0;
  /** The file's first bytes (up to FINGERPRINT_BYTES), for its fingerprint. */
  head: Uint8Array = new Uint8Array(0);
  closed = false;

  constructor(
    readonly file: Deno.FsFile,
    readonly dev: number,
    readonly ino: number,
    /** The name it was opened under (it may have been renamed since). */
    readonly name: string,
    /** The largest size seen. */
    public size: number,
  ) {}

  /** Reads at `offset` into `buf`; null at end of file. */
  async readAt(buf: Uint8Array, offset: number): Promise<number | null> {
    if (this.#pos !== offset) {
      await this.file.seek(offset, Deno.SeekMode.Start);
      this.#pos = offset;
    }
    const n = await this.file.read(buf);
    if (n !== null) this.#pos += n;
    return n;
  }

  /** Fills `buf` from `offset` as far as the file goes; returns the bytes read. */
  async readFull(buf: Uint8Array, offset: number): Promise<number> {
    let have = 0;
    while (have < buf.length) {
      const n = await this.readAt(buf.subarray(have), offset + have);
      if (n === null || n === 0) break;
      have += n;
    }
    return have;
  }

  /** Keeps the file's first bytes up to date from a read of `bytes` at `offset`. */
  noteHead(bytes: Uint8Array, offset: number): void {
    const have = this.head.length;
    if (have >= FINGERPRINT_BYTES || offset > have || offset + bytes.length <= have) return;
    const more = bytes.subarray(have - offset, Math.min(bytes.length, FINGERPRINT_BYTES - offset));
    const head = new Uint8Array(have + more.length);
    head.set(this.head);
    head.set(more, have);
    this.head = head;
  }

  /** Whether this is the file `other` describes. */
  is(other: { readonly dev: number; readonly ino: number }): boolean {
    return this.dev === other.dev && this.ino === other.ino;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.file.close();
    } catch { /* already closed */ }
  }
}

/**
 * Every file a tail source has open. A file just opened is "adopting" (a rotation's
 * successor being checked, a start-up file being positioned) until {@linkcode
 * OpenFiles.adopt}: work on it awaits, and a collection meanwhile must not close it.
 *
 * @example
 * ```ts
 * const files = new OpenFiles();
 * const h = await files.open(path);
 * files.adopt(h);
 * files.collect([cursor.h, commit.h]); // closes every other file
 * ```
 */
export class OpenFiles {
  readonly #files = new Set<OpenFile>();
  readonly #adopting = new Set<OpenFile>();

  /** Opens `path` for reading and reads its first bytes; throws what `Deno.open` throws. */
  async open(path: string): Promise<OpenFile> {
    const file = await Deno.open(path, { read: true });
    let h: OpenFile;
    try {
      const st = await file.stat();
      h = new OpenFile(file, st.dev, st.ino ?? 0, path, st.size);
      const head = new Uint8Array(FINGERPRINT_BYTES);
      h.head = head.slice(0, await h.readFull(head, 0));
    } catch (err) {
      file.close();
      throw err;
    }
    this.#files.add(h);
    this.#adopting.add(h);
    return h;
  }

  /** `h` is referred to from now on by positions; collections may close it once they don't. */
  adopt(h: OpenFile): void {
    this.#adopting.delete(h);
  }

  /** Closes `h` and forgets it. */
  release(h: OpenFile): void {
    h.close();
    this.#files.delete(h);
    this.#adopting.delete(h);
  }

  /** Closes every file neither in `used` nor being adopted. */
  collect(used: Iterable<OpenFile>): void {
    const keep = new Set(used);
    for (const h of this.#adopting) keep.add(h);
    for (const h of this.#files) if (!keep.has(h)) this.release(h);
  }

  /** Closes every file. */
  releaseAll(): void {
    for (const h of this.#files) this.release(h);
  }
}

/**
 * `Deno.stat`, with null for a path that does not exist.
 *
 * @example
 * ```ts
 * const st = await statOrNull("/var/log/audit.log");
 * ```
 */
export async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}
