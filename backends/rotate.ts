/**
 * A size-rotated append-only file with lumberjack's semantics (natefinch/lumberjack v2.2.1,
 * as kube-apiserver uses it for `--audit-log-path`): the rotation rule, the backup names and
 * the cleanup of old backups (count, age, gzip) are the same, so tools that manage
 * kube-apiserver's audit logs manage ours.
 *
 * @module
 */
import { concatBytes, writeAll } from "../pipeline/core/bytes.ts";
import { errorMessage } from "../pipeline/core/errors.ts";
import { dirname } from "node:path";
import { Backups, type PrunedBackup } from "./backups.ts";
import { type Clock, systemClock } from "../pipeline/core/clock.ts";
import { type Logger, silentLogger } from "../pipeline/core/log.ts";
import type { FileReopenReason } from "../pipeline/core/stats.ts";

const MEGABYTE = 1024 * 1024;

/**
 * How a {@linkcode RotatingFile} rotates and cleans up; the log sink fills it from its
 * `rotate` config.
 *
 * @example
 * ```ts
 * const opts: RotatingFileOptions = { maxSize: 100, maxBackup: 100, maxAge: 366, compress: false };
 * ```
 */
export interface RotatingFileOptions {
  /** Megabytes (MiB) a file may reach before it is rotated; 0 = never rotate. */
  readonly maxSize: number;
  /** Backups to keep, a file and its `.gz` counting once; 0 = no limit. */
  readonly maxBackup: number;
  /** Days to keep backups, by the time in their name; 0 = no limit. */
  readonly maxAge: number;
  /** Whether to gzip backups. */
  readonly compress: boolean;
  /** Source of the time in backup names and of "now" for `maxAge`. */
  readonly clock?: Clock;
  /** Where cleanup failures are reported (cleanup runs in the background). */
  readonly log?: Logger;
  /** Mode of a file created where none was (default 0o600); rotation keeps the old mode. */
  readonly mode?: number;
  /** Overrides `maxSize` with a limit in bytes, so tests need not write megabytes. */
  readonly maxSizeBytes?: number;
  /** fsync a file before closing it for rotation, reopen or close. */
  readonly syncBeforeClose?: boolean;
  /**
   * Milliseconds between checks that the path still names the open file (default 1000;
   * 0 = only on write errors). A file removed or replaced under the writer is reopened.
   */
  readonly checkInterval?: number;
  /** Called after the file was found removed or replaced and was reopened, for a metric. */
  readonly onReopen?: (reason: FileReopenReason) => void;
  /**
   * Called after records were appended to the file, in order, with the records each call
   * wrote (a tamper-evident chain follows the lines this way, see `backends/integrity/`).
   */
  readonly onAppend?: (records: readonly Uint8Array[]) => void;
  /**
   * Awaited after a rotation moved the file to `backup` and created an empty one at the path,
   * before anything is written to it.
   */
  readonly onRotated?: (backup: string) => Promise<void>;
  /**
   * Awaited after the file was closed and opened again at the path (`reopen`, or found
   * removed or replaced), before anything is written to it.
   */
  readonly onReopened?: () => Promise<void>;
  /**
   * A suffix of sidecar files kept beside each backup (`<backup>.chain`): cleanup removes a
   * backup's sidecar with it.
   */
  readonly sidecarSuffix?: string;
  /**
   * Awaited by cleanup before it removes backups (`maxBackup`, `maxAge`), oldest first, so a
   * tamper-evident chain can record the removal; when it throws, cleanup keeps them this time.
   */
  readonly onPrune?: (backups: readonly PrunedBackup[]) => Promise<void>;
  /** Opens files; a test seam for short writes and full disks (default `Deno.open`). */
  readonly openFile?: (path: string, options: Deno.OpenOptions) => Promise<LogFileHandle>;
}

/**
 * The calls a {@linkcode RotatingFile} makes on an open file: what `Deno.FsFile` has.
 *
 * @example
 * ```ts
 * const handle: LogFileHandle = await Deno.open("audit.log", { append: true });
 * ```
 */
export interface LogFileHandle {
  /** Writes some of `p` and resolves with how many bytes it took. */
  write(p: Uint8Array): Promise<number>;
  truncate(len?: number): Promise<void>;
  sync(): Promise<void>;
  stat(): Promise<Deno.FileInfo>;
  close(): void;
}

const NEWLINE = new Uint8Array([0x0a]);

/** Joins records; views that lie back to back in one buffer are joined without a copy. */
function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const first = parts[0];
  let adjacent = true;
  for (let k = 1; k < parts.length && adjacent; k++) {
    const prev = parts[k - 1];
    adjacent = parts[k].buffer === first.buffer &&
      parts[k].byteOffset === prev.byteOffset + prev.byteLength;
  }
  if (adjacent) return new Uint8Array(first.buffer, first.byteOffset, total);
  return concatBytes(parts, total);
}

/**
 * An append-only file rotated by size, as lumberjack rotates kube-apiserver's audit log.
 *
 * - Before a write, if the file's size plus the write's length exceeds the limit, the file
 *   is rotated first; a write longer than the limit fails with
 *   `write length N exceeds maximum file size M`. The first write after opening (or
 *   reopening) rotates an existing file already at size + length >= limit.
 * - Rotation renames the file to `<name>-<UTC 2006-01-02T15-04-05.000><ext>` and creates a
 *   new one with the old file's mode. Unlike lumberjack, a name already taken (two rotations
 *   in one millisecond) moves the stamp on by a millisecond instead of overwriting a backup.
 * - After opening and after every rotation a background cleanup ranks backups newest first
 *   by the time in their name, keeps at most `maxBackup`, removes those older than `maxAge`
 *   days and gzips the rest if `compress` is on. {@linkcode RotatingFile.idle} waits for it.
 *
 * A write that fails part way (a full disk) leaves no partial line: the file is cut back to
 * where the failed write call began, or, if that fails, the partial line is ended with `\n`;
 * until one of them works, nothing more is written to it.
 *
 * Every `checkInterval` and after a write error the path is checked to still name the open
 * file (device and inode). When the file was removed or replaced, it is closed, the path is
 * created again (with the old file's mode) if nothing is there, a warning is logged and
 * `onReopen` called; after a write error the write is then tried once more on the new file.
 *
 * Calls are serialized: a write never interleaves with a rotation or another write.
 *
 * @example
 * ```ts
 * const f = await RotatingFile.open("/var/log/audit/audit.log", {
 *   maxSize: 100, maxBackup: 10, maxAge: 30, compress: true,
 * });
 * await f.write(new TextEncoder().encode('{"kind":"Event"}\n'));
 * await f.sync();
 * await f.close();
 * ```
 */
export class RotatingFile {
  /** The path writes go to; backups are named after it in the same directory. */
  readonly path: string;
  readonly #dir: string;
  readonly #backups: Backups;
  readonly #max: number;
  readonly #opts: RotatingFileOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #mode: number;
  #file: LogFileHandle | null = null;
  #size = 0;
  /** Where the open file last ended at a line boundary, while it ends in a partial line. */
  #torn: number | null = null;
  #closed = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking = false;
  #checkFailing = false;
  #queue: Promise<unknown> = Promise.resolve();
  #milling: Promise<void> | null = null;
  #millAgain = false;

  private constructor(path: string, opts: RotatingFileOptions) {
    this.path = path;
    this.#dir = dirname(path);
    this.#backups = new Backups(path);
    const max = opts.maxSizeBytes ?? opts.maxSize * MEGABYTE;
    this.#max = max > 0 ? max : Infinity;
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.log ?? silentLogger;
    this.#mode = opts.mode ?? 0o600;
  }

  /**
   * Creates the parent directories (0700) and the file (mode, default 0600) if missing, as
   * kube-apiserver does at startup, and starts a cleanup pass. The file is opened for
   * appending on the first write, where the first-open rotation rule needs its length.
   *
   * @example
   * ```ts
   * const f = await RotatingFile.open("audit.log", {
   *   maxSize: 0, maxBackup: 0, maxAge: 0, compress: false,
   * });
   * ```
   */
  static async open(path: string, opts: RotatingFileOptions): Promise<RotatingFile> {
    const f = new RotatingFile(path, opts);
    await f.#ensureFile(f.#mode);
    f.#mill();
    const every = opts.checkInterval ?? 1000;
    if (every > 0) {
      f.#timer = setInterval(() => f.#scheduleCheck(), every);
      Deno.unrefTimer(f.#timer);
    }
    return f;
  }

  /**
   * Bytes in the current file as far as this writer knows; 0 before the first write.
   *
   * @example
   * ```ts
   * await f.write(bytes);
   * f.size; // >= bytes.length
   * ```
   */
  get size(): number {
    return this.#size;
  }

  /**
   * The rotation limit in bytes (`Infinity` when rotation is off).
   *
   * @example
   * ```ts
   * f.limit; // 104857600 for maxSize 100
   * ```
   */
  get limit(): number {
    return this.#max;
  }

  /**
   * Appends `bytes` with one write call, rotating first if they would not fit.
   *
   * @example
   * ```ts
   * await f.write(new TextEncoder().encode("line\n"));
   * ```
   */
  write(bytes: Uint8Array): Promise<void> {
    return this.#serial(async () => {
      if ((await this.#writeRecords([bytes])).length > 0) {
        throw new Error(`write length ${bytes.length} exceeds maximum file size ${this.#max}`);
      }
    });
  }

  /**
   * Appends records (whole lines) in order so that the files end up exactly as if each had
   * been written on its own, as kube-apiserver writes one event per call, while using as few
   * write calls as that allows: usually one. A record longer than the limit is skipped, the
   * others are written, and the call resolves with the indices of the skipped ones; an I/O
   * error rejects at once.
   *
   * @example
   * ```ts
   * const skipped = await f.writeRecords([line1, line2, line3]); // [] when all fit
   * ```
   */
  writeRecords(records: readonly Uint8Array[]): Promise<number[]> {
    return this.#serial(() => this.#writeRecords(records));
  }

  /**
   * fsyncs the current file, if one is open.
   *
   * @example
   * ```ts
   * await f.write(bytes);
   * await f.sync();
   * ```
   */
  sync(): Promise<void> {
    return this.#serial(async () => {
      if (this.#file) await this.#file.sync();
    });
  }

  /**
   * Closes the file and creates it again if it is gone, for SIGHUP after logrotate moved
   * it away; the next write appends to whatever file is at the path then.
   *
   * @example
   * ```ts
   * Deno.addSignalListener("SIGHUP", () => void f.reopen());
   * ```
   */
  reopen(): Promise<void> {
    return this.#serial(async () => {
      this.#checkOpen();
      await this.#closeFile();
      await this.#ensureFile(this.#mode);
      this.#mill();
      await this.#opts.onReopened?.();
    });
  }

  /**
   * Forces a rotation now, as lumberjack's `Rotate`.
   *
   * @example
   * ```ts
   * await f.rotate();
   * ```
   */
  rotate(): Promise<void> {
    return this.#serial(async () => {
      this.#checkOpen();
      await this.#rotate();
    });
  }

  /**
   * Resolves when no cleanup pass is running or queued.
   *
   * @example
   * ```ts
   * await f.write(big); // rotates
   * await f.idle();     // backups are counted, aged and compressed now
   * ```
   */
  async idle(): Promise<void> {
    while (this.#milling) await this.#milling;
  }

  /**
   * Closes the file and waits for a running cleanup. Later calls reject.
   *
   * @example
   * ```ts
   * await f.close();
   * ```
   */
  close(): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) return;
      this.#closed = true;
      clearInterval(this.#timer);
      await this.#closeFile();
      await this.idle();
    });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error("file already closed");
  }

  async #writeRecords(records: readonly Uint8Array[]): Promise<number[]> {
    this.#checkOpen();
    const max = this.#max;
    const skipped: number[] = [];
    let retried = false;
    for (let i = 0; i < records.length;) {
      const len = records[i].length;
      if (len > max) {
        skipped.push(i++);
        continue;
      }
      if (!this.#file) await this.#openExistingOrNew(len);
      if (this.#torn !== null) await this.#repair();
      if (this.#size + len > max) await this.#rotate();
      // Take every following record that would have gone into this same file by itself.
      let j = i + 1;
      let total = len;
      while (j < records.length && this.#size + total + records[j].length <= max) {
        total += records[j].length;
        j++;
      }
      const taken = records.slice(i, j);
      try {
        await this.#append(concat(taken, total));
      } catch (e) {
        // A file removed under us can fail writes (ESTALE on NFS): try once on a new one.
        if (!retried && await this.#reopenIfGone().catch(() => false)) {
          retried = true;
          continue;
        }
        throw e;
      }
      this.#opts.onAppend?.(taken);
      i = j;
    }
    return skipped;
  }

  /** Writes `bytes` whole, or leaves the file ending where it did (see `#repair`). */
  async #append(bytes: Uint8Array): Promise<void> {
    const start = this.#size;
    try {
      await writeAll(this.#file!, bytes, (n) => this.#size += n);
    } catch (e) {
      if (this.#size !== start) {
        this.#torn = start;
        await this.#repair().catch((r) => {
          this.#log.error("log file ends in a partial line; later writes will retry to end it", {
            path: this.path,
            error: r,
          });
        });
      }
      throw e;
    }
  }

  /**
   * Ends the file at a line boundary again after a failed write: cut back to the last one,
   * or, where truncation fails, end the partial line (its event was reported unwritten, so
   * the line is garbage either way, but the next one starts clean).
   */
  async #repair(): Promise<void> {
    const good = this.#torn;
    const file = this.#file;
    if (good === null || file === null) return;
    let cut: unknown;
    try {
      await file.truncate(good);
      this.#size = good;
      this.#torn = null;
      return;
    } catch (e) {
      cut = e;
    }
    try {
      await writeAll(file, NEWLINE);
      this.#size++;
      this.#torn = null;
    } catch (e) {
      throw new Error(
        `log file ends in a partial line: truncate: ${errorMessage(cut)}; newline: ${
          errorMessage(e)
        }`,
        { cause: e },
      );
    }
  }

  /** Queues a check of the path, unless one is queued already. */
  #scheduleCheck(): void {
    if (this.#checking || this.#closed) return;
    this.#checking = true;
    this.#serial(async () => {
      try {
        if (!this.#closed) await this.#reopenIfGone();
        this.#checkFailing = false;
      } catch (e) {
        // Once per run of failures: the check repeats every interval.
        if (!this.#checkFailing) {
          this.#log.warn("log file check failed", { path: this.path, error: e });
        }
        this.#checkFailing = true;
      } finally {
        this.#checking = false;
      }
    });
  }

  /**
   * Whether the path still names the open file; if not, reopens it (see the class) and
   * returns true.
   */
  async #reopenIfGone(): Promise<boolean> {
    let reason: FileReopenReason | null = null;
    let mode = this.#mode;
    let atPath: Deno.FileInfo | null = null;
    try {
      atPath = await Deno.stat(this.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      reason = "removed";
    }
    if (this.#file) {
      const open = await this.#file.stat();
      if (open.mode !== null) mode = open.mode & 0o7777;
      if (atPath && (atPath.dev !== open.dev || atPath.ino !== open.ino)) reason = "replaced";
    }
    if (reason === null) return false;
    await this.#closeFile().catch((e) => {
      this.#log.warn("closing the old log file failed", { path: this.path, error: e });
    });
    await this.#ensureFile(mode);
    this.#log.warn("log file was removed or replaced; reopened", { path: this.path, reason });
    this.#opts.onReopen?.(reason);
    await this.#opts.onReopened?.();
    return true;
  }

  async #ensureFile(mode: number): Promise<void> {
    await Deno.mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const f = await this.#open(this.path, { create: true, append: true, mode });
    f.close();
  }

  #open(path: string, options: Deno.OpenOptions): Promise<LogFileHandle> {
    return this.#opts.openFile ? this.#opts.openFile(path, options) : Deno.open(path, options);
  }

  /** lumberjack `openExistingOrNew`. */
  async #openExistingOrNew(len: number): Promise<void> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        await this.#openNew();
        return;
      }
      throw new Error(`error getting log file info: ${errorMessage(e)}`, { cause: e });
    }
    if (info.size + len >= this.#max) return await this.#rotate();
    try {
      this.#file = await this.#open(this.path, { append: true });
    } catch {
      // As lumberjack: a file that cannot be opened for append is moved aside.
      const backup = await this.#openNew();
      if (backup !== null) await this.#opts.onRotated?.(backup);
      return;
    }
    this.#size = info.size;
  }

  async #rotate(): Promise<void> {
    await this.#closeFile();
    const backup = await this.#openNew();
    // Before cleanup, so that a backup's sidecar is beside it when cleanup looks.
    if (backup !== null) await this.#opts.onRotated?.(backup);
    this.#mill();
  }

  /**
   * lumberjack `openNew`: moves an existing file aside and creates an empty one; returns the
   * backup's path, or null when there was no file to move.
   */
  async #openNew(): Promise<string | null> {
    try {
      await Deno.mkdir(this.#dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new Error(`can't make directories for new logfile: ${errorMessage(e)}`, { cause: e });
    }
    let mode = this.#mode;
    let old: Deno.FileInfo | null = null;
    try {
      old = await Deno.stat(this.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    let backup: string | null = null;
    if (old) {
      if (old.mode !== null) mode = old.mode & 0o7777;
      try {
        backup = await this.#backups.freeName(this.#clock.date().getTime());
        await Deno.rename(this.path, backup);
      } catch (e) {
        throw new Error(`can't rename log file: ${errorMessage(e)}`, { cause: e });
      }
    }
    try {
      // Append, so that cutting back a partial line (ftruncate) also moves where the next
      // write goes; O_APPEND excludes O_TRUNC, hence the explicit truncate.
      const file = await this.#open(this.path, { append: true, create: true, mode });
      try {
        await file.truncate(0);
      } catch (e) {
        file.close();
        throw e;
      }
      this.#file = file;
    } catch (e) {
      throw new Error(`can't open new logfile: ${errorMessage(e)}`, { cause: e });
    }
    this.#size = 0;
    return backup;
  }

  async #closeFile(): Promise<void> {
    const f = this.#file;
    if (!f) return;
    // A file closed with a partial line (rotation, reopen) keeps it only if it must.
    await this.#repair().catch(() => {});
    this.#torn = null;
    this.#file = null;
    try {
      if (this.#opts.syncBeforeClose) await f.sync();
    } finally {
      f.close();
    }
  }

  /** Starts a cleanup pass, or queues one if a pass is running (lumberjack's `mill`). */
  #mill(): void {
    const { maxBackup, maxAge, compress } = this.#opts;
    if (maxBackup === 0 && maxAge === 0 && !compress) return;
    if (this.#milling) {
      this.#millAgain = true;
      return;
    }
    this.#milling = (async () => {
      try {
        do {
          this.#millAgain = false;
          try {
            await this.#backups.prune(this.#opts, this.#clock.date().getTime());
          } catch (e) {
            this.#log.warn("log file cleanup failed", { path: this.path, error: e });
          }
        } while (this.#millAgain);
      } finally {
        this.#milling = null;
      }
    })();
  }
}
