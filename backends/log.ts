/**
 * The log sink: events as lines in a file rotated as kube-apiserver rotates its audit log
 * (`--audit-log-path`, `--audit-log-format`, `--audit-log-max*`), or on stdout for path `-`.
 *
 * @module
 */
import { errorMessage } from "../pipeline/core/errors.ts";
import type { Envelope } from "../pipeline/core/envelope.ts";
import type { DroppedEvent, Sink, SinkContext, WriteResult } from "./sink.ts";
import { encodeLines, type Format } from "./lines.ts";
import { RotatingFile, type RotatingFileOptions } from "./rotate.ts";
import { createStdoutSink } from "./stdout.ts";
import type { KeyObject } from "node:crypto";
import { ChainWriter } from "./integrity/chain.ts";
import { keyFingerprint, SIDECAR_SUFFIX } from "./integrity/format.ts";

/**
 * The settings the log sink reads from its config (a whole log `SinkConfig` fits).
 *
 * @example
 * ```ts
 * const cfg: LogSinkConfig = { path: "-", format: "legacy", fsync: "never",
 *   rotate: { maxSize: 0, maxBackup: 0, maxAge: 0, compress: false } };
 * ```
 */
export interface LogSinkConfig {
  /** The file, or `-` for stdout (`--audit-log-path`). */
  readonly path: string;
  /** `--audit-log-format`. */
  readonly format: Format;
  /** lumberjack's limits: `--audit-log-maxsize` (MB), `-maxbackup`, `-maxage` (days), `-compress`. */
  readonly rotate: {
    readonly maxSize: number;
    readonly maxBackup: number;
    readonly maxAge: number;
    readonly compress: boolean;
  };
  /** When written bytes are flushed to disk. */
  readonly fsync: "never" | "batch" | "always";
  /**
   * Tamper evidence: a hash chain over the lines and signed checkpoints in `<path>.chain`
   * (the key itself is passed to {@linkcode createLogSink}).
   */
  readonly integrity?: {
    readonly checkpointEvery: { readonly events: number; readonly interval: number };
  };
}

function failure(op: string, path: string, e: unknown): Error {
  return new Error(`${op} ${path}: ${errorMessage(e)}`, { cause: e });
}

/**
 * Creates a log sink. The file (and its parent directories) is created now, as
 * kube-apiserver does at startup, so a bad path fails here (`open <path>: ...`).
 *
 * Each batch is encoded into one buffer and written with one write call; a batch that would
 * cross the rotation limit is split at the line where kube-apiserver, writing one event per
 * call, would have rotated, so files and backups hold the same lines as its. An event longer
 * than the limit is left out as `too_large` (the write resolves with a
 * {@linkcode WriteResult} naming it) and the others are written.
 *
 * A failed write leaves no partial line behind, and a file removed or replaced under the
 * sink is noticed within `checkInterval` (or at the next write error), created again,
 * logged and counted in `ctx.stats` (see {@linkcode RotatingFile}).
 *
 * `fsync`: `never` leaves flushing to the kernel; `batch` and `always` both fsync once per
 * batch after its write and before a file is closed for rotation, reopen or close: the sink
 * writes a batch with one call, so per write and per batch are the same point (with the
 * default batch size of 1, once per event).
 *
 * Errors name the path: `write /var/log/audit.log: No space left on device (os error 28)`.
 *
 * `testing` overrides how often the path is checked and how files are opened (tests only).
 *
 * With `cfg.integrity` and a `signingKey` (Ed25519), every line extends a hash chain and
 * signed checkpoints go to `<path>.chain` (see `backends/integrity/`): after
 * `checkpointEvery.events` lines or `interval` ms, at rotation, reopen, start and close.
 * Lines stay byte for byte what they are without it.
 *
 * @example
 * ```ts
 * const sink = await createLogSink(
 *   { path: "/var/log/audit.log", format: "json", fsync: "batch",
 *     rotate: { maxSize: 100, maxBackup: 100, maxAge: 366, compress: false } },
 *   ctx,
 * );
 * await sink.write(envelopes);
 * await sink.reopen?.(); // after logrotate moved the file
 * await sink.close();
 * ```
 */
export async function createLogSink(
  cfg: LogSinkConfig,
  ctx: SinkContext,
  testing: Pick<RotatingFileOptions, "checkInterval" | "openFile" | "maxSizeBytes"> = {},
  signingKey?: KeyObject,
): Promise<Sink> {
  if (cfg.path === "-") return createStdoutSink({ format: cfg.format }, ctx);
  const path = cfg.path;
  const sync = cfg.fsync !== "never";
  let chain: ChainWriter | null = null;
  let opening: Promise<ChainWriter> | null = null;
  let checkpointing: Promise<void> | null = null;
  const every = cfg.integrity?.checkpointEvery;
  const key = every ? signingKey : undefined;
  // Opened at the first write, not now: on reload the sink this one replaces writes until
  // it closes, and the chain must pick up after its last record.
  const openChain = (): Promise<ChainWriter> =>
    opening ??= ChainWriter.open({
      path,
      sink: ctx.name,
      key: key!,
      events: every!.events,
      interval: every!.interval,
      sync,
      clock: ctx.clock,
      log: ctx.log,
      onCheckpoint: (length) => ctx.stats.checkpointed(length),
    }).then((c) => {
      chain = c;
      ctx.log.info("log sink chain opened", { path, chain: c.chainId, publicKey: c.fingerprint });
      return c;
    }, (e) => {
      opening = null;
      throw failure("open checkpoints of", path, e);
    });
  if (key) {
    ctx.log.info("log sink signs checkpoints", { path, publicKey: keyFingerprint(key) });
  }
  const hooks: Partial<RotatingFileOptions> = key
    ? {
      onAppend: (lines) => chain?.append(lines),
      // A checkpoint that cannot be written is logged by the chain and never fails a write:
      // the log lines matter more than their proof, and `verify` shows the gap.
      onRotated: async (backup) => await chain?.rotated(backup).catch(() => {}),
      onReopened: async () => await chain?.reopened().catch(() => {}),
      sidecarSuffix: SIDECAR_SUFFIX,
      // Unlike the hooks above, a failure here keeps the backups (cleanup retries at the next
      // rotation): removed without its signed record, a backup would look deleted by an
      // intruder. Cleanup runs after a write opened the chain.
      onPrune: async (backups) => await (chain ?? await openChain()).pruned(backups),
    }
    : {};
  let file: RotatingFile;
  try {
    file = await RotatingFile.open(path, {
      maxSize: cfg.rotate.maxSize,
      maxBackup: cfg.rotate.maxBackup,
      maxAge: cfg.rotate.maxAge,
      compress: cfg.rotate.compress,
      clock: ctx.clock,
      log: ctx.log,
      syncBeforeClose: sync,
      onReopen: (reason) => ctx.stats.fileReopened(reason),
      ...hooks,
      ...testing,
    });
    ctx.stats.writesFile();
  } catch (e) {
    throw failure("open", path, e);
  }
  return {
    async write(items: readonly Envelope[]): Promise<WriteResult | void> {
      if (items.length === 0) return;
      const { lines } = encodeLines(items, cfg.format);
      if (key) await openChain();
      let skipped: number[];
      try {
        skipped = await file.writeRecords(lines);
        if (sync) await file.sync();
      } catch (e) {
        throw failure("write", path, e);
      }
      // A checkpoint waits for the hashing worker; writes go on meanwhile, and wait only
      // when the next one is due while one still runs (memory stays bounded when the worker
      // cannot keep up). A failed checkpoint is logged by the chain; its lines go into the
      // next one.
      const c = chain as ChainWriter | null;
      if (c && c.pending >= every!.events) {
        if (checkpointing) await checkpointing;
        if (c.pending >= every!.events) {
          checkpointing = c.checkpoint().catch(() => {}).finally(() => checkpointing = null);
        }
      }
      if (skipped.length === 0) return;
      const dropped: DroppedEvent[] = skipped.map((index) => ({
        index,
        reason: "too_large",
        error: new Error(
          `write ${path}: write length ${
            lines[index].length
          } exceeds maximum file size ${file.limit}`,
        ),
      }));
      return { dropped };
    },
    async reopen(): Promise<void> {
      try {
        await file.reopen();
      } catch (e) {
        throw failure("reopen", path, e);
      }
    },
    async close(): Promise<void> {
      try {
        await file.close();
        if (opening) await (await opening).close();
      } catch (e) {
        throw failure("close", path, e);
      }
    },
  };
}
