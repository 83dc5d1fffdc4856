/**
 * The writing side of a tamper-evident log: follows the lines a {@linkcode RotatingFile}
 * appends, and writes signed checkpoint records (see `format.ts`) to the sidecar
 * `<log>.chain`: every `checkpointEvery`, at rotation (the sidecar moves with the backup),
 * reopen, start and shutdown. A start after a crash picks up the last checkpoint and chains
 * the lines written after it, which only this sink writes, in an `open` record.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { basename, dirname, join } from "node:path";
import type { PrunedBackup } from "../backups.ts";
import { writeAll } from "../../pipeline/core/bytes.ts";
import type { Clock } from "../../pipeline/core/clock.ts";
import type { Logger } from "../../pipeline/core/log.ts";
import {
  CHAIN_VERSION,
  type ChainRecord,
  extendHead,
  genesisHead,
  keyFingerprint,
  parseRecord,
  type PrunedInfo,
  recordHash,
  type RecordKind,
  shortDigests,
  SIDECAR_SUFFIX,
  signRecord,
} from "./format.ts";
import { LineHasher } from "./hasher.ts";

/**
 * How a {@linkcode ChainWriter} signs and how often it checkpoints.
 *
 * @example
 * ```ts
 * const opts: ChainOptions = { path: "audit.log", sink: "audit", key, events: 1000,
 *   interval: 10_000, sync: true, clock: systemClock, log };
 * ```
 */
export interface ChainOptions {
  /** The log file; the sidecar is `path + ".chain"`. */
  readonly path: string;
  /** The sink's name, part of the chain's first link. */
  readonly sink: string;
  /** The Ed25519 private key. */
  readonly key: KeyObject;
  /** Lines after which a checkpoint is written. */
  readonly events: number;
  /** Milliseconds after which lines not yet checkpointed are (0 = never by time). */
  readonly interval: number;
  /** fsync the sidecar after each record. */
  readonly sync: boolean;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called after each record written, with the chain's length in lines. */
  readonly onCheckpoint?: (chainLength: number) => void;
}

const encoder = new TextEncoder();
const NEWLINE = 0x0a;

/** The last well-signed record of a sidecar and its line's hash. */
interface Last {
  readonly record: ChainRecord;
  readonly hash: string;
}

async function lastRecord(sidecar: string, key: KeyObject): Promise<Last | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(sidecar);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const lines = text.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i] === "") continue;
    const parsed = parseRecord(lines[i], key);
    return parsed?.signed ? { record: parsed.record, hash: recordHash(lines[i]) } : null;
  }
  return null;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

/** Counts the lines of a file, streaming. */
async function countLines(path: string): Promise<number> {
  let n = 0;
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const got = await f.read(buf);
    if (got === null) return n;
    for (let i = 0; i < got; i++) if (buf[i] === NEWLINE) n++;
  }
}

/**
 * Follows one log sink's lines and writes its checkpoints. `append` is called (synchronously)
 * with what the file took, the other calls are serialized with each other.
 *
 * @example
 * ```ts
 * const chain = await ChainWriter.open(opts);
 * const file = await RotatingFile.open(opts.path, {
 *   ...rotation,
 *   onAppend: (lines) => chain.append(lines),
 *   onRotated: (backup) => chain.rotated(backup),
 *   onReopened: () => chain.reopened(),
 * });
 * ```
 */
export class ChainWriter {
  readonly #opts: ChainOptions;
  readonly #sidecar: string;
  /** The chain id (hex). */
  readonly chainId: string;
  /** The public key's fingerprint. */
  readonly fingerprint: string;
  #seq: number;
  #prev: string | null;
  #head: string;
  /** Lines and bytes of the current file covered by the last record. */
  #from: number;
  #offset: number;
  readonly #hasher = new LineHasher();
  /** Lines and bytes appended since the last record. */
  #pending = 0;
  #pendingBytes = 0;
  /** Digests of the first of those lines, taken from the hasher by a record that failed. */
  #carry = "";
  #chained: number;
  #ino: number | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  private constructor(opts: ChainOptions, state: {
    chain: string;
    seq: number;
    prev: string | null;
    head: string;
    from: number;
    offset: number;
    chained: number;
  }) {
    this.#opts = opts;
    this.#sidecar = opts.path + SIDECAR_SUFFIX;
    this.chainId = state.chain;
    this.fingerprint = keyFingerprint(opts.key);
    this.#seq = state.seq;
    this.#prev = state.prev;
    this.#head = state.head;
    this.#from = state.from;
    this.#offset = state.offset;
    this.#chained = state.chained;
  }

  /**
   * Picks up the chain from the sidecar's last record (chaining lines written after it and
   * cutting a partial last line, which was never acknowledged), or starts a new chain, and
   * writes an `open` record. A file that does not match its last checkpoint (shorter than
   * it, or with no sidecar) starts a new chain after its existing lines, with a warning:
   * `verify` then reports those lines as not covered.
   *
   * @example
   * ```ts
   * const chain = await ChainWriter.open(opts);
   * ```
   */
  static async open(opts: ChainOptions): Promise<ChainWriter> {
    const sidecar = opts.path + SIDECAR_SUFFIX;
    const last = await lastRecord(sidecar, opts.key);
    const size = await fileSize(opts.path);
    let recovered: Uint8Array | null = null;
    let writer: ChainWriter;
    const usable = last !== null && last.record.kind !== "rotate" &&
      last.record.file === basename(opts.path) && size >= last.record.offset;
    if (usable) {
      const r = last.record;
      writer = new ChainWriter(opts, {
        chain: r.chain,
        seq: r.seq + 1,
        prev: last.hash,
        head: r.head,
        from: r.lines,
        offset: r.offset,
        chained: 0,
      });
      if (size > r.offset) {
        recovered = await writer.#readTail(r.offset, size).catch((e) => {
          writer.#hasher.close();
          throw e;
        });
      }
    } else {
      if (last !== null || size > 0) {
        opts.log.warn("log file does not match its last checkpoint; starting a new chain", {
          path: opts.path,
          sidecar,
          reason: last === null ? "no usable checkpoint" : "file shorter than its checkpoint",
        });
      }
      const chain = randomBytes(8).toString("hex");
      writer = new ChainWriter(opts, {
        chain,
        seq: 0,
        prev: null,
        head: genesisHead(opts.sink, chain),
        from: size > 0 ? await countLines(opts.path) : 0,
        offset: size,
        chained: 0,
      });
    }
    if (recovered) writer.append(splitLines(recovered));
    try {
      await writer.#write("open", { recovered: writer.#pending });
    } catch (e) {
      writer.#hasher.close();
      throw e;
    }
    if (opts.interval > 0) {
      writer.#timer = setInterval(() => {
        if (writer.#pending > 0) writer.checkpoint().catch(() => {});
      }, opts.interval);
      Deno.unrefTimer(writer.#timer);
    }
    return writer;
  }

  /** The lines after `offset`; a partial last line is cut off the file. */
  async #readTail(offset: number, size: number): Promise<Uint8Array> {
    using f = await Deno.open(this.#opts.path, { read: true, write: true });
    await f.seek(offset, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - offset);
    let got = 0;
    while (got < buf.length) {
      const n = await f.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    const end = buf.subarray(0, got).lastIndexOf(NEWLINE) + 1;
    if (end < got) {
      this.#opts.log.warn("log file ended in a partial line after a crash; cut it off", {
        path: this.#opts.path,
        bytes: got - end,
      });
      await f.truncate(offset + end);
    }
    return buf.subarray(0, end);
  }

  /**
   * Lines in the chain since the sink started (recovered ones included).
   *
   * @example
   * ```ts
   * chain.length; // 1234
   * ```
   */
  get length(): number {
    return this.#chained;
  }

  /**
   * Lines appended since the last record.
   *
   * @example
   * ```ts
   * if (chain.pending >= 1000) await chain.checkpoint();
   * ```
   */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Extends the chain by lines the file just took, in order.
   *
   * @example
   * ```ts
   * chain.append([line]);
   * ```
   */
  append(lines: readonly Uint8Array[]): void {
    for (const line of lines) {
      this.#hasher.push(line);
      this.#pendingBytes += line.length;
    }
    this.#pending += lines.length;
    this.#chained += lines.length;
  }

  /**
   * Writes a checkpoint for the lines appended since the last one (if any).
   *
   * @example
   * ```ts
   * await chain.checkpoint();
   * ```
   */
  checkpoint(): Promise<void> {
    return this.#serial(async () => {
      if (this.#pending > 0 && !this.#closed) await this.#write("checkpoint");
    });
  }

  /**
   * After a rotation: the last record of the old file goes into its sidecar, which moves
   * beside the backup (`<backup>.chain`), and the new file's sidecar starts with a record
   * naming the backup, so the chain runs on across files.
   *
   * @example
   * ```ts
   * await chain.rotated("/var/log/audit-2026-01-01T00-00-00.000.log");
   * ```
   */
  rotated(backup: string): Promise<void> {
    return this.#serial(async () => {
      const file = basename(backup);
      await this.#write("rotate", { file, next: basename(this.#opts.path) });
      await Deno.rename(this.#sidecar, backup + SIDECAR_SUFFIX);
      this.#from = 0;
      this.#offset = 0;
      this.#ino = null;
      await this.#write("rotated", { prevFile: file });
    });
  }

  /**
   * After the file was reopened: a `reopen` record. When the path names another file now
   * (moved away by logrotate), the old sidecar is moved to `<log>.chain-<time>` (keep it
   * beside the moved file as `<moved file>.chain` for `verify`) and the chain goes on in a
   * new sidecar.
   *
   * @example
   * ```ts
   * await chain.reopened();
   * ```
   */
  reopened(): Promise<void> {
    return this.#serial(async () => {
      const ino = await this.#inode();
      const same = this.#ino === null || ino === this.#ino;
      await this.#write("reopen");
      if (same) return;
      const moved = `${this.#sidecar}-${this.#opts.clock.date().toISOString()}`;
      await Deno.rename(this.#sidecar, moved);
      this.#opts.log.warn(
        "log file was moved away; its checkpoints moved with a time suffix: keep them beside it as <file>.chain",
        { path: this.#opts.path, sidecar: moved },
      );
      this.#from = 0;
      this.#offset = 0;
      this.#ino = ino;
      await this.#write("rotated", { prevFile: null });
    });
  }

  /**
   * Before retention removes backups: one `pruned` record each, naming the backup and the
   * last record of its sidecar (read now, while it is there), so that `verify` reports the
   * file as pruned, not missing. Throws when a record cannot be written: the caller keeps
   * the backups then.
   *
   * @example
   * ```ts
   * await chain.pruned([{ name: "audit-2026-01-01T00-00-00.000.log", reason: "maxBackup" }]);
   * ```
   */
  pruned(backups: readonly PrunedBackup[]): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) throw new Error("checkpoints already closed");
      const dir = dirname(this.#opts.path);
      for (const b of backups) {
        const last = await lastRecord(join(dir, b.name + SIDECAR_SUFFIX), this.#opts.key)
          .catch(() => null);
        const pruned: PrunedInfo = {
          file: b.name,
          reason: b.reason,
          last: last?.hash ?? null,
          seq: last?.record.seq ?? null,
          lines: last?.record.lines ?? null,
          head: last?.record.head ?? null,
        };
        await this.#write("pruned", { pruned });
      }
    });
  }

  /**
   * Writes the last record and stops the timer.
   *
   * @example
   * ```ts
   * await file.close();
   * await chain.close();
   * ```
   */
  close(): Promise<void> {
    clearInterval(this.#timer);
    return this.#serial(async () => {
      if (this.#closed) return;
      try {
        await this.#write("close");
      } finally {
        this.#closed = true;
        this.#hasher.close();
      }
    });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch((e) => {
      this.#opts.log.error("writing a checkpoint failed", { path: this.#sidecar, error: e });
    });
    return run;
  }

  async #inode(): Promise<number | null> {
    try {
      return (await Deno.stat(this.#opts.path)).ino;
    } catch {
      return null;
    }
  }

  /** Writes one record covering the pending lines (taken now, before any await). */
  async #write(
    kind: RecordKind,
    extra: {
      file?: string;
      next?: string;
      prevFile?: string | null;
      recovered?: number;
      pruned?: PrunedInfo;
    } = {},
  ): Promise<void> {
    // Taken before any await: lines appended meanwhile go into the next record.
    const count = this.#pending;
    const bytes = this.#pendingBytes;
    const chained = this.#chained;
    const carry = this.#carry;
    this.#pending = 0;
    this.#pendingBytes = 0;
    this.#carry = "";
    let digests = carry;
    try {
      digests += await this.#hasher.take(count - carry.length / 64);
    } catch (e) {
      this.#pending += count;
      this.#pendingBytes += bytes;
      this.#carry = carry;
      throw e;
    }
    const base = this.#head;
    const head = extendHead(base, digests);
    const lines = this.#from + count;
    const offset = this.#offset + bytes;
    const record: ChainRecord = {
      v: CHAIN_VERSION,
      chain: this.chainId,
      sink: this.#opts.sink,
      seq: this.#seq,
      kind,
      file: extra.file ?? basename(this.#opts.path),
      prevFile: extra.prevFile ?? null,
      next: extra.next ?? null,
      from: this.#from,
      lines,
      offset,
      digests: shortDigests(digests),
      base,
      head,
      recovered: extra.recovered ?? 0,
      time: this.#opts.clock.date().toISOString(),
      prev: this.#prev,
      key: this.fingerprint,
      ...(extra.pruned ? { pruned: extra.pruned } : {}),
    };
    const line = signRecord(record, this.#opts.key);
    try {
      // The sidecar gets the log file's permissions.
      const mode = await Deno.stat(this.#opts.path).then(
        (i) => (i.mode ?? 0o600) & 0o777,
        () => 0o600,
      );
      const f = await Deno.open(this.#sidecar, { append: true, create: true, mode });
      try {
        await writeAll(f, encoder.encode(line + "\n"));
        if (this.#opts.sync) await f.sync();
      } finally {
        f.close();
      }
    } catch (e) {
      // The lines stay pending, so the next record covers them and the chain has no gap.
      this.#pending += count;
      this.#pendingBytes += bytes;
      this.#carry = digests;
      throw e;
    }
    this.#ino ??= await this.#inode();
    this.#seq++;
    this.#prev = recordHash(line);
    this.#head = head;
    this.#from = lines;
    this.#offset = offset;
    this.#opts.onCheckpoint?.(chained);
  }
}

/** Views of each `\n`-ended line of `bytes`. */
function splitLines(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === NEWLINE) {
      out.push(bytes.subarray(start, i + 1));
      start = i + 1;
    }
  }
  return out;
}
