/**
 * The backups of a rotated file, named and cleaned up as lumberjack (natefinch/lumberjack
 * v2.2.1) does it for kube-apiserver: `<name>-<UTC 2006-01-02T15-04-05.000><ext>` beside the
 * file, pruned by count and age, and gzipped when asked.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { writeAll } from "../pipeline/core/bytes.ts";
import { errorMessage } from "../pipeline/core/errors.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
const GZ = ".gz";
const BACKUP_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})\.(\d{3})$/;

/** A backup found in the directory, with the time its name carries. */
export interface Backup {
  readonly name: string;
  readonly time: number;
}

/** Go layout `2006-01-02T15-04-05.000` in UTC (years 0-9999, as `toISOString` has them). */
function backupStamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 23).replaceAll(":", "-");
}

/** Parses a backup stamp as Go's `time.Parse` would, or null. */
function parseStamp(s: string): number | null {
  const m = BACKUP_TIME.exec(s);
  if (!m) return null;
  const [y, mo, d, h, mi, sec, ms] = m.slice(1).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
  date.setUTCHours(h, mi, sec, ms);
  return date.getTime();
}

/** Go's `filepath.Ext`: from the last dot of the base name, or "". */
function extOf(name: string): string {
  const i = name.lastIndexOf(".");
  return i < 0 ? "" : name.slice(i);
}

/** A backup's name without `.gz`. */
function plainName(name: string): string {
  return name.endsWith(GZ) ? name.slice(0, -GZ.length) : name;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * A backup that cleanup is about to remove, and which limit removes it.
 *
 * @example
 * ```ts
 * const b: PrunedBackup = { name: "audit-2026-01-01T00-00-00.000.log", reason: "maxBackup" };
 * ```
 */
export interface PrunedBackup {
  /** Base name of the backup as rotation named it (without `.gz`, which may follow it). */
  readonly name: string;
  readonly reason: "maxBackup" | "maxAge";
}

/** How many backups to keep, for how long, and whether to gzip them. */
export interface BackupPolicy {
  /** Backups to keep, a file and its `.gz` counting once; 0 = no limit. */
  readonly maxBackup: number;
  /** Days to keep backups, by the time in their name; 0 = no limit. */
  readonly maxAge: number;
  /** Whether to gzip backups. */
  readonly compress: boolean;
  /** A file beside each backup named `<backup><suffix>` that goes with it (an integrity sidecar). */
  readonly sidecarSuffix?: string;
  /**
   * Awaited before backups are removed, with each backup once (a file and its `.gz` are one),
   * oldest first: a tamper-evident chain records the removal, so that `verify` tells retention
   * from deletion. When it throws, none of them is removed in this pass (a later pass tries
   * again) and the error is thrown at the end.
   */
  readonly onPrune?: (backups: readonly PrunedBackup[]) => Promise<void>;
}

/**
 * The backups of the file at one path.
 *
 * @example
 * ```ts
 * const backups = new Backups("/var/log/audit/audit.log");
 * await Deno.rename(path, await backups.freeName(Date.now())); // audit-2024-...Z.log
 * await backups.prune({ maxBackup: 10, maxAge: 30, compress: true }, Date.now());
 * ```
 */
export class Backups {
  readonly #dir: string;
  readonly #prefix: string;
  readonly #ext: string;

  constructor(path: string) {
    this.#dir = dirname(path);
    const base = basename(path);
    this.#ext = extOf(base);
    this.#prefix = base.slice(0, base.length - this.#ext.length) + "-";
  }

  /**
   * A backup path for a rotation at `now` (ms) that no file or `.gz` takes yet: later
   * milliseconds are tried, as two rotations within one would otherwise collide.
   */
  async freeName(now: number): Promise<string> {
    let t = now;
    for (let tries = 0;; tries++, t++) {
      const name = join(this.#dir, `${this.#prefix}${backupStamp(t)}${this.#ext}`);
      if (tries >= 1000 || (!(await exists(name)) && !(await exists(name + GZ)))) return name;
    }
  }

  /** The name's time, if it is one of our backups with extension `ext`. */
  #timeFromName(name: string, ext: string): number | null {
    if (!name.startsWith(this.#prefix) || !name.endsWith(ext)) return null;
    if (name.length < this.#prefix.length + ext.length) return null;
    return parseStamp(name.slice(this.#prefix.length, name.length - ext.length));
  }

  /** Backups in the directory, newest first. */
  async list(): Promise<Backup[]> {
    const out: Backup[] = [];
    for await (const entry of Deno.readDir(this.#dir)) {
      if (entry.isDirectory) continue;
      const time = this.#timeFromName(entry.name, this.#ext) ??
        this.#timeFromName(entry.name, this.#ext + GZ);
      if (time !== null) out.push({ name: entry.name, time });
    }
    return out.sort((a, b) => b.time - a.time);
  }

  /**
   * lumberjack's `millRunOnce`: removes backups beyond `maxBackup` and older than `maxAge`
   * days before `now` (ms), then gzips the rest when asked. Goes on past a failure and throws
   * the first one at the end.
   */
  async prune(policy: BackupPolicy, now: number): Promise<void> {
    const { maxBackup, maxAge, compress } = policy;
    let files = await this.list();
    const remove: (Backup & { reason: PrunedBackup["reason"] })[] = [];
    if (maxBackup > 0 && maxBackup < files.length) {
      const preserved = new Set<string>();
      const remaining: Backup[] = [];
      for (const f of files) {
        preserved.add(plainName(f.name));
        if (preserved.size > maxBackup) remove.push({ ...f, reason: "maxBackup" });
        else remaining.push(f);
      }
      files = remaining;
    }
    if (maxAge > 0) {
      const cutoff = now - maxAge * DAY_MS;
      const remaining: Backup[] = [];
      for (const f of files) {
        if (f.time < cutoff) remove.push({ ...f, reason: "maxAge" });
        else remaining.push(f);
      }
      files = remaining;
    }
    let firstError: unknown = null;
    const sidecar = policy.sidecarSuffix;
    let removable = remove;
    if (policy.onPrune && remove.length > 0) {
      const once = new Map<string, PrunedBackup>();
      for (const f of [...remove].sort((a, b) => a.time - b.time)) {
        const name = plainName(f.name);
        if (!once.has(name)) once.set(name, { name, reason: f.reason });
      }
      try {
        await policy.onPrune([...once.values()]);
      } catch (e) {
        // Removed without its record, a backup would look deleted by an intruder.
        firstError = e;
        removable = [];
      }
    }
    for (const f of removable) {
      try {
        await Deno.remove(join(this.#dir, f.name));
        if (sidecar) {
          await Deno.remove(join(this.#dir, plainName(f.name) + sidecar)).catch(() => {});
        }
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) firstError ??= e;
      }
    }
    if (compress) {
      for (const f of files) {
        if (f.name.endsWith(GZ)) continue;
        const src = join(this.#dir, f.name);
        try {
          await gzipFile(src, src + GZ);
        } catch (e) {
          firstError ??= e;
        }
      }
    }
    if (firstError !== null) throw firstError;
  }
}

/**
 * Compresses `src` to `dst` with gzip, with `src`'s mode, then removes `src`. The gzip file
 * is fsynced before the plain one goes, so a crash leaves at least one of them whole; a
 * partial `dst` is removed on failure.
 *
 * @example
 * ```ts
 * await gzipFile("audit-2024-03-01T12-34-56.789.log", "audit-2024-03-01T12-34-56.789.log.gz");
 * ```
 */
export async function gzipFile(src: string, dst: string): Promise<void> {
  const info = await Deno.stat(src);
  const input = await Deno.open(src, { read: true });
  let output: Deno.FsFile;
  try {
    output = await Deno.open(dst, {
      write: true,
      create: true,
      truncate: true,
      mode: (info.mode ?? 0o600) & 0o7777,
    });
  } catch (e) {
    input.close();
    throw new Error(`failed to open compressed log file: ${errorMessage(e)}`, { cause: e });
  }
  try {
    // Reading input.readable to its end closes the input file.
    for await (const chunk of input.readable.pipeThrough(new CompressionStream("gzip"))) {
      await writeAll(output, chunk);
    }
    await output.sync();
  } catch (e) {
    try {
      output.close();
    } catch { /* already closed */ }
    await Deno.remove(dst).catch(() => {});
    throw new Error(`failed to compress log file: ${errorMessage(e)}`, { cause: e });
  }
  output.close();
  await Deno.remove(src);
}
