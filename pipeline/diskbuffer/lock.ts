/**
 * The lock of a disk buffer's folder: one store writes a folder at a time, whether the other
 * would-be writer is a second daemon, a second config or a reload that gives two sinks the
 * same path. Two writers would interleave appends and cursors and lose events.
 *
 * The lock is an exclusive `flock` on the folder's `LOCK` file, taken without waiting. The
 * kernel releases it when its holder dies, so a SIGKILLed daemon leaves no stale lock behind
 * (a pid file would have to guess whether its pid is still the same process). The file holds
 * the holder's pid, only so that the next opener can name it.
 *
 * @module
 */
import { join } from "node:path";
import { DiskBufferError } from "./errors.ts";

/** The lock file's name in a buffer folder. */
export const LOCK_FILE = "LOCK";

/**
 * How long an opener keeps trying a lock held by someone else: `auditpipe buffer inspect`
 * holds a shared lock for an instant, which must not make a daemon's start fail.
 */
const RETRY_MS = 250;
const RETRY_STEP_MS = 25;

/**
 * The folder is locked by another holder: another daemon, or another sink (or the branch a
 * reload replaces, not yet closed) of this one.
 *
 * @example
 * ```ts
 * try {
 *   await FolderLock.acquire("/var/lib/auditpipe/siem");
 * } catch (err) {
 *   if (err instanceof BufferInUseError) console.error(err.message, err.pid);
 * }
 * ```
 */
export class BufferInUseError extends Error {
  override readonly name = "BufferInUseError";

  constructor(
    /** The buffer folder. */
    readonly path: string,
    /** The holder's pid, when its lock file names one. */
    readonly pid: number | undefined,
  ) {
    super(
      `disk buffer ${path} is in use by ${holderText(pid)}; a buffer folder serves one sink ` +
        "of one daemon: give each its own path",
    );
  }
}

function holderText(pid: number | undefined): string {
  if (pid === undefined) return "another process (its pid is not known yet)";
  return pid === Deno.pid
    ? `this process (pid ${pid}): another sink has the same path`
    : `pid ${pid}`;
}

/** The pid written in an open lock file, if it holds one. */
async function readPid(file: Deno.FsFile): Promise<number | undefined> {
  await file.seek(0, Deno.SeekMode.Start);
  const buf = new Uint8Array(32);
  let n = 0;
  for (let r; n < buf.length && (r = await file.read(buf.subarray(n))) !== null;) n += r;
  const pid = Number(new TextDecoder().decode(buf.subarray(0, n)).trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * An exclusive lock on a buffer folder, held until {@linkcode FolderLock.release} or the
 * process ends.
 *
 * @example
 * ```ts
 * const lock = await FolderLock.acquire("/var/lib/auditpipe/siem");
 * try {
 *   // ... write the buffer ...
 * } finally {
 *   lock.release();
 * }
 * ```
 */
export class FolderLock {
  #file: Deno.FsFile | undefined;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /**
   * Locks the folder `dir` (which exists) and writes this process's pid in its lock file.
   *
   * @throws {BufferInUseError} when another holder has it.
   * @throws {DiskBufferError} `io` when the lock file cannot be opened or written.
   */
  static async acquire(dir: string): Promise<FolderLock> {
    const path = join(dir, LOCK_FILE);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true, write: true, create: true });
    } catch (err) {
      throw new DiskBufferError("io", "lock", path, "cannot open the lock file", { cause: err });
    }
    try {
      let locked = await file.tryLock(true);
      for (const end = performance.now() + RETRY_MS; !locked && performance.now() < end;) {
        await new Promise((r) => setTimeout(r, RETRY_STEP_MS));
        locked = await file.tryLock(true);
      }
      if (!locked) throw new BufferInUseError(dir, await readPid(file).catch(() => undefined));
      const pid = new TextEncoder().encode(`${Deno.pid}\n`);
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
      for (let done = 0; done < pid.length;) done += await file.write(pid.subarray(done));
      return new FolderLock(file);
    } catch (err) {
      file.close();
      if (err instanceof BufferInUseError) throw err;
      throw new DiskBufferError("io", "lock", path, "cannot lock", { cause: err });
    }
  }

  /** Lets the folder go (closing the lock file releases the lock). Idempotent. */
  release(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}

/**
 * Who holds the lock of the buffer folder `dir`, changing nothing: `undefined` when nobody
 * does, else the holder's pid (`pid` undefined when its lock file names none). For readers
 * such as `auditpipe buffer inspect`, which read a buffer in use without locking it.
 *
 * @example
 * ```ts
 * const holder = await lockHolder("/var/lib/auditpipe/siem");
 * if (holder) console.log(`in use by pid ${holder.pid}`);
 * ```
 */
export async function lockHolder(dir: string): Promise<{ pid: number | undefined } | undefined> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(join(dir, LOCK_FILE), { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  try {
    // A shared lock is had only when nobody holds the exclusive one; it is let go at once.
    if (await file.tryLock(false)) return undefined;
    return { pid: await readPid(file) };
  } finally {
    file.close();
  }
}
