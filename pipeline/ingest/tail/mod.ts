/**
 * The tail source: follows an audit log file the way kube-apiserver writes it (appends;
 * lumberjack rotation renames `audit.log` to `audit-<time>.log` and creates a new one), also
 * surviving copytruncate and delete/recreate, and resumes from a checkpoint that advances
 * only over acknowledged reads.
 *
 * Delivery is at least once: after a `blocking-strict` sink fails a chunk, the source waits
 * and re-reads from that chunk's start, so the chunks read after it in the same window are
 * delivered again too; after a crash it resumes from the last checkpoint, repeating what was
 * delivered but not yet checkpointed.
 *
 * Known limits: a copytruncate is seen only when the file is shorter than the read offset at
 * the next look (a file truncated and regrown past that offset in between is not noticed);
 * when several rotations happened while auditpipe was down, the checkpointed file is finished
 * and then the current file is read from its start, so backups in between are not read.
 *
 * The parts: `open_file.ts` (open files and their identity), `rotation.ts` (which file
 * follows which), `start.ts` (where to start), `reader.ts` (the read loop), `waiter.ts`
 * (waiting for changes), `checkpointer.ts` (writing the checkpoint).
 *
 * @module
 */
import type { SourceConfig } from "../../config/schema.ts";
import type { Logger } from "../../core/log.ts";
import type { SourceStats } from "../../core/stats.ts";
import type { Clock } from "../../core/clock.ts";
import type { PullStream } from "../pull_stream.ts";
import { Tailer } from "./reader.ts";

/**
 * The config of a tail source.
 *
 * @example
 * ```ts
 * const cfg: TailConfig = { type: "tail", path: "/var/log/audit.log", startAt: "end",
 *   maxLineBytes: 1 << 20, pollInterval: 250 };
 * ```
 */
export type TailConfig = Extract<SourceConfig, { type: "tail" }>;

/**
 * What a tail source needs from the daemon; the optional knobs exist for tests.
 *
 * @example
 * ```ts
 * const deps: TailDeps = { name: "apiserver", log, stats, signal: ac.signal };
 * ```
 */
export interface TailDeps {
  readonly name: string;
  readonly log: Logger;
  readonly stats: SourceStats;
  readonly clock?: Clock;
  /** Aborting stops reading, waits for outstanding acks, writes the checkpoint, closes. */
  readonly signal: AbortSignal;
  /** First wait before re-reading after a failed ack, ms (doubles up to 30 s); default 1000. */
  readonly retryDelay?: number;
  /** Chunks handed downstream whose acks have not settled, at most; default 16. */
  readonly maxUnsettled?: number;
  /** How long closing waits for outstanding acks, ms; default 10000. */
  readonly drainTimeout?: number;
  /** Bytes per read (one chunk per read); default 256 KiB (`READ_SIZE` in `reader.ts`). */
  readonly readSize?: number;
  /** Least time between two checkpoint writes, ms; default 100. */
  readonly checkpointInterval?: number;
}

/**
 * The stream a tail source returns, and when it has fully stopped (checkpoint written).
 *
 * @example
 * ```ts
 * ac.abort();
 * await stream.finished; // final checkpoint is on disk
 * ```
 */
export type TailStream = PullStream;

/**
 * Follows `cfg.path`, one chunk of envelopes per read.
 *
 * The stream is pull-based: the file is read only when downstream asks, and at most
 * `maxUnsettled` chunks may be awaiting their ack. The source never releases an ack itself;
 * it only awaits `chunk.ack.settled` to advance its checkpoint.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * const stream = tailSource(
 *   { type: "tail", path: "/var/log/kubernetes/audit.log", startAt: "end",
 *     checkpointFile: "/var/lib/auditpipe/audit.ckpt", maxLineBytes: 1 << 20, pollInterval: 250 },
 *   { name: "apiserver", log, stats: new SourceStats("apiserver"), signal: ac.signal },
 * );
 * for await (const chunk of stream) { dispatch(chunk); }
 * await stream.finished;
 * ```
 */
export function tailSource(cfg: TailConfig, deps: TailDeps): TailStream {
  return new Tailer(cfg, deps).stream;
}
