/**
 * The disk buffer's typed errors: what failed, on which file, and whether the store is still
 * whole (it always is: a failed append is cut back to the last record boundary).
 *
 * @module
 */
import { errorText } from "../core/errors.ts";

/**
 * Why a disk buffer operation failed.
 * - `io`: the file system refused a read, write, fsync, truncate or rename (disk full,
 *   read-only, permission); the store is unchanged and the operation may be retried.
 * - `too_large`: one append is larger than `maxBytes` or a record larger than the frame limit;
 *   retrying cannot help.
 * - `closed`: the store was closed.
 *
 * Damage is not an error: open cuts it off, and a reader skips what went bad after open
 * (see `DiskBuffer.read`).
 */
export type DiskBufferErrorCode = "io" | "too_large" | "closed";

/**
 * A disk buffer failure, naming the operation and file.
 *
 * @example
 * ```ts
 * try {
 *   await store.append(records);
 * } catch (err) {
 *   if (err instanceof DiskBufferError && err.code === "io") log.warn(err.message);
 * }
 * ```
 */
export class DiskBufferError extends Error {
  override readonly name = "DiskBufferError";

  constructor(
    readonly code: DiskBufferErrorCode,
    /** What was being done: "write", "fsync", "truncate", "open", "cursor", "read", ... */
    readonly op: string,
    /** The file or folder concerned. */
    readonly path: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      `disk buffer ${op} ${path}: ${detail}` +
        (options?.cause !== undefined ? `: ${errorText(options.cause)}` : ""),
      options,
    );
  }
}
